"""Graphs with symbolic sizes through the C++ and Triton code generators (Triton under
TRITON_INTERPRET=1), compiled once and run at sizes the compile never saw, against the
interpreter (the definition, ir/interpret.py) in float64."""
from __future__ import annotations

import textwrap

import pytest
import torch

import tensorsmith
from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.codegen.triton import blocks
from tensorsmith.compile.codegen import generate_code
from tensorsmith.ir import interpret, parse_graph, verify
from tensorsmith.runtime.sizes import SizeBinding

# A decode step's shapes: the key/value cache grows by one (concat), a row softmax over the keys,
# reshapes that split and merge a symbolic dimension, a transpose and broadcasts.
DECODE = """\
    graph @decode(%q: f32[2,1,8]@cpu, %past: f32[2,<s0>,8]@cpu, %new: f32[2,1,8]@cpu) sizes(s0: [2, inf]) {
      %0 = concat(%past, %new) {dim=1} : f32[2,<s0+1>,8]@cpu
      %1 = broadcast_in_dim(%q) {shape=[2, <s0+1>, 8], dims=[0, 1, 2]} : f32[2,<s0+1>,8]@cpu
      %2 = mul(%0, %1) : f32[2,<s0+1>,8]@cpu
      %3 = reduce(%2) {kind="sum", dims=[2]} : f32[2,<s0+1>]@cpu
      %4 = reduce(%3) {kind="max", dims=[1]} : f32[2]@cpu
      %5 = broadcast_in_dim(%4) {shape=[2, <s0+1>], dims=[0]} : f32[2,<s0+1>]@cpu
      %6 = sub(%3, %5) : f32[2,<s0+1>]@cpu
      %7 = exp(%6) : f32[2,<s0+1>]@cpu
      %8 = reduce(%7) {kind="sum", dims=[1]} : f32[2]@cpu
      %9 = broadcast_in_dim(%8) {shape=[2, <s0+1>], dims=[0]} : f32[2,<s0+1>]@cpu
      %10 = div(%7, %9) : f32[2,<s0+1>]@cpu
      %11 = reshape(%0) {shape=[<2*s0+2>, 8]} : f32[<2*s0+2>,8]@cpu
      %12 = transpose(%11) {perm=[1, 0]} : f32[8,<2*s0+2>]@cpu
      %13 = tanh(%12) : f32[8,<2*s0+2>]@cpu
      return %10, %13, %0
    }
"""

# Rows of a symbolic batch (s0) and length (s1): a layer norm's statistics over the last dim, a
# slice and a padding that move along a symbolic dim.
ROWS = """\
    graph @rows(%x: f32[<s0>,<s1>,16]@cpu) sizes(s0: [2, inf], s1: [2, inf]) {
      %0 = reduce(%x) {kind="sum", dims=[2]} : f32[<s0>,<s1>]@cpu
      %1 = broadcast_in_dim(%0) {shape=[<s0>, <s1>, 16], dims=[0, 1]} : f32[<s0>,<s1>,16]@cpu
      %2 = sub(%x, %1) : f32[<s0>,<s1>,16]@cpu
      %3 = slice(%2) {starts=[0, 1, 0], limits=[<s0>, <s1>, 16], strides=[1, 1, 1]} : f32[<s0>,<s1-1>,16]@cpu
      %4 = pad(%3) {low=[0, 0, 0], high=[0, 1, 0], value=0.0} : f32[<s0>,<s1>,16]@cpu
      %5 = reshape(%4) {shape=[<s0*s1>, 16]} : f32[<s0*s1>,16]@cpu
      %6 = reduce(%5) {kind="max", dims=[0]} : f32[16]@cpu
      return %5, %6
    }
"""

# A softmax over rows of a length bounded by its range (s1 <= 64): kept whole in one tile, with
# int32 indices; then a symbolic last dimension split over several inner blocks (a 1-D grid).
BOUNDED = """\
    graph @bounded(%x: f32[<s0>,<s1>]@cpu, %y: f32[3,<s0*s1>]@cpu) sizes(s0: [2, 40], s1: [2, 64]) {
      %0 = reduce(%x) {kind="max", dims=[1]} : f32[<s0>]@cpu
      %1 = broadcast_in_dim(%0) {shape=[<s0>, <s1>], dims=[0]} : f32[<s0>,<s1>]@cpu
      %2 = sub(%x, %1) : f32[<s0>,<s1>]@cpu
      %3 = exp(%2) : f32[<s0>,<s1>]@cpu
      %4 = reduce(%3) {kind="sum", dims=[1]} : f32[<s0>]@cpu
      %5 = broadcast_in_dim(%4) {shape=[<s0>, <s1>], dims=[0]} : f32[<s0>,<s1>]@cpu
      %6 = div(%3, %5) : f32[<s0>,<s1>]@cpu
      %7 = argmax(%y) {dim=0} : i64[<s0*s1>]@cpu
      %8 = sigmoid(%y) : f32[3,<s0*s1>]@cpu
      return %6, %7, %8
    }
"""


@pytest.fixture(params=["cpp", "triton"])
def executor(request, monkeypatch):
    """The code generator under test; Triton runs through its interpreter on the CPU."""
    if request.param == "triton":
        pytest.importorskip("triton")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", request.param)
    return request.param


@pytest.mark.parametrize("text,sizes", [(DECODE, [(2,), (5,), (17,)]),
                                        (ROWS, [(2, 3), (7, 2), (3, 11)]),
                                        (BOUNDED, [(2, 3), (37, 64), (5, 17)])],
                         ids=["decode", "rows", "bounded"])
def test_compiled_once_runs_every_size(text, sizes, executor, monkeypatch):
    if executor == "triton":  # several inner blocks and looped rows at interpreter-sized shapes
        monkeypatch.setattr(blocks, "POINTWISE_TILE", 16)
        monkeypatch.setattr(blocks, "LOOPED_RBLOCK", 8)
    graph = parse_graph(textwrap.dedent(text))
    verify(graph)
    compiled = generate_code(parse_graph(textwrap.dedent(text)))
    assert any(isinstance(s, KernelStep) for s in compiled.schedule.steps)
    binding = SizeBinding(graph)
    names = sorted(binding.ranges)
    for values in sizes:
        values = dict(zip(names, values))
        shapes = binding.shapes_for(values)
        inputs = [torch.randn(shape) for shape in shapes]
        expected = interpret(graph, inputs, float64=True, sizes=values)
        actual = compiled(inputs, values)
        for a, e in zip(actual, expected):
            assert a.shape == e.shape
            torch.testing.assert_close(a.to(e.dtype), e, rtol=1e-5, atol=1e-5)
    assert compiled.record.whole_graph_fallback is None  # the kernels ran, not the interpreter
    assert all(name in compiled.source for name in names)  # sizes passed to the kernels
