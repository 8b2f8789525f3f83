"""The Triton runtime's shared arena lives as long as the graphs that use it, not the process."""
from __future__ import annotations

import gc

import pytest
import torch

pytest.importorskip("triton")

import tensorsmith
from tensorsmith.bench.models.small import MLP
from tensorsmith.runtime import cuda


def test_the_arena_goes_with_the_last_graph(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", "triton")
    model, x = MLP(), torch.randn(8, 32)
    compiled = torch.compile(model, backend="tensorsmith")
    compiled(x).sum().backward()
    arena = cuda._ARENAS.get(torch.device("cpu"))
    assert arena is not None and arena.tensor.numel() > 0
    del compiled, arena
    torch._dynamo.reset()
    gc.collect()
    assert torch.device("cpu") not in cuda._ARENAS
