"""Elementwise ONNX ops: unary math, activations, binary ops with numpy broadcasting, variadic
ops, Where, Clip, Cast."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from ..dtypes import torch_dtype
from .registry import computable, op


def _same_dtype(fn):
    """An op computing `fn` on its inputs in dtypes torch supports, cast back to the first
    input's dtype (ONNX results keep their input type; integer overflow wraps)."""
    def run(node, *xs):
        return fn(*map(computable, xs)).to(xs[0].dtype)
    return run


_SIGN_BIT = torch.iinfo(torch.int64).min


def _ordered(x: torch.Tensor) -> torch.Tensor:
    """`x` in a dtype torch computes with, keeping the order of its values (uint64, held in int64,
    gets its top bit flipped); `_unordered` takes a result back to `dtype`."""
    return computable(x) ^ _SIGN_BIT if x.dtype == torch.uint64 else computable(x)


def _unordered(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (y ^ _SIGN_BIT if dtype == torch.uint64 else y).to(dtype)


def _register(table: dict, wrap) -> None:
    for name, fn in table.items():
        op(name)(wrap(fn))


_register({
    "Neg": torch.neg, "Relu": torch.relu,
    "Exp": torch.exp, "Log": torch.log, "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal,
    "Floor": torch.floor, "Ceil": torch.ceil, "Round": torch.round,  # half to even
    "Sin": torch.sin, "Cos": torch.cos, "Tan": torch.tan, "Asin": torch.asin,
    "Acos": torch.acos, "Atan": torch.atan, "Sinh": torch.sinh, "Cosh": torch.cosh,
    "Asinh": torch.asinh, "Acosh": torch.acosh, "Atanh": torch.atanh, "Erf": torch.erf,
    "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Softplus": F.softplus,
    "Softsign": F.softsign, "Mish": F.mish, "HardSwish": F.hardswish,
    "Not": torch.logical_not, "BitwiseNot": torch.bitwise_not,
    "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul,
    "And": torch.logical_and, "Or": torch.logical_or, "Xor": torch.logical_xor,
    "BitwiseAnd": torch.bitwise_and, "BitwiseOr": torch.bitwise_or,
    "BitwiseXor": torch.bitwise_xor,
}, _same_dtype)

_register({
    "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt, "LessOrEqual": torch.le,
    "GreaterOrEqual": torch.ge,
}, lambda fn: lambda node, a, b: fn(_ordered(a), _ordered(b)))


@op("Abs")
def abs_(node, x):
    return x if not x.dtype.is_signed else torch.abs(x)


@op("Sign")
def sign(node, x):
    return (x != 0).to(x.dtype) if not x.dtype.is_signed else torch.sign(x)


@op("IsNaN")
def isnan(node, x):
    return torch.isnan(x)


@op("IsInf")
def isinf(node, x):
    found = torch.zeros_like(x, dtype=torch.bool)
    if node.attr("detect_positive", 1):
        found = found | torch.isposinf(x)
    if node.attr("detect_negative", 1):
        found = found | torch.isneginf(x)
    return found


# Activations with attributes.

@op("LeakyRelu")
def leaky_relu(node, x):
    return F.leaky_relu(x, node.attr("alpha", 0.01))


@op("PRelu")
def prelu(node, x, slope):
    return torch.where(x < 0, x * slope, x).to(x.dtype)


@op("Elu")
def elu(node, x):
    return F.elu(x, node.attr("alpha", 1.0))


@op("Selu")
def selu(node, x):
    alpha = node.attr("alpha", 1.67326319217681884765625)
    gamma = node.attr("gamma", 1.05070102214813232421875)
    return gamma * torch.where(x > 0, x, alpha * torch.expm1(x))


@op("Celu")
def celu(node, x):
    return F.celu(x, node.attr("alpha", 1.0))


@op("Gelu")
def gelu(node, x):
    return F.gelu(x, approximate=node.attr("approximate", "none"))


@op("HardSigmoid")
def hard_sigmoid(node, x):
    return torch.clamp(node.attr("alpha", 0.2) * x + node.attr("beta", 0.5), 0, 1)


@op("ThresholdedRelu")
def thresholded_relu(node, x):
    return torch.where(x > node.attr("alpha", 1.0), x, torch.zeros_like(x))


@op("Swish")
def swish(node, x):
    return x * torch.sigmoid(node.attr("alpha", 1.0) * x)


# Binary arithmetic with ONNX's integer semantics.

@op("Div")
def div(node, a, b):
    """Integer division truncates toward zero."""
    if a.dtype.is_floating_point or a.dtype.is_complex:
        return a / b
    return torch.div(computable(a), computable(b), rounding_mode="trunc").to(a.dtype)


@op("Mod")
def mod(node, a, b):
    """fmod=0: the remainder takes the divisor's sign (numpy's mod); fmod=1: the dividend's."""
    fn = torch.fmod if node.attr("fmod", 0) else torch.remainder
    return fn(computable(a), computable(b)).to(a.dtype)


@op("Pow")
def pow_(node, a, b):
    """The result has the base's type; an integer base with a float exponent is computed in
    float64 and truncated."""
    if not a.dtype.is_floating_point and b.dtype.is_floating_point:
        return torch.pow(a.double(), b.double()).to(a.dtype)
    return torch.pow(computable(a), computable(b)).to(a.dtype)


@op("BitShift")
def bit_shift(node, x, shift):
    """Shifts by less than 0 or at least the bit width give 0 (or -1 for a negative signed x
    shifted right); a right shift of an unsigned x is logical."""
    bits = torch.iinfo(x.dtype).bits
    wx, ws = computable(x), computable(shift)
    in_range = (ws >= 0) & (ws < bits)
    ws = ws.clamp(0, bits - 1)
    if node.attr("direction") == "LEFT":
        shifted, outside = wx << ws, torch.zeros_like(wx)
    elif x.dtype == torch.uint64:
        shifted, outside = _logical_right_shift(wx, ws), torch.zeros_like(wx)
    else:
        shifted, outside = wx >> ws, torch.where(wx < 0, -1, 0).to(wx.dtype)
    return torch.where(in_range, shifted, outside).to(x.dtype)


def _logical_right_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """`x >> shift` for int64 `x` holding uint64 bits, filling with zeros."""
    once = (x >> 1) & torch.iinfo(torch.int64).max
    return torch.where(shift == 0, x, once >> (shift - 1).clamp(min=0))


# Variadic ops (numpy broadcasting across all inputs).

@op("Sum")
def sum_(node, *xs):
    return functools.reduce(torch.add, map(computable, xs)).to(xs[0].dtype)


def _extreme(fn):
    def run(node, *xs):
        return _unordered(functools.reduce(fn, map(_ordered, xs)), xs[0].dtype)
    return run


_register({"Max": torch.maximum, "Min": torch.minimum}, _extreme)


@op("Mean")
def mean(node, *xs):
    return (functools.reduce(torch.add, xs) / len(xs)).to(xs[0].dtype)


@op("Where")
def where(node, condition, x, y):
    return torch.where(condition, computable(x), computable(y)).to(x.dtype)


@op("Clip")
def clip(node, x, low=None, high=None):
    """Bounds are attributes before opset 11, optional inputs from it on; with low > high every
    value becomes high."""
    if node.opset < 11:
        return torch.clamp(x, node.attr("min", -float("inf")), node.attr("max", float("inf")))
    result = _ordered(x)
    if low is not None:
        result = torch.maximum(result, _ordered(low))
    if high is not None:
        result = torch.minimum(result, _ordered(high))
    return _unordered(result, x.dtype)


@op("Cast")
def cast(node, x):
    return x.to(torch_dtype(node.attr("to")))


@op("CastLike")
def cast_like(node, x, like):
    return x.to(like.dtype)


@op("Identity")
def identity(node, x):
    return x
