"""The memory plan: buffers alive at the same time never share bytes; dead ones are reused."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from ir.ir_builders import random_graphs

from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.ir import parse_graph
from tensorsmith.passes.fuse import schedule
from tensorsmith.runtime.memory import plan_memory


def _lifetimes(s):
    first, last = {}, {}
    for i, step in enumerate(s.steps):
        written = step.kernel.outputs if isinstance(step, KernelStep) else []
        read = step.kernel.inputs if isinstance(step, KernelStep) else step.inputs
        for b in written:
            first.setdefault(b, i)
            last[b] = max(last.get(b, i), i)
        for b in read:
            if b in first:
                last[b] = max(last[b], i)
    return first, last


def _check_plan(s):
    plan = plan_memory(s)
    first, last = _lifetimes(s)
    spans = {b: (o, o + s.buffers[b].type.numel * s.buffers[b].type.dtype.torch_dtype.itemsize)
             for b, o in plan.offsets.items()}
    for a in spans:
        assert a not in s.outputs
        for b in spans:
            if a < b and not (last[a] < first[b] or last[b] < first[a]):
                (a0, a1), (b0, b1) = spans[a], spans[b]
                assert a1 <= b0 or b1 <= a0 or a0 == a1 or b0 == b1, f"{a} and {b} overlap while alive"
    assert plan.arena_bytes <= plan.unplanned_bytes + 64 * len(spans)
    return plan


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(max_nodes=10))
def test_live_buffers_never_overlap(graph):
    _check_plan(schedule(graph))


def test_a_chain_of_kernels_reuses_memory():
    # Each sum over a leading dim is its own kernel; each intermediate dies after the next step.
    text = ["graph @chain(%x: f32[64,64,64]@cpu) {"]
    text.append('  %0 = reduce(%x) {kind="sum", dims=[0]} : f32[64,64]@cpu')
    text.append('  %1 = dot(%0, %0) : f32[64,64]@cpu')
    text.append('  %2 = exp(%1) : f32[64,64]@cpu')
    text.append('  %3 = dot(%2, %2) : f32[64,64]@cpu')
    text.append('  %4 = tanh(%3) : f32[64,64]@cpu')
    text.append('  %5 = dot(%4, %4) : f32[64,64]@cpu')
    text.append("  return %5")
    text.append("}")
    plan = _check_plan(schedule(parse_graph("\n".join(text) + "\n")))
    assert plan.unplanned_bytes == 3 * 64 * 64 * 4
    assert plan.arena_bytes < plan.unplanned_bytes
