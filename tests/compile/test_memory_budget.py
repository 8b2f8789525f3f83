"""The training step's memory budget (compile/memory_budget.py): the forward saves less, the
backward recomputes, the step's numbers stay eager's, and a step that cannot fit says so.

What the forward saves is measured independently of the partitioner: the tensors autograd packs
for the backward of the compiled call (saved_tensors_hooks), by distinct storage."""
from __future__ import annotations

import copy

import pytest
import torch

import tensorsmith
from tensorsmith.bench.models.nanogpt import GPTConfig, NanoGPT, make_batch
from tensorsmith.compile import memory_budget, step_peak
from tensorsmith.compile.memory_budget import budget_bytes, device_memory
from tensorsmith.errors import MemoryBudgetWarning

CFG = GPTConfig(vocab=96, width=64, layers=2, heads=4, seq=32)


def _step(model, batch, compiled: bool):
    """(loss, gradients, bytes of the activations saved for the backward) of one training step."""
    storages = {}
    held = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *batch]}

    def pack(t):
        if t.untyped_storage().data_ptr() not in held:
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    run = torch.compile(model, backend="tensorsmith") if compiled else model
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = run(*batch)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return loss.detach(), grads, sum(storages.values())


def _fixed_bytes(model, batch) -> int:
    """The forward's inputs and the weights' gradients: held whatever is saved."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return 2 * weights + sum(t.numel() * t.element_size() for t in batch)


@pytest.fixture
def model_and_batch():
    torch.manual_seed(0)
    return NanoGPT(CFG), make_batch(CFG, 4, torch.Generator().manual_seed(1))


def test_budget_text():
    cpu = torch.device("cpu")
    assert budget_bytes("12e9", cpu) == 12 * 10**9
    assert budget_bytes("12GB", cpu) == 12 * 10**9
    assert budget_bytes("512MiB", cpu) == 512 * 2**20
    assert budget_bytes("0.25", cpu) == int(0.25 * device_memory(cpu))
    for bad in ("", "-1", "lots", "12 parsecs", "0"):
        with pytest.raises(ValueError, match="TENSORSMITH_MEMORY_BUDGET"):
            budget_bytes(bad, cpu)


def test_budgeted_step_fits_its_plan_saves_less_with_eager_numbers(model_and_batch, monkeypatch):
    model, batch = model_and_batch
    reference = copy.deepcopy(model).double()
    ref_loss, ref_grads, _ = _step(reference, batch, compiled=False)
    monkeypatch.setattr(tensorsmith.config, "memory_budget", "1e15")  # fits: the unbudgeted plan
    loss, grads, unbudgeted = _step(model, batch, compiled=True)
    _, plan = memory_budget.PLANNED[-1]
    assert plan.peak >= plan.inputs + plan.saved >= _fixed_bytes(model, batch) // 2 + unbudgeted
    budget = plan.peak - plan.saved // 3
    monkeypatch.setattr(tensorsmith.config, "memory_budget", str(budget))
    torch._dynamo.reset()
    budgeted_loss, budgeted_grads, saved = _step(model, batch, compiled=True)
    assert memory_budget.PLANNED[-1][0] == budget and memory_budget.PLANNED[-1][1].peak <= budget
    assert saved < unbudgeted, (saved, unbudgeted)
    torch.testing.assert_close(budgeted_loss.double(), ref_loss, rtol=1e-5, atol=1e-6)
    for got, unbudgeted_grad, expected in zip(budgeted_grads, grads, ref_grads):
        torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(got, unbudgeted_grad, rtol=1e-5, atol=1e-6)


def test_graph_peak_counts_each_value_from_its_maker_to_its_last_reader():
    """A hand-built graph: views and tuple elements share their base's memory; outputs are held
    to the end; inputs are not the graph's own."""
    def f(x):                                   # x: 1,000 floats (4,000 bytes), not counted
        a = torch.ops.aten.mul.Tensor(x, 2.0)    # a: 4,000
        b = torch.ops.aten.view.default(a, [10, 100])  # a view: nothing new, a lives on through b
        c = torch.ops.aten.exp.default(x)        # c: 4,000; a and c live: 8,000
        d = torch.ops.aten.add.Tensor(b, 1.0)    # d: 4,000 (a's last reader): 12,000, then a goes
        e = torch.ops.aten.sum.default(c)        # e: 4 bytes; c goes after
        return d, e
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.experimental.proxy_tensor import make_fx
    with FakeTensorMode():
        gm = make_fx(f)(torch.empty(1000))
    assert step_peak.graph_peak(gm) == 12_000
    out = torch.fx.symbolic_trace(lambda x: x)  # no value of its own
    next(iter(out.graph.nodes)).meta["val"] = torch.empty(4)
    assert step_peak.graph_peak(out) == 0


def test_a_step_that_cannot_fit_says_by_how_much(model_and_batch, monkeypatch):
    model, batch = model_and_batch
    reference = copy.deepcopy(model).double()
    ref_loss, ref_grads, _ = _step(reference, batch, compiled=False)
    monkeypatch.setattr(tensorsmith.config, "memory_budget", "1KB")
    with pytest.warns(MemoryBudgetWarning, match="cannot fit the memory budget"):
        loss, grads, _ = _step(model, batch, compiled=True)
    torch.testing.assert_close(loss.double(), ref_loss, rtol=1e-5, atol=1e-6)
    for got, expected in zip(grads, ref_grads):
        torch.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-6)
