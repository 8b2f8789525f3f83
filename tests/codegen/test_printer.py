"""The schedule printer shows what fusion decided: each kernel's loops, stages, reads and writes,
and each library call with the views its inputs are seen through."""
from __future__ import annotations

import textwrap

from tensorsmith.codegen.printer import format_index, print_schedule
from tensorsmith.codegen.index import Affine, Var
from tensorsmith.ir import parse_graph, verify
from tensorsmith.passes.fuse import schedule

SOFTMAX_THEN_MATMUL = """\
    graph @softmax(%x: f32[4,16]@cpu, %w: f32[16,8]@cpu) {
      %0 = reduce(%x) {kind="max", dims=[1]} : f32[4]@cpu
      %1 = broadcast_in_dim(%0) {shape=[4,16], dims=[0]} : f32[4,16]@cpu
      %2 = sub(%x, %1) : f32[4,16]@cpu
      %3 = exp(%2) : f32[4,16]@cpu
      %4 = reduce(%3) {kind="sum", dims=[1]} : f32[4]@cpu
      %5 = broadcast_in_dim(%4) {shape=[4,16], dims=[0]} : f32[4,16]@cpu
      %6 = div(%3, %5) : f32[4,16]@cpu
      %7 = dot(%6, %w) : f32[4,8]@cpu
      %8 = transpose(%7) {perm=[1,0]} : f32[8,4]@cpu
      return %8
    }"""


def test_softmax_prints_as_one_kernel_of_stages_and_a_library_product():
    graph = parse_graph(textwrap.dedent(SOFTMAX_THEN_MATMUL))
    verify(graph)
    plan = schedule(graph)
    text = print_schedule(plan)
    kernel_lines = [line for line in text.splitlines() if line.strip().startswith("kernel ")]
    assert len(kernel_lines) == 1, text  # max, sum and the division fused into one row kernel
    assert "= max over [" in text and "= sum over [" in text, text
    assert "exp(" in text and "div(" in text, text
    assert "library" in text and "= dot(" in text, text
    assert text.rstrip().endswith("via transpose"), text  # the output is a view of the product
    for name, buffer in plan.buffers.items():
        assert f"  {name}: {buffer.type}" in text


def test_index_expressions_print_in_their_terms():
    x, y = Var("x0", 4), Var("x1", 8)
    index = Affine.of(x) * 8 + Affine.of(y) + 3
    assert format_index(index) in ("8*x0 + x1 + 3", "x1 + 8*x0 + 3")
    assert format_index(Affine.of(y).floordiv(3)) == "(x1)//3"
    assert format_index(Affine.of(y).mod(3)) == "(x1)%3"
    assert format_index(Affine()) == "0"
