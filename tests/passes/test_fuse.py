"""What keeps scheduling cheap on big graphs leaves the schedule as it was: kernels that cannot take a
node are not tried, and view checks repeated across a model's layers are answered once. And what
one kernel takes: a layer norm whole."""
from __future__ import annotations

import textwrap

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ir.ir_builders import random_graphs
from torch._subclasses.fake_tensor import FakeTensorMode

from tensorsmith import records
from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.ir import parse_graph
from tensorsmith.ir.graph import Graph
from tensorsmith.ir.interpret import Interpreter
from tensorsmith.ir.types import F32, TensorType
from tensorsmith.passes import fuse


def _layers(count: int) -> str:
    """`count` layers of matmul -> tanh -> reduction: each layer's kernels read the matmul before."""
    lines, x = [], "%x"
    for i in range(count):
        lines += [f"%d{i} = dot(%{x[1:]}, %w) : f32[4,8]@cpu",
                  f"%t{i} = tanh(%d{i}) : f32[4,8]@cpu",
                  f"%s{i} = reduce(%t{i}) {{kind=\"sum\", dims=[1]}} : f32[4]@cpu"]
        x = f"%t{i}"
    body = "\n".join("  " + line for line in lines)
    outputs = ", ".join(f"%s{i}" for i in range(count))
    return f"graph @layers(%x: f32[4,8]@cpu, %w: f32[8,8]@cpu) {{\n{body}\n  return {outputs}\n}}\n"


def _rendered(schedule) -> list:
    """The schedule as comparable text: every step, buffer and output."""
    steps = [repr(s.kernel) if isinstance(s, KernelStep) else
             (s.node.op, s.inputs, s.output, [[v.op for v in chain] for chain in s.views])
             for s in schedule.steps]
    return [steps, sorted(schedule.buffers), schedule.outputs, schedule.params]


def _without_pruning(monkeypatch):
    """Schedule as before the readiness bound: every open kernel is tried."""
    monkeypatch.setattr(fuse._Scheduler, "_latest_read", lambda self, node: -1)


def test_kernels_before_an_input_is_written_are_not_tried(monkeypatch):
    graph = parse_graph(_layers(12))
    tried = []
    original = fuse._Scheduler._try
    monkeypatch.setattr(fuse._Scheduler, "_try",
                        lambda self, k, node: tried.append(node) or original(self, k, node))
    pruned = _rendered(fuse.schedule(graph))
    # Each layer's tanh waits for its matmul: it opens a kernel, and its reduction joins it (the
    # last tanh, read by nothing else, is computed inside its reduction).
    assert len(tried) == 2 * 12 - 1
    _without_pruning(monkeypatch)
    tried.clear()
    assert _rendered(fuse.schedule(graph)) == pruned
    assert len(tried) > 4 * 12


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(max_nodes=12, allow_dead=False))
def test_readiness_bound_keeps_every_schedule(graph):
    pruned = _rendered(fuse.schedule(graph))
    original = fuse._Scheduler._latest_read
    fuse._Scheduler._latest_read = lambda self, node: -1
    try:
        assert _rendered(fuse.schedule(graph)) == pruned
    finally:
        fuse._Scheduler._latest_read = original


TRANSPOSED_WEIGHTS = textwrap.dedent("""\
    graph @twice(%x: f32[4,8]@cpu, %w: f32[6,8]@cpu, %v: f32[6,8]@cpu) {
      %0 = transpose(%w) {perm=[1,0]} : f32[8,6]@cpu
      %1 = dot(%x, %0) : f32[4,6]@cpu
      %2 = transpose(%v) {perm=[1,0]} : f32[8,6]@cpu
      %3 = dot(%x, %2) : f32[4,6]@cpu
      return %1, %3
    }
""")


def test_a_repeated_view_chain_is_checked_once(monkeypatch):
    monkeypatch.setattr(fuse, "_STRIDED_VIEW_ANSWERS", {})
    checked = []
    original = fuse._check_strided_view
    monkeypatch.setattr(fuse, "_check_strided_view",
                        lambda base, chain: checked.append(chain) or original(base, chain))
    s = fuse.schedule(parse_graph(TRANSPOSED_WEIGHTS))
    assert len(checked) == 1
    assert [[v.op for v in step.views[1]] for step in s.steps] == [["transpose"], ["transpose"]]


def _factorizations(numel: int) -> list[list[int]]:
    shapes = [[numel], [1, numel], [numel, 1]]
    shapes += [[d, numel // d] for d in range(2, numel) if numel % d == 0]
    return shapes


@st.composite
def _view_chains(draw):
    """A row-major base and 1-3 view nodes on it, of the kinds library inputs and outputs keep."""
    graph = Graph()
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    node = base = graph.add_param("x", TensorType(shape, F32))
    chain = []
    for _ in range(draw(st.integers(1, 3))):
        t = node.type
        kind = draw(st.sampled_from(["reshape", "transpose", "slice", "broadcast_in_dim"]))
        if kind == "reshape":
            node = graph.add("reshape", [node], {"shape": draw(st.sampled_from(_factorizations(t.numel)))})
        elif kind == "transpose":
            node = graph.add("transpose", [node], {"perm": list(draw(st.permutations(range(t.rank))))})
        elif kind == "slice":
            starts = [draw(st.integers(0, n - 1)) for n in t.shape]
            limits = [draw(st.integers(lo + 1, n)) for lo, n in zip(starts, t.shape)]
            strides = [draw(st.integers(1, 2)) for _ in t.shape]
            node = graph.add("slice", [node], {"starts": starts, "limits": limits, "strides": strides})
        else:
            node = graph.add("broadcast_in_dim", [node], {"shape": [2, *t.shape],
                                                          "dims": list(range(1, t.rank + 1))})
        chain.append(node)
    return base, chain


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(_view_chains())
def test_view_check_on_plain_meta_tensors_answers_as_under_the_fake_mode(base_and_chain):
    """The check leaves AOTAutograd's fake mode (a millisecond of dispatch per view op there): plain
    meta tensors must tell views from copies exactly as fake ones do."""
    base, chain = base_and_chain
    with FakeTensorMode():
        tensor = torch.empty(base.type.shape, dtype=torch.float32, device="meta")
        expected = Interpreter().apply_views(tensor, chain)._base is tensor
        assert fuse._check_strided_view(base, chain) == expected


def test_a_training_layer_norm_is_one_kernel(executor):
    """A row statistic kept as (rows, 1) (layer norm's reciprocal deviation, saved for the
    backward) joins the kernel of its reductions, and the normalization joins it too: one pass over
    the rows instead of three kernels and a stored (x - mean)."""
    if executor == "interpreter":
        pytest.skip("the interpreter has no kernels")
    x = torch.randn(6, 10, 48, requires_grad=True)
    w, b = torch.randn(48, requires_grad=True), torch.randn(48, requires_grad=True)

    def f(x, w, b):
        return torch.nn.functional.layer_norm(x * 2, (48,), w, b)

    out = torch.compile(f, backend="tensorsmith")(x, w, b)
    grads = torch.autograd.grad(out.pow(2).sum(), (x, w, b))
    forward = next(r for r in records.RECORDS if r.kind == "forward")
    assert forward.kernels == 1 and forward.library_calls == 0, forward
    x64, w64, b64 = (t.detach().double().requires_grad_() for t in (x, w, b))
    expected = f(x64, w64, b64)
    expected_grads = torch.autograd.grad(expected.pow(2).sum(), (x64, w64, b64))
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4)
