"""What keeps scheduling cheap on big graphs leaves the schedule as it was: kernels that cannot take a
node are not tried, and view checks repeated across a model's layers are answered once."""
from __future__ import annotations

import textwrap

from hypothesis import HealthCheck, given, settings
from ir.ir_builders import random_graphs

from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.ir import parse_graph
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
