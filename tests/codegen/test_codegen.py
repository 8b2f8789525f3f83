"""Generated C++ vs the reference interpreter, and the fusion decisions, from IR text."""
from __future__ import annotations

import pytest
import torch
from codegen_cases import CROSS_ENTROPY, EMBEDDING, ONE_HOT, SHIFTED, targets
from codegen_cases import compare as _compare
from codegen_cases import graph as _graph
from hypothesis import HealthCheck, given, settings
from ir.ir_builders import random_graphs

from tensorsmith.codegen.schedule import KernelStep, LibraryStep
from tensorsmith.passes.fuse import schedule
from tensorsmith.runtime.library_call import views_bound_once
from tensorsmith.compile.codegen import generate_code
from tensorsmith.errors import IndexOutOfRange


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(max_nodes=8, allow_dead=False))
def test_random_graphs_match_the_interpreter(graph):
    _compare(graph)


SOFTMAX = """\
    graph @softmax(%x: f32[6,50]@cpu) {
      %0 = reduce(%x) {kind="max", dims=[1]} : f32[6]@cpu
      %1 = broadcast_in_dim(%0) {shape=[6,50], dims=[0]} : f32[6,50]@cpu
      %2 = sub(%x, %1) : f32[6,50]@cpu
      %3 = exp(%2) : f32[6,50]@cpu
      %4 = reduce(%3) {kind="sum", dims=[1]} : f32[6]@cpu
      %5 = broadcast_in_dim(%4) {shape=[6,50], dims=[0]} : f32[6,50]@cpu
      %6 = div(%3, %5) : f32[6,50]@cpu
      return %6
    }
"""


def _kernels(graph):
    return [s.kernel for s in schedule(graph).steps if isinstance(s, KernelStep)]


def test_softmax_is_one_kernel_of_three_stages_over_a_row():
    graph = _graph(SOFTMAX)
    (kernel,) = _kernels(graph)
    assert [type(s).__name__ for s in kernel.stages] == ["Reduce", "Reduce", "Store"]
    assert [v.extent for v in kernel.outer] == [6]
    _compare(graph)


def test_pointwise_chain_is_one_kernel_without_intermediate_buffers():
    graph = _graph("""\
        graph @gelu(%x: f32[4,33]@cpu) {
          %0 = mul(%x, %x) : f32[4,33]@cpu
          %1 = tanh(%0) : f32[4,33]@cpu
          %2 = erf(%1) : f32[4,33]@cpu
          %3 = add(%2, %x) : f32[4,33]@cpu
          return %3
        }
    """)
    (kernel,) = _kernels(graph)
    assert len(kernel.stages) == 1 and kernel.outputs == [schedule(graph).outputs[0]]
    _compare(graph)


def test_expensive_value_used_by_two_kernels_is_computed_once():
    graph = _graph("""\
        graph @shared(%x: f32[8,16]@cpu) {
          %0 = exp(%x) : f32[8,16]@cpu
          %1 = reduce(%0) {kind="sum", dims=[0]} : f32[16]@cpu
          %2 = reduce(%0) {kind="sum", dims=[1]} : f32[8]@cpu
          return %1, %2
        }
    """)
    s = schedule(graph)
    exp_buffer = s.node_buffer[graph.nodes[0]]
    writers = [k for k in _kernels(graph) if exp_buffer in k.outputs]
    readers = [k for k in _kernels(graph) if exp_buffer in k.inputs]
    assert len(writers) == 1 and readers, "exp is stored once and loaded by the other reduction"
    _compare(graph)


def test_cheap_value_shared_with_another_kernel_is_recomputed_not_stored():
    graph = _graph(CROSS_ENTROPY)
    shifted = schedule(graph).node_buffer.get(graph.nodes[2])
    assert shifted is None or not any(shifted in k.outputs for k in _kernels(graph)), \
        "logits minus the row max are recomputed where the target is gathered, not stored"
    x = torch.randn(6, 37)
    _compare(graph, [x, targets()])


def test_one_per_row_scatter_is_fused_and_checks_its_index():
    graph = _graph(ONE_HOT)
    s = schedule(graph)
    assert not any(isinstance(st, LibraryStep) for st in s.steps), "no zero-filled buffer, no library scatter"
    _compare(graph, [targets(), torch.randn(6, 1), torch.randn(6, 37)])
    with pytest.raises(IndexOutOfRange, match="out of range"):
        generate_code(graph)([targets(out_of_range=True), torch.randn(6, 1), torch.randn(6, 37)])


