"""Graphs and the comparison both code generators' tests use (C++ in test_codegen.py, Triton in
test_triton.py): the same IR must give the interpreter's numbers through either backend."""
from __future__ import annotations

import textwrap

import torch
from ir.ir_builders import random_inputs

from tensorsmith.ir import interpret, parse_graph, verify
from tensorsmith.compile.codegen import generate_code


def graph(text: str):
    return parse_graph(textwrap.dedent(text))


def compare(ir_graph, inputs=None, tol: float = 2e-5):
    """Run `ir_graph` through generated code and the interpreter on the same (random) inputs;
    returns the compiled graph."""
    verify(ir_graph)
    inputs = inputs or random_inputs(ir_graph)
    expected = interpret(ir_graph, inputs)
    compiled = generate_code(ir_graph)
    actual = compiled([x.contiguous() for x in inputs])
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype
        torch.testing.assert_close(a, e, rtol=tol, atol=tol, equal_nan=True)
    return compiled


# prod's backward: a reversed, shifted view of a flattened matrix, and a pad with negative edges.
# Index maps floor (C's % truncates toward zero) and pad/concat must never read outside a buffer.
SHIFTED = """\
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
"""

# An embedding lookup: ids read from data, range-checked.
EMBEDDING = """\
    graph @embed(%w: f32[10,4]@cpu, %ids: i64[3]@cpu) {
      %0 = take(%w, %ids) {dim=0} : f32[3,4]@cpu
      %1 = mul(%0, %0) : f32[3,4]@cpu
      return %1
    }
"""

# Cross-entropy's forward as the frontend lowers it: the shifted logits %2 feed both the
# log-sum-exp and the gather of each row's target; the backward's one-hot target is a scatter
# of one value per row into zeros.
CROSS_ENTROPY = """\
    graph @cross_entropy(%x: f32[6,37]@cpu, %t: i64[6,1]@cpu) {
      %0 = reduce(%x) {kind="max", dims=[1]} : f32[6]@cpu
      %1 = broadcast_in_dim(%0) {shape=[6,37], dims=[0]} : f32[6,37]@cpu
      %2 = sub(%x, %1) : f32[6,37]@cpu
      %3 = exp(%2) : f32[6,37]@cpu
      %4 = reduce(%3) {kind="sum", dims=[1]} : f32[6]@cpu
      %5 = log(%4) : f32[6]@cpu
      %6 = gather(%2, %t) {dim=1} : f32[6,1]@cpu
      %7 = reshape(%6) {shape=[6]} : f32[6]@cpu
      %8 = sub(%5, %7) : f32[6]@cpu
      %9 = reduce(%8) {kind="sum", dims=[0]} : f32[]@cpu
      return %9
    }
"""
ONE_HOT = """\
    graph @one_hot(%t: i64[6,1]@cpu, %g: f32[6,1]@cpu, %x: f32[6,37]@cpu) {
      %0 = constant() {value=0.0, shape=[6,37], dtype=f32, device="cpu"} : f32[6,37]@cpu
      %1 = scatter(%0, %t, %g) {dim=1} : f32[6,37]@cpu
      %2 = reduce(%1) {kind="sum", dims=[1]} : f32[6]@cpu
      %3 = broadcast_in_dim(%2) {shape=[6,37], dims=[0]} : f32[6,37]@cpu
      %4 = mul(%x, %3) : f32[6,37]@cpu
      %5 = sub(%1, %4) : f32[6,37]@cpu
      return %5
    }
"""


def targets(rows: int = 6, classes: int = 37, out_of_range: bool = False) -> torch.Tensor:
    t = torch.randint(0, classes, (rows, 1))
    if out_of_range:
        t[rows // 2, 0] = classes
    return t
