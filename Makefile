# `make bench` and `make test` each create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU machines keep torch 2.13.0 on local disk; elsewhere take any torch >= 2.11.
	$(PY) -m pip install -q "torch==2.13.0" || $(PY) -m pip install -q "torch>=2.11"
	$(PY) -m pip install -q -e ".[test,bench]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -p no:cacheprovider

# The default comparison (nanoGPT, train and inference, eager vs inductor vs tensorsmith); the
# table is printed, and JSON, Markdown and PNG charts land in bench-results/.
bench: $(STAMP)
	$(PY) -m tensorsmith.bench --out bench-results

clean:
	rm -rf $(VENV) build *.egg-info