def test_reduction_over_leading_dims_vectorizes_across_the_last():
    graph = _graph("""\
        graph @bias_grad(%g: f32[9,7,130]@cpu) {
          %0 = reduce(%g) {kind="sum", dims=[0,1]} : f32[130]@cpu
          return %0
        }
    """)
    (kernel,) = _kernels(graph)
    assert kernel.lanes
    _compare(graph)


def test_matmul_takes_a_transposed_weight_as_a_view_not_a_copy():
    graph = _graph("""\
        graph @linear(%x: f32[5,8]@cpu, %w: f32[3,8]@cpu) {
          %0 = transpose(%w) {perm=[1,0]} : f32[8,3]@cpu
          %1 = dot(%x, %0) : f32[5,3]@cpu
          return %1
        }
    """)
    s = schedule(graph)
    assert not _kernels(graph), "no kernel copies the transpose"
    (step,) = s.steps
    assert isinstance(step, LibraryStep) and [v.op for v in step.views[1]] == ["transpose"]
    _compare(graph)


def test_embedding_lookup_out_of_range_raises_instead_of_reading_outside():
    compiled = generate_code(_graph(EMBEDDING))
    w = torch.randn(10, 4)
    ids = torch.tensor([1, 9, 4])
    torch.testing.assert_close(compiled([w, ids])[0], w[ids] * w[ids])
    with pytest.raises(IndexOutOfRange, match="out of range"):
        compiled([w, torch.tensor([1, 10, 4])])


def test_nan_propagates_through_max_reduction_and_maximum():
    graph = _graph("""\
        graph @nan(%x: f32[4,20]@cpu, %y: f32[4,20]@cpu) {
          %0 = reduce(%x) {kind="max", dims=[1]} : f32[4]@cpu
          %1 = max(%x, %y) : f32[4,20]@cpu
          return %0, %1
        }
    """)
    x, y = torch.randn(4, 20), torch.randn(4, 20)
    x[1, 7] = float("nan")
    y[2, 3] = float("nan")
    _compare(graph, [x, y])



def test_index_algebra_floors_negative_offsets_as_python_does():
    _compare(_graph(SHIFTED))


def test_a_product_reads_an_arena_buffer_through_a_view_made_once():
    """A library step's view of an arena buffer (a static graph's intermediate, always at the same
    place) is made when the wrapper is generated, not on each call; each call still reads that
    call's values. A view chain that would copy (flattening a transpose) stays per call."""
    graph = _graph("""\
        graph @viewed(%x: f32[4,6]@cpu, %w: f32[4,3]@cpu, %v: f32[24,2]@cpu) {
          %0 = mul(%x, %x) : f32[4,6]@cpu
          %1 = transpose(%0) {perm=[1,0]} : f32[6,4]@cpu
          %2 = dot(%1, %w) : f32[6,3]@cpu
          %3 = reshape(%1) {shape=[1,24]} : f32[1,24]@cpu
          %4 = dot(%3, %v) : f32[1,2]@cpu
          return %2, %4
        }
    """)
    compiled = generate_code(graph)
    for _ in range(2):  # new values each call, through the same views
        x, w, v = torch.randn(4, 6), torch.randn(4, 3), torch.randn(24, 2)
        got = compiled([x, w, v])
        torch.testing.assert_close(got[0], (x * x).t() @ w)
        torch.testing.assert_close(got[1], (x * x).t().reshape(1, 24) @ v)
    views = [name for name in compiled.namespace if name.startswith("lib") and "_in" in name]
    assert len(views) == 2, views  # the transpose, and the reshape of the copy a kernel made of it

    transpose, reshape = graph.nodes[1], graph.nodes[3]
    step = LibraryStep(graph.nodes[4], ["a", "b"], "out", [[transpose, reshape], []])
    arena = torch.randn(4, 6)
    kept, names, bound = views_bound_once(step, 7, {"a": arena, "b": torch.randn(24, 2)})
    assert kept is step and names == ["a", "b"] and not bound  # a copy would go stale
    step.views = [[transpose], []]
    kept, names, bound = views_bound_once(step, 7, {"a": arena})
    assert names == ["lib7_in0", "b"] and kept.views == [[], []]
    assert bound["lib7_in0"].data_ptr() == arena.data_ptr() and bound["lib7_in0"].shape == (6, 4)
