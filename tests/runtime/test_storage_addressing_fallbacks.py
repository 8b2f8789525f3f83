"""Swin's bf16 training on CUDA gave all-zero gradients with half kernels in the backward graph.

The cause is not in the half kernels: it is a fallback that addresses its input's *storage*.
The backward of Swin's pooler (AdaptiveAvgPool1d) is `as_strided_scatter(zeros(64), grad, [2, 32],
[32, 1], 0)`: storage offset 0 means "the first element of the zeros' storage", which in eager is
a fresh tensor. With half kernels the bf16 zeros became a generated kernel's output, a view of the
shared arena at the memory plan's offset; ATen then wrote the gradient at the arena's offset 0 (of
its whole-storage copy), outside the view, and returned the zeros: every gradient behind the pooler
was 0 (77 of Swin-tiny's 79). Half kernels off, the bf16 constant was a fresh tensor (offset 0).
On the CPU the same graph happened to get offset 0 for that buffer, which is why it never
reproduced there.

These graphs put the fallback's input at a nonzero arena offset on purpose (a larger buffer live
at the same time is placed first) and compare with the interpreter, which gives the op a fresh
tensor. Not specific to half types: float32 through the C++ backend fails the same way.
"""
from __future__ import annotations

import textwrap

import pytest
import torch

import tensorsmith
from tensorsmith.codegen.schedule import LibraryStep
from tensorsmith.compile.codegen import generate_code
from tensorsmith.ir import interpret, parse_graph, verify

# x's row sums (a buffer live across the fallback, larger than the zeros, so placed first at offset
# 0), the zeros, the pooler backward's as_strided_scatter, then something reading both.
POOLER_BACKWARD = """\
    graph @backward(%x: {t}[2,128,32]@cpu, %grad: {t}[2,32]@cpu) {{
      %0 = reduce(%x) {{kind="sum", dims=[2]}} : {t}[2,128]@cpu
      %1 = constant() {{value=0.0, shape=[64], dtype={t}, device="cpu"}} : {t}[64]@cpu
      %2 = fallback(%1, %grad) {{target="aten.as_strided_scatter.default", args=[$0, $1, [2, 32], [32, 1], 0], kwargs={{}}}} : {t}[64]@cpu
      %3 = reshape(%2) {{shape=[2, 32]}} : {t}[2,32]@cpu
      %4 = reduce(%0) {{kind="max", dims=[1]}} : {t}[2]@cpu
      %5 = broadcast_in_dim(%4) {{shape=[2, 32], dims=[0]}} : {t}[2,32]@cpu
      %6 = add(%3, %5) : {t}[2,32]@cpu
      return %6
    }}
"""

# as_strided with an explicit storage offset falls back too (frontend/lowering/layout.py); its
# input, computed by a kernel, lives in the arena.
AS_STRIDED = """\
    graph @main(%x: {t}[2,128,32]@cpu, %y: {t}[64]@cpu) {{
      %0 = reduce(%x) {{kind="sum", dims=[2]}} : {t}[2,128]@cpu
      %1 = exp(%y) : {t}[64]@cpu
      %2 = fallback(%1) {{target="aten.as_strided.default", args=[$0, [2, 16], [32, 2], 1], kwargs={{}}}} : {t}[2,16]@cpu
      %3 = reduce(%0) {{kind="max", dims=[1]}} : {t}[2]@cpu
      %4 = broadcast_in_dim(%3) {{shape=[2, 16], dims=[0]}} : {t}[2,16]@cpu
      %5 = add(%2, %4) : {t}[2,16]@cpu
      return %5
    }}
"""


def _check(text: str, dtype: str, torch_dtype, tol: float):
    graph = parse_graph(textwrap.dedent(text.format(t=dtype)))
    verify(graph)
    inputs = [torch.randn(p.type.shape).to(torch_dtype) for p in graph.params]
    expected = interpret(graph, inputs)
    compiled = generate_code(parse_graph(textwrap.dedent(text.format(t=dtype))))
    (step,) = [s for s in compiled.schedule.steps if isinstance(s, LibraryStep)]
    offset = compiled.plan.offsets.get(step.inputs[0])
    assert offset, "the test needs the fallback's input in the arena at a nonzero offset"
    actual = compiled([x.contiguous() for x in inputs])
    torch.testing.assert_close(actual[0], expected[0], rtol=tol, atol=tol)


@pytest.mark.parametrize("text", [POOLER_BACKWARD, AS_STRIDED], ids=["as_strided_scatter", "as_strided"])
def test_storage_addressing_fallback_on_arena_buffer_half_kernels(text, interpreted_triton, monkeypatch):
    """bf16 through Triton (interpreted) with half kernels: Swin's case."""
    monkeypatch.setattr(tensorsmith.config, "half_kernels", True)
    _check(text, "bf16", torch.bfloat16, 0.0)  # each op rounded as eager: the same bits


@pytest.mark.parametrize("text", [POOLER_BACKWARD, AS_STRIDED], ids=["as_strided_scatter", "as_strided"])
def test_storage_addressing_fallback_on_arena_buffer_cpp(text, monkeypatch):
    """float32 through the C++ backend: the same cause without any half type."""
    monkeypatch.setattr(tensorsmith.config, "executor", "cpp")
    _check(text, "f32", torch.float32, 2e-5)  # C++'s sum order and exp differ in the last bits
