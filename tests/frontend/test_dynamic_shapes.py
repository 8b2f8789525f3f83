"""A model whose inputs change shape: recompiled (specialized per shape) and still equal to eager."""
from __future__ import annotations

import torch
from helpers import check_against_eager

import tensorsmith
from tensorsmith import records


def _model():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.LayerNorm(8),
                               torch.nn.Linear(8, 2))


def test_changing_batch_size_recompiles_and_matches_eager(monkeypatch, capsys):
    monkeypatch.setattr(tensorsmith.config, "debug", 1)
    records.reset()
    model = _model()
    compiled = torch.compile(model, backend="tensorsmith")
    for batch in (2, 3, 5, 3):
        x = torch.randn(batch, 4, requires_grad=True)
        out = compiled(x)
        expected = model(x)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-5)
    log = capsys.readouterr().err
    assert "input shapes changed; compiling a specialization" in log
    assert "[5, 4]" in log
    # The dynamic graphs were specialized for batches 3 and 5, and batch 3 reused its specialization.
    assert max(r.specializations for r in records.RECORDS) == 2


def test_dynamic_true_from_the_start():
    model = _model()
    for batch in (2, 7):
        check_against_eager(model, torch.randn(batch, 4), dynamic=True)
