"""Deferred index checks (runtime/index_checks.py): a training forward's or backward's out-of-range
index is raised at the end of the next compiled call, naming the graph; other graphs raise in their own.
Run on interpreted Triton graphs on the CPU, where a deferred check is read the same way without
an event to wait for."""
from __future__ import annotations

import gc
import os
import sys
import weakref

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "codegen"))
from codegen_cases import EMBEDDING
from codegen_cases import graph as _graph

import tensorsmith
from tensorsmith.runtime import index_checks
from tensorsmith.compile.codegen import generate_code
from tensorsmith.errors import IndexOutOfRange
from tensorsmith.runtime.cuda import TritonGraph

SCALE = """\
    graph @scale(%x: f32[4,3]@cpu) {
      %0 = mul(%x, %x) : f32[4,3]@cpu
      return %0
    }
"""


@pytest.fixture
def graphs(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", "triton")
    forward = generate_code(_graph(EMBEDDING))
    later = generate_code(_graph(SCALE))
    assert isinstance(forward, TritonGraph) and forward.checks
    forward.defers_checks = True  # as for a training forward on CUDA
    yield forward, later
    index_checks._PENDING.clear()


def test_a_deferred_check_raises_at_the_end_of_the_next_call_naming_the_forward(graphs):
    forward, later = graphs
    w = torch.randn(10, 4)
    ids = torch.tensor([1, 9, 4])
    torch.testing.assert_close(forward([w, ids])[0], w[ids] * w[ids])
    later([torch.randn(4, 3)])  # a clean forward's deferred check passes quietly

    forward([w, torch.tensor([1, 10, 4])])  # out of range: nothing raised yet
    with pytest.raises(IndexOutOfRange, match="last call of .*read after the next call"):
        later([torch.randn(4, 3)])
    assert index_checks.pending(torch.device("cpu")) == 0
    x = torch.randn(4, 3)
    torch.testing.assert_close(later([x])[0], x * x)  # the flag was cleared: nothing left to raise


def test_the_next_call_of_the_forward_itself_reads_its_previous_check(graphs):
    forward, _ = graphs
    w = torch.randn(10, 4)
    forward([w, torch.tensor([0, 10, 2])])
    with pytest.raises(IndexOutOfRange):
        forward([w, torch.tensor([0, 1, 2])])


def test_graphs_that_do_not_defer_raise_in_their_own_call(graphs):
    forward, _ = graphs
    forward.defers_checks = False
    with pytest.raises(IndexOutOfRange, match="out of range"):
        forward([torch.randn(10, 4), torch.tensor([0, 10, 2])])
    assert index_checks.pending(torch.device("cpu")) == 0


SCATTER_ADD = """\
    graph @embedding_grad(%g: f32[10,4]@cpu, %ids: i64[3,4]@cpu, %src: f32[3,4]@cpu) {
      %0 = mul(%g, %g) : f32[10,4]@cpu
      %1 = scatter_add(%0, %ids, %src) {dim=0} : f32[10,4]@cpu
      return %1
    }
"""


def test_a_library_step_reading_indices_waits_for_the_deferred_check_before_it(graphs):
    """PyTorch's own index kernels assert on the GPU (poisoning the CUDA context), so a backward's
    library step that reads index data runs only after the forward's deferred check was read."""
    forward, _ = graphs
    backward = generate_code(_graph(SCATTER_ADD))
    assert backward.settles
    w = torch.randn(10, 4)
    forward([w, torch.tensor([1, 10, 4])])  # out of range: deferred
    bad_ids = torch.full((3, 4), 10)  # would make scatter_add itself raise
    with pytest.raises(IndexOutOfRange, match="last call of"):
        backward([w, bad_ids, torch.randn(3, 4)])
    g, ids, src = torch.randn(10, 4), torch.randint(0, 10, (3, 4)), torch.randn(3, 4)
    torch.testing.assert_close(backward([g, ids, src])[0], (g * g).scatter_add(0, ids, src))


def test_a_raised_check_drops_the_checks_still_pending_after_it(graphs):
    """Two deferred bad calls (a step's forward and backward) raise once; the data fixed, calls run
    clean instead of raising again for the old flags."""
    forward, later = graphs
    later.defers_checks = True
    w = torch.randn(10, 4)
    forward([w, torch.tensor([3, 10, 2])])  # bad: deferred
    with pytest.raises(IndexOutOfRange):  # bad again: reads the first check, which raises
        forward([w, torch.tensor([3, 11, 2])])
    assert index_checks.pending(torch.device("cpu")) == 0
    ids = torch.tensor([3, 9, 2])
    torch.testing.assert_close(forward([w, ids])[0], w[ids] * w[ids])
    x = torch.randn(4, 3)
    torch.testing.assert_close(later([x])[0], x * x)


def test_a_pending_check_does_not_keep_its_graph_alive_and_still_raises(graphs):
    """A run's last forward leaves its check pending; the graph (its arena, its CUDA graphs) must go
    when the model does, and the check still names it when the next compiled call reads it."""
    _, later = graphs
    forward = generate_code(_graph(EMBEDDING))  # not the fixture's, which it holds
    forward.defers_checks = True
    w = torch.randn(10, 4)
    forward([w, torch.tensor([0, 10, 2])])  # bad, and the last call of this graph
    assert index_checks.pending(torch.device("cpu")) == 1
    name = forward.record.graph_id if forward.record is not None else forward.schedule.graph.name
    gone = weakref.ref(forward)
    del forward
    gc.collect()  # (Triton's interpreter leaves the last launch's arguments in a cycle)
    assert gone() is None, "a pending index check keeps its graph alive"
    with pytest.raises(IndexOutOfRange, match=f"last call of {name}"):
        later([torch.randn(4, 3)])


def test_training_graphs_on_cuda_defer_and_the_rest_check_in_their_own_call(monkeypatch):
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert index_checks.defers("forward", cuda) and index_checks.defers("backward", cuda)
    assert not index_checks.defers("inference", cuda)
    assert not index_checks.defers(None, cuda)  # a graph not from torch.compile
    assert not index_checks.defers("forward", cpu)
    monkeypatch.setattr(tensorsmith.config, "sync_index_checks", True)
    assert not index_checks.defers("forward", cuda) and not index_checks.defers("backward", cuda)
