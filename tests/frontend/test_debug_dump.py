"""TENSORSMITH_DUMP writes the IR after every stage (and the generated C++); the IR dumps parse
and verify."""
from __future__ import annotations

import torch

import tensorsmith
from tensorsmith.ir import parse_graph, print_graph, verify


def test_dump_dir_gets_each_stage_of_each_graph(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "dump_dir", str(tmp_path))
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.SiLU())
    torch.compile(model, backend="tensorsmith")(torch.randn(2, 4)).sum().backward()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert any(f.endswith("_forward.00_import.tsir") for f in files), files
    assert any(f.endswith("_backward.04_dce.tsir") for f in files), files
    assert any(f.endswith("_forward.kernels.cpp") for f in files), files
    for path in tmp_path.glob("*.tsir"):
        text = path.read_text()
        graph = parse_graph(text)
        verify(graph)
        assert print_graph(graph) == text


def test_debug_level_1_prints_one_line_per_graph(monkeypatch, capsys):
    monkeypatch.setattr(tensorsmith.config, "debug", 1)
    torch.compile(lambda x: torch.exp(x).sum(), backend="tensorsmith")(torch.randn(3))
    err = capsys.readouterr().err
    assert "tensorsmith: g" in err and "native ops" in err
