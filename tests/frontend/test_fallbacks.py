"""An exception inside tensorsmith, at compile time or while a compiled graph runs, becomes a
whole-graph fallback (the graph runs through ATen, same numbers as eager), an event, a report line
and one warning per kind of reason; `TENSORSMITH_STRICT=1` re-raises. The user's own errors (an
index out of range) still reach the user."""
from __future__ import annotations

import warnings

import pytest
import torch

import tensorsmith
from tensorsmith.errors import FallbackWarning
from tensorsmith import records
from tensorsmith.compile import backend, driver, fallback
from tensorsmith.frontend import attention
from tensorsmith.runtime.executor import GraphExecutor


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 5)

    def forward(self, x):
        return torch.tanh(self.lin(x)).sum(-1) * 3


def _reference(model, x):
    x64, m64 = x.double().requires_grad_(), Block().double()
    m64.load_state_dict(model.state_dict())
    out = m64(x64)
    out.sum().backward()
    return out, x64.grad, m64.lin.weight.grad


def _train_step(model, fn, x):
    x = x.clone().requires_grad_()
    model.zero_grad()
    out = fn(x)
    out.sum().backward()
    return out, x.grad, model.lin.weight.grad


@pytest.fixture
def lenient(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "strict", False)
    monkeypatch.setattr(fallback, "_WARNED", set())
    records.reset()


def _close(got, want):
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w.detach(), rtol=1e-5, atol=1e-6)


def test_an_internal_error_while_running_falls_back_for_that_call_and_after(lenient, monkeypatch):
    torch.manual_seed(0)
    model, x = Block(), torch.randn(4, 6)
    calls = {"n": 0}
    real_call = GraphExecutor.__call__

    def broken_on_second_call(self, *args):
        calls["n"] += 1
        if calls["n"] == 3:  # the second forward
            raise RuntimeError("a planted bug in a kernel launch")
        return real_call(self, *args)

    monkeypatch.setattr(GraphExecutor, "__call__", broken_on_second_call)
    compiled = torch.compile(model, backend="tensorsmith")
    _close(_train_step(model, compiled, x), _reference(model, x))  # forward + backward compiled
    with pytest.warns(FallbackWarning, match="planted bug"):
        _close(_train_step(model, compiled, x), _reference(model, x))
    fell = [r for r in records.RECORDS if r.whole_graph_fallback]
    assert len(fell) == 1 and fell[0].kind == "forward"
    assert "while running, RuntimeError: a planted bug" in fell[0].whole_graph_fallback
    # Where in our code it came through: the planted function is the test's, its caller ours.
    assert "(at tensorsmith/compile/fallback.py:" in fell[0].whole_graph_fallback
    before = calls["n"]
    _close(_train_step(model, compiled, x), _reference(model, x))
    assert calls["n"] == before + 1  # the backward still runs compiled, the forward does not


def test_an_internal_error_at_compile_time_warns_once_per_kind(lenient, monkeypatch):
    def broken(graph, pipeline, dump):
        raise KeyError("a planted bug in a pass")

    monkeypatch.setattr(driver, "run_pipeline", broken)
    x = torch.randn(5, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = torch.compile(lambda a: torch.cos(a) + 1, backend="tensorsmith")
        g = torch.compile(lambda a: torch.sin(a) * 2, backend="tensorsmith")
        torch.testing.assert_close(f(x), torch.cos(x) + 1)
        torch.testing.assert_close(g(x), torch.sin(x) * 2)
    ours = [w for w in caught if issubclass(w.category, FallbackWarning)]
    assert len(ours) == 1 and "KeyError" in str(ours[0].message)
    assert all("internal error KeyError" in r.whole_graph_fallback for r in records.RECORDS)
    assert all("(at tensorsmith/compile/driver.py:" in r.whole_graph_fallback and " in build)" in
               r.whole_graph_fallback for r in records.RECORDS)
    assert len(records.RECORDS) == 2


def test_an_error_before_import_runs_the_dynamo_graph(lenient, monkeypatch):
    def broken(gm, example_inputs):
        raise AssertionError("a planted bug in the attention rewrite")

    monkeypatch.setattr(backend, "rewrite_attention", broken)
    x = torch.randn(2, 3, 8)
    with pytest.warns(FallbackWarning, match="before import"):
        out = torch.compile(lambda a: torch.softmax(a, -1) * 2, backend="tensorsmith")(x)
    torch.testing.assert_close(out, torch.softmax(x, -1) * 2)
    (record,) = records.RECORDS
    assert record.kind == "dynamo" and "planted bug" in record.whole_graph_fallback
    assert "(at tensorsmith/compile/backend.py:" in record.whole_graph_fallback


def test_strict_mode_re_raises(monkeypatch):
    def broken(graph, pipeline, dump):
        raise KeyError("a planted bug in a pass")

    monkeypatch.setattr(driver, "run_pipeline", broken)
    with pytest.raises(Exception, match="planted bug"):
        torch.compile(lambda a: torch.cos(a) + 1, backend="tensorsmith")(torch.randn(3))


def test_the_users_index_error_is_still_raised(lenient):
    table = torch.randn(10, 4)
    f = torch.compile(lambda ids: table[ids].sum(-1), backend="tensorsmith")
    ids = torch.randint(0, 10, (6,))
    torch.testing.assert_close(f(ids), table[ids].sum(-1))
    with pytest.raises(IndexError):
        f(torch.tensor([1, 2, 3, 40, 0, 1]))
    assert not any(r.whole_graph_fallback for r in records.RECORDS)


def test_topk_is_a_library_call_with_eager_values_indices_and_gradients():
    """A mixture-of-experts router: softmax, topk, a renormalized gather of the top weights. topk
    runs as ATen's kernel by design (not a fallback), and the outputs, the chosen experts and the
    gradients match eager."""
    from helpers import check_against_eager

    def router(logits):
        probs = torch.softmax(logits, dim=-1)
        top, experts = torch.topk(probs, 2, dim=-1)
        return top / top.sum(-1, keepdim=True), experts
    records.reset()
    check_against_eager(router, torch.randn(12, 8, requires_grad=True), grads=False)
    record = records.RECORDS[-1]
    assert record.native["aten.topk.default"] == 1 and not record.fallbacks
    logits = torch.randn(12, 8, requires_grad=True)
    top, _ = torch.compile(router, backend="tensorsmith")(logits)
    (grad,) = torch.autograd.grad((top * torch.arange(2.0)).sum(), logits)
    expected_top, _ = router(logits)
    (expected,) = torch.autograd.grad((expected_top * torch.arange(2.0)).sum(), logits)
    torch.testing.assert_close(grad, expected)
