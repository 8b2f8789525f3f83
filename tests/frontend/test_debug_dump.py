"""TENSORSMITH_DUMP writes every stage of every graph (the IR after import and after each pass,
the schedule, the generated source); the IR dumps parse and verify. TENSORSMITH_DEBUG's levels
print one line per graph (1), the schedule (3) and the generated source (4)."""
from __future__ import annotations

import re

import pytest
import torch

import tensorsmith
from tensorsmith.ir import parse_graph, print_graph, verify
from tensorsmith.passes.pipeline import PIPELINES


def _model():
    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.SiLU())


def _stages(tmp_path, graph_kind: str) -> list[str]:
    names = sorted(p.name for p in tmp_path.iterdir() if f"_{graph_kind}." in p.name)
    return [re.sub(r"^g\d+_\w+\.\d\d_", "", n) for n in names]


@pytest.mark.parametrize("executor", ["cpp", "triton"])
def test_dump_dir_gets_each_stage_of_each_graph_in_order(executor, tmp_path, monkeypatch):
    if executor == "triton":
        pytest.importorskip("triton")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", executor)
    monkeypatch.setattr(tensorsmith.config, "dump_dir", str(tmp_path))
    torch.compile(_model(), backend="tensorsmith")(torch.randn(2, 4)).sum().backward()
    passes = [f"{name}.tsir" for name, _ in PIPELINES["optimize"] + PIPELINES[executor]]
    source = "kernels.cpp" if executor == "cpp" else "kernels.py"
    for kind in ("forward", "backward"):
        assert _stages(tmp_path, kind) == ["import.tsir", *passes, "schedule.txt", source]
    for path in tmp_path.glob("*.tsir"):
        text = path.read_text()
        graph = parse_graph(text)
        verify(graph)
        assert print_graph(graph) == text
    for path in tmp_path.glob("*schedule.txt"):  # each scheduled kernel is in the generated source
        kernels = re.findall(r"^  kernel (\w+) ", path.read_text(), re.M)
        graph_id = path.name.split(".")[0]
        (generated,) = tmp_path.glob(f"{graph_id}.*_{source}")
        if executor == "cpp":
            assert kernels and all(k in generated.read_text() for k in kernels), path.name
        else:  # Triton kernels are named by a digest of their body, identical ones shared
            defined = re.findall(r"^def (?!_ts_)(\w+)", generated.read_text(), re.M)  # not the helpers
            assert 0 < len(defined) <= len(kernels), path.name


def test_debug_level_1_prints_one_line_per_graph(monkeypatch, capsys):
    monkeypatch.setattr(tensorsmith.config, "debug", 1)
    torch.compile(lambda x: torch.exp(x).sum(), backend="tensorsmith")(torch.randn(3))
    err = capsys.readouterr().err
    assert "tensorsmith: g" in err and "native ops" in err
    assert "schedule @" not in err and "generated cpp source" not in err


def test_debug_level_4_prints_the_schedule_and_the_generated_source(monkeypatch, capsys):
    monkeypatch.setattr(tensorsmith.config, "debug", 4)
    torch.compile(lambda x: torch.exp(x).sum(), backend="tensorsmith")(torch.randn(3))
    err = capsys.readouterr().err
    kernels = re.findall(r"^  kernel (\w+) ", err, re.M)
    assert "schedule @" in err and kernels, err[-2000:]
    source = err[err.index("generated cpp source"):]
    assert all(k in source for k in kernels)
