"""The sum of a one-hot row (cross-entropy's backward) becomes its one value, bit for bit as eager."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from ir.ir_builders import assert_same_tensors

from tensorsmith.ir.interpret import interpret
from tensorsmith.ir.parser import parse_graph
from tensorsmith.ir.verify import verify
from tensorsmith.passes import dce, simplify

# nll_loss's backward scattered into zeros and scaled per row, then summed over the row.
ONE_HOT_ROWS = """
    graph @f(%t: i64[4,1]@cpu, %src: f32[4,1]@cpu, %g: f32[4]@cpu) {
      %0 = constant() {value=0.0, shape=[4,7], dtype=f32, device="cpu"} : f32[4,7]@cpu
      %1 = scatter(%0, %t, %src) {dim=1} : f32[4,7]@cpu
      %2 = broadcast_in_dim(%g) {shape=[4,7], dims=[0]} : f32[4,7]@cpu
      %3 = mul(%1, %2) : f32[4,7]@cpu
      %4 = reduce(%3) {kind="sum", dims=[1]} : f32[4]@cpu
      return %4
    }
"""


def _simplified(text: str):
    graph = parse_graph(text)
    verify(graph)
    original = copy.deepcopy(graph)
    simplify.run(graph)
    dce.run(graph)
    verify(graph)
    return original, graph


def test_the_row_sum_is_gone_and_special_values_match_bit_for_bit():
    original, graph = _simplified(ONE_HOT_ROWS)
    assert [n.op for n in graph.nodes if n.op in ("reduce", "scatter")] == []
    inf, nan = float("inf"), float("nan")
    for _ in range(3):
        t = torch.randint(0, 7, (4, 1))
        src = torch.randn(4, 1)
        g = torch.randn(4)
        cases = [(src, g), (torch.tensor([[-0.0], [0.0], [-1.0], [2.0]]), torch.tensor([2.0, -3.0, 0.0, -0.0])),
                 (src, torch.tensor([inf, -inf, nan, 1.0])), (torch.tensor([[inf], [nan], [1.0], [-inf]]), g)]
        for s, f in cases:
            got, want = interpret(graph, [t, s, f]), interpret(original, [t, s, f])
            assert_same_tensors(got, want)
            assert torch.equal(torch.signbit(got[0]), torch.signbit(want[0]))  # +0.0 where eager's is


def test_a_factor_that_varies_along_the_row_is_left_alone():
    text = ONE_HOT_ROWS.replace("%g: f32[4]@cpu", "%g: f32[7]@cpu").replace("dims=[0]", "dims=[1]")
    _, graph = _simplified(text)
    assert [n.op for n in graph.nodes if n.op in ("reduce", "scatter")] == ["scatter", "reduce"]


def test_cross_entropy_gradients_match_float64_eager():
    x = torch.randn(16, 8, requires_grad=True)
    w = torch.randn(8, 50, requires_grad=True)
    t = torch.randint(0, 50, (16,))
    t[3] = -100  # ignored

    def loss(x, w, t):
        return F.cross_entropy(x @ w, t)

    torch.compile(loss, backend="tensorsmith")(x, w, t).backward()
    x64, w64 = (a.detach().double().requires_grad_() for a in (x, w))
    loss(x64, w64, t).backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(w.grad.double(), w64.grad, rtol=1e-5, atol=1e-6)
