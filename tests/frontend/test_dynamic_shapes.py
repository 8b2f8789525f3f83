"""A model whose inputs change shape, where graphs are compiled per concrete shape (a backend that
takes static shapes; here `config.symbolic_sizes` off): a shape is compiled when it comes again
(compile/specialize.py), other calls run through ATen, and every call equals eager."""
from __future__ import annotations

import pytest
import torch
from helpers import check_against_eager

import tensorsmith
from tensorsmith import records


@pytest.fixture(autouse=True)
def per_shape(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "symbolic_sizes", False)


def _model():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.LayerNorm(8),
                               torch.nn.Linear(8, 2))


def _train_call(model, compiled, batch):
    x = torch.randn(batch, 4, requires_grad=True)
    out = compiled(x)
    expected = model(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    (expected_grad,) = torch.autograd.grad(expected.square().sum(), x)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-5, atol=1e-5)


def test_a_shape_is_compiled_when_it_comes_again(monkeypatch, capsys):
    monkeypatch.setattr(tensorsmith.config, "debug", 1)
    records.reset()
    model = _model()
    compiled = torch.compile(model, backend="tensorsmith")
    for batch in (2, 3, 5, 3, 3, 6):  # 2 compiles static; then 3, 5 new, 3 again, 3 compiled, 6 new
        _train_call(model, compiled, batch)
    log = capsys.readouterr().err
    assert "new shapes run through ATen" in log
    compiles = [line for line in log.splitlines() if "compiling a specialization" in line]
    assert len(compiles) == 2 and all("(number 1) for shapes seen 2 times" in c and "[3, 4]" in c
                                      for c in compiles), compiles
    dynamic = [r for r in records.RECORDS if r.aten_calls]
    assert {r.kind for r in dynamic} == {"forward", "backward"}
    # batches 3 (first time), 5 and 6 ran through ATen; batch 3 compiled on its second call.
    assert all(r.specializations == 1 and r.aten_calls == 3 for r in dynamic), dynamic


def test_shapes_that_change_every_call_never_compile(monkeypatch):
    records.reset()
    model = _model().eval()
    compiled = torch.compile(model, backend="tensorsmith", dynamic=True)
    with torch.no_grad():
        for batch in range(2, 12):
            x = torch.randn(batch, 4)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
    (record,) = records.RECORDS
    assert record.specializations == 0 and record.aten_calls == 10


def test_the_cap_on_compiled_shapes_holds(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "specialize_after", 1)
    monkeypatch.setattr(tensorsmith.config, "max_specializations", 2)
    records.reset()
    model = _model().eval()
    compiled = torch.compile(model, backend="tensorsmith", dynamic=True)
    with torch.no_grad():
        for batch in (2, 3, 4, 2, 5):
            x = torch.randn(batch, 4)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
    (record,) = records.RECORDS
    assert record.specializations == 2 and record.aten_calls == 2  # 2 and 3 compiled; 4 and 5 not


def test_dynamic_true_from_the_start(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "specialize_after", 1)  # compile each shape at once
    model = _model()
    for batch in (2, 7):
        check_against_eager(model, torch.randn(batch, 4), dynamic=True)
