"""A compiled model's graphs let go of their memory when the model is dropped (runtime/lifetime.py),
although Dynamo keeps them cached until torch._dynamo.reset(); a model of the same class compiled
afterwards runs through the same cached graphs, which allocate anew, and matches eager."""
from __future__ import annotations

import gc

import pytest
import torch

from tensorsmith.runtime import cuda
from tensorsmith.runtime.compiled import CompiledGraph


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(48, 96), torch.nn.Linear(96, 8)

    def forward(self, x):
        return self.b(torch.nn.functional.gelu(self.a(x))).square().mean()


def _graphs(kind, before=frozenset()):
    """The live graphs of `kind`, less those whose ids are in `before` (other tests' graphs)."""
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is kind and id(o) not in before]


def _train_step(model, x):
    compiled = torch.compile(model, backend="tensorsmith")
    loss = compiled(x)
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


@pytest.mark.parametrize("executor", ["cpp", "triton"], indirect=True)
def test_dropping_the_model_frees_its_graphs_memory_and_a_new_one_recomputes(executor):
    torch._dynamo.reset()
    kind = CompiledGraph if executor == "cpp" else cuda.TritonGraph
    others = _graphs(kind)  # earlier tests' graphs, held so that no new one takes an id of theirs
    before = frozenset(map(id, others))
    x = torch.randn(16, 48)
    model = _Net()
    _train_step(model, x)
    graphs = _graphs(kind, before)
    assert len(graphs) == 2  # forward and backward
    if executor == "cpp":
        assert all(g.arena.numel() == g.plan.arena_bytes for g in graphs)
        assert sum(g.plan.arena_bytes for g in graphs) > 0
        arenas = {g.arena.untyped_storage().data_ptr() for g in graphs}
    else:
        assert all(g.shared is not None and g.arena is not None for g in graphs)

    del model
    gc.collect()
    if executor == "cpp":
        assert all(g.arena.numel() == 0 and g._run is None for g in graphs)
        held = [name for g in graphs for name, v in g.namespace.items()  # nothing keeps the old arena
                if isinstance(v, torch.Tensor) and v.untyped_storage().data_ptr() in arenas]
        assert not held, held
    else:
        assert all(g.shared is None and g.arena is None for g in graphs)

    torch.manual_seed(1)
    model = _Net()  # the same class: Dynamo's cached graphs serve it
    reference = _Net()
    reference.load_state_dict(model.state_dict())
    loss, grads = _train_step(model, x)
    expected = reference(x)
    expected.backward()
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-5, atol=1e-6)
    for g, p in zip(grads, reference.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-6)
    assert set(map(id, _graphs(kind, before))) == set(map(id, graphs)), "the cached graphs ran again"
    del graphs
    torch._dynamo.reset()
