"""Splitting column reductions for the GPU: same values, and the shape of the rewrite."""
from __future__ import annotations

import textwrap

import pytest
import torch

from tensorsmith.ir import interpret, parse_graph, verify
from tensorsmith.passes import split_reduction

BIAS_GRAD = """\
    graph @bias_grad(%g: f32[4,512,24]@cpu, %h: f32[4,512,24]@cpu) {
      %0 = reduce(%g) {kind="sum", dims=[0,1]} : f32[24]@cpu
      %1 = mul(%g, %h) : f32[4,512,24]@cpu
      %2 = reduce(%1) {kind="sum", dims=[0,1]} : f32[24]@cpu
      %3 = reduce(%h) {kind="max", dims=[0,1]} : f32[24]@cpu
      %4 = reduce(%g) {kind="sum", dims=[2]} : f32[4,512]@cpu
      return %0, %2, %3, %4
    }
"""


def _graph(text):
    return parse_graph(textwrap.dedent(text))


def test_column_sums_split_in_two_and_keep_their_values():
    graph = _graph(BIAS_GRAD)
    inputs = [torch.randn(4, 512, 24), torch.randn(4, 512, 24)]
    inputs[1][1, 7, 3] = float("nan")  # max still propagates NaN through the partial maxima
    expected = interpret(graph, inputs)
    assert split_reduction.run(graph)
    verify(graph)
    reduces = [n for n in graph.nodes if n.op == "reduce"]
    assert sorted(tuple(n.attrs["dims"]) for n in reduces) == [(0,)] * 3 + [(1,)] * 3 + [(2,)], \
        "each column reduction becomes partial sums over row groups, then a sum of those; rows stay"
    s = split_reduction.splits_for(2048, 24)
    assert {n.inputs[0].type.shape for n in reduces if n.attrs["dims"] == [1]} == {(s, 2048 // s, 24)}
    # Float32 sums of 2,048 standard normal terms in another order: about sqrt(2048) * 6e-8 * 3
    # apart typically, 1.2e-5 seen once (CI, 2026-12-07); a wrong split would be off by O(1).
    for a, e in zip(interpret(graph, inputs), expected):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-4, equal_nan=True)


@pytest.mark.parametrize("text", [
    # too few rows to be worth a second kernel
    'graph @g(%g: f32[64,24]@cpu) {\n  %0 = reduce(%g) {kind="sum", dims=[0]} : f32[24]@cpu\n  return %0\n}',
    # a float16 sum would round every partial sum
    'graph @g(%g: f16[4096,24]@cpu) {\n  %0 = reduce(%g) {kind="sum", dims=[0]} : f16[24]@cpu\n  return %0\n}',
    # not over leading dims
    'graph @g(%g: f32[24,4096]@cpu) {\n  %0 = reduce(%g) {kind="sum", dims=[1]} : f32[24]@cpu\n  return %0\n}',
])
def test_reductions_that_gain_nothing_or_would_round_differently_stay(text):
    assert not split_reduction.run(_graph(text))
