"""Generated C++ vs the reference interpreter, and the fusion decisions, from IR text."""
from __future__ import annotations

import textwrap

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from ir.ir_builders import random_graphs, random_inputs

from tensorsmith.codegen.schedule import KernelStep, LibraryStep
from tensorsmith.ir import interpret, parse_graph, verify
from tensorsmith.passes.fuse import schedule
from tensorsmith.runtime.codegen import generate_code
from tensorsmith.runtime.compiled import IndexOutOfRange


def _compare(graph, inputs=None):
    verify(graph)
    inputs = inputs or random_inputs(graph)
    expected = interpret(graph, inputs)
    actual = generate_code(graph)([x.contiguous() for x in inputs])
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype
        torch.testing.assert_close(a, e, rtol=2e-5, atol=2e-5, equal_nan=True)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(max_nodes=8, allow_dead=False))
def test_random_graphs_match_the_interpreter(graph):
    _compare(graph)


def _graph(text: str):
    return parse_graph(textwrap.dedent(text))


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
    graph = _graph("""\
        graph @embed(%w: f32[10,4]@cpu, %ids: i64[3]@cpu) {
          %0 = take(%w, %ids) {dim=0} : f32[3,4]@cpu
          %1 = mul(%0, %0) : f32[3,4]@cpu
          return %1
        }
    """)
    compiled = generate_code(graph)
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
    # prod's backward: a reversed, shifted view of a flattened matrix. C's % truncates toward zero;
    # index maps floor, and the emitted code must agree for the negative intermediate offsets.
    graph = _graph("""\
        graph @shifted(%x: f32[3,4]@cpu) {
          %0 = reshape(%x) {shape=[12]} : f32[12]@cpu
          %1 = constant() {value=1.0, shape=[1], dtype=f32, device="cpu"} : f32[1]@cpu
          %2 = slice(%0) {starts=[1], limits=[12], strides=[1]} : f32[11]@cpu
          %3 = reverse(%2) {dims=[0]} : f32[11]@cpu
          %4 = concat(%1, %3) {dim=0} : f32[12]@cpu
          %5 = pad(%x) {low=[-1,2], high=[1,-3], value=0.5} : f32[3,3]@cpu
          %6 = reshape(%5) {shape=[9]} : f32[9]@cpu
          %7 = reverse(%6) {dims=[0]} : f32[9]@cpu
          return %4, %7
        }
    """)
    _compare(graph)
