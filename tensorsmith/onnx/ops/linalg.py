"""Linear algebra ONNX ops: products, Einsum, Det, cumulative sums and products, the softmax
family."""
from __future__ import annotations

import math

import torch

from .registry import computable, ints, op


@op("MatMul")
def matmul(node, a, b):
    return torch.matmul(computable(a), computable(b)).to(a.dtype)


@op("Gemm")
def gemm(node, a, b, c=None):
    """alpha * A' @ B' + beta * C, A' and B' transposed when transA, transB are set."""
    wa, wb = computable(a), computable(b)
    if node.attr("transA", 0):
        wa = wa.T
    if node.attr("transB", 0):
        wb = wb.T
    y = _scaled(wa @ wb, node.attr("alpha", 1.0))
    if c is not None:
        y = y + _scaled(computable(c), node.attr("beta", 1.0))
    return y.to(a.dtype)


def _scaled(x: torch.Tensor, factor: float) -> torch.Tensor:
    return x if factor == 1.0 else x * factor


def _centered(x: torch.Tensor, zero_point: torch.Tensor | None, per_row: bool) -> torch.Tensor:
    """`x - zero_point` in int32; a 1-D zero point of a left operand holds one value per row."""
    x = x.to(torch.int32)
    if zero_point is None:
        return x
    zero_point = zero_point.to(torch.int32)
    if per_row and zero_point.dim() == 1:
        zero_point = zero_point.unsqueeze(-1)
    return x - zero_point


def _int_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The int32 product; CUDA has no integer matmul, so there in float64, exact for 8-bit
    operands (every partial sum stays far below 2**53)."""
    if a.is_cuda:
        return torch.matmul(a.double(), b.double()).to(torch.int32)
    return torch.matmul(a, b)


@op("MatMulInteger")
def matmul_integer(node, a, b, a_zero_point=None, b_zero_point=None):
    return _int_matmul(_centered(a, a_zero_point, True), _centered(b, b_zero_point, False))


@op("QLinearMatMul")
def qlinear_matmul(node, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale,
                   y_zero_point):
    """The int32 product of the centered operands, requantized: rounded half to even, added
    to y's zero point and saturated to its type."""
    product = _int_matmul(_centered(a, a_zero_point, True), _centered(b, b_zero_point, False))
    if a_scale.dim() == 1:
        a_scale = a_scale.unsqueeze(-1)
    scale = (a_scale * b_scale / y_scale).double()
    y = torch.round(product.double() * scale) + y_zero_point.double()
    info = torch.iinfo(y_zero_point.dtype)
    return y.clamp(info.min, info.max).to(y_zero_point.dtype)


@op("Einsum")
def einsum(node, *xs):
    equation = node.attr("equation").replace(" ", "")
    return torch.einsum(equation, *map(computable, xs)).to(xs[0].dtype)


@op("Det")
def det(node, x):
    """Computed in at least float32 (torch has no half-precision determinant)."""
    return torch.linalg.det(x.to(torch.promote_types(x.dtype, torch.float32))).to(x.dtype)


def _cumulative(fn, neutral: int):
    """CumSum or CumProd: along the axis input, `exclusive` shifts in the neutral element,
    `reverse` accumulates from the end."""
    def run(node, x, axis):
        dim = ints(axis, f"{node.op_type}'s axis")[0]
        y = computable(x)
        if node.attr("reverse", 0):
            y = y.flip(dim)
        if node.attr("exclusive", 0) and y.shape[dim] > 0:
            first = torch.full_like(y.narrow(dim, 0, 1), neutral)
            y = torch.cat([first, y.narrow(dim, 0, y.shape[dim] - 1)], dim)
        y = fn(y, dim, dtype=y.dtype)
        if node.attr("reverse", 0):
            y = y.flip(dim)
        return y.to(x.dtype)
    return run


op("CumSum")(_cumulative(torch.cumsum, 0))
op("CumProd")(_cumulative(torch.cumprod, 1))


def _along_axis(fn):
    """A softmax-like op: before opset 13 over the input coerced to 2-D at `axis` (default 1),
    from opset 13 on along `axis` (default -1)."""
    def run(node, x):
        if node.opset >= 13:
            return fn(x, node.attr("axis", -1))
        axis = node.attr("axis", 1) % max(x.dim(), 1)
        rows = math.prod(x.shape[:axis])
        return fn(x.reshape(rows, -1), 1).reshape(x.shape)
    return run


def _hardmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """1 at the first maximum along `dim`, 0 elsewhere."""
    first = x.argmax(dim, keepdim=True)
    return torch.zeros_like(x).scatter(dim, first, 1)


op("Softmax")(_along_axis(torch.softmax))
op("LogSoftmax")(_along_axis(torch.log_softmax))
op("Hardmax")(_along_axis(_hardmax))
