# `make bench` and `make test` each create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test bench zoo onnx-conformance clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU machines keep torch 2.13.0 on local disk; elsewhere take any torch >= 2.11.
	$(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q "torch>=2.11"
	# Extras install with torch held at the version just installed: timm needs torchvision, and
	# pip would otherwise replace torch with the CUDA build that torchvision's newest release pins.
	$(PY) -m pip install -q -e ".[test,bench]" "torch==$$($(PY) -c "import importlib.metadata as m; print(m.version('torch'))")"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

# The default comparison (nanoGPT, train and inference, eager vs inductor vs tensorsmith); the
# table is printed, and JSON, Markdown and PNG charts land in bench-results/.
bench: $(STAMP)
	$(PY) -m tensorsmith.bench --out bench-results

# The whole model zoo on the CPU (tiny sizes): eager vs Inductor vs tensorsmith, a status per model
# and mode, geometric means; tables in zoo-results/.
zoo: $(STAMP)
	$(PY) -m tensorsmith.cli zoo --device cpu --out zoo-results

# onnx's backend node tests, every case compiled by tensorsmith on the CPU: pass rates per op
# family, each failure and skip with its reason; outcomes in onnx-conformance/.
onnx-conformance: $(STAMP)
	$(PY) -m tensorsmith.onnx.conformance --out onnx-conformance

clean:
	rm -rf $(VENV) build *.egg-info
