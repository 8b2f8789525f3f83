"""Graphs and the comparison both code generators' tests use (C++ in test_codegen.py, Triton in
test_triton.py): the same IR must give the interpreter's numbers through either backend."""
from __future__ import annotations

import textwrap

import torch
from ir.ir_builders import random_inputs

from tensorsmith.ir import interpret, parse_graph, verify
from tensorsmith.runtime.codegen import generate_code


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
