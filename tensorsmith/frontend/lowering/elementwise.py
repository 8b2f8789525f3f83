"""Lowerings of pointwise ATen ops: arithmetic, math functions, comparisons, logic, select, casts."""
from __future__ import annotations

import torch

from ...ir.graph import Node
from ...ir.types import BF16, BOOL, F16, F32, dtype_from_torch
from .registry import lower, unsupported

aten = torch.ops.aten
prims = torch.ops.prims


def _float_result(ctx, x):
    """Unary math functions promote integer and bool inputs to the default float type (float32
    unless torch.set_default_dtype said otherwise: the traced result type tells)."""
    dtype = x.type.dtype
    if dtype.is_float or dtype.is_complex:
        return x
    return ctx.convert(x, ctx.out_dtype if isinstance(ctx.meta, torch.Tensor) else F32)


def _unary(op: str, *targets, floating: bool = False):
    def lowering(ctx, x):
        return ctx.add(op, [_float_result(ctx, x) if floating else x])
    lower(*targets)(lowering)


for _name in ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
              "sigmoid", "erf", "erfinv", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
              "atanh", "log2", "exp2", "reciprocal"):
    _unary(_name, getattr(aten, _name).default, floating=True)
for _name in ("neg", "abs", "sign"):
    _unary(_name, getattr(aten, _name).default)
for _name in ("floor", "ceil", "round", "trunc"):
    @lower(getattr(aten, _name).default)
    def _rounding(ctx, x, _name=_name):
        return x if not x.type.dtype.is_float else ctx.add(_name, [x])


def _add_or_sub(op: str, *targets):
    @lower(*targets)
    def lowering(ctx, a, b, alpha=1):
        if alpha != 1:
            b = ctx.elementwise("mul", b, alpha)
        return ctx.elementwise(op, a, b)


_add_or_sub("add", aten.add.Tensor, aten.add.Scalar)
_add_or_sub("sub", aten.sub.Tensor, aten.sub.Scalar)


def _binary(op: str, *targets):
    lower(*targets)(lambda ctx, a, b: ctx.elementwise(op, a, b))


_binary("mul", aten.mul.Tensor, aten.mul.Scalar)
_binary("max", aten.maximum.default)
_binary("min", aten.minimum.default)
_binary("fmod", aten.fmod.Tensor, aten.fmod.Scalar)
_binary("remainder", aten.remainder.Tensor, aten.remainder.Scalar)
_binary("and", aten.bitwise_and.Tensor, aten.bitwise_and.Scalar)
_binary("or", aten.bitwise_or.Tensor, aten.bitwise_or.Scalar)
_binary("xor", aten.bitwise_xor.Tensor, aten.bitwise_xor.Scalar)


@lower(aten.atan2.default)
def _atan2(ctx, a, b):
    return ctx.elementwise("atan2", a, b, dtype=ctx.out_dtype)


@lower(aten.div.Tensor, aten.div.Scalar)
def _div(ctx, a, b):
    return ctx.elementwise("div", a, b, dtype=ctx.out_dtype)  # true division: ints become floats


def _floor_divide_float(ctx, a, b):
    """ATen's floor division of floats (c10::div_floor_floating), which is not floor(a / b):
    1.0 // 0.1 is 9.0 although 1.0 / 0.1 rounds to 10.0. `a`, `b`: one float dtype and shape."""
    quotient = ctx.add("div", [a, b])
    mod = ctx.add("fmod", [a, b])
    div = ctx.add("div", [ctx.add("sub", [a, mod]), b])
    signs_differ = ctx.add("xor", [ctx.compare("LT", b, 0), ctx.compare("LT", mod, 0)])
    adjust = ctx.add("and", [ctx.compare("NE", mod, 0), signs_differ])
    div = ctx.select(adjust, ctx.elementwise("sub", div, 1), div)
    floor = ctx.add("floor", [div])
    floor = ctx.select(ctx.compare("GT", ctx.add("sub", [div, floor]), 0.5),
                       ctx.elementwise("add", floor, 1), floor)
    signed_zero = ctx.elementwise("mul", quotient, 0)  # copysign(0, a / b)
    result = ctx.select(ctx.compare("EQ", div, 0), signed_zero, floor)
    return ctx.select(ctx.compare("EQ", b, 0), quotient, result)  # b == 0: IEEE a / b


def _floor_divide_int(ctx, a, b):
    """Python's floor division of integers: the truncated quotient, less one where the remainder is
    nonzero and its sign differs from the divisor's."""
    quotient = ctx.add("div", [a, b])  # IR integer division truncates
    mod = ctx.add("fmod", [a, b])
    signs_differ = ctx.add("xor", [ctx.compare("LT", b, 0), ctx.compare("LT", mod, 0)])
    adjust = ctx.add("and", [ctx.compare("NE", mod, 0), signs_differ])
    return ctx.select(adjust, ctx.elementwise("sub", quotient, 1), quotient)


@lower(aten.div.Tensor_mode, aten.div.Scalar_mode)
def _div_mode(ctx, a, b, rounding_mode=None):
    dtype = ctx.out_dtype
    if rounding_mode is None:
        return ctx.elementwise("div", a, b, dtype=dtype)
    if rounding_mode not in ("trunc", "floor"):
        unsupported(f"rounding mode {rounding_mode!r}")
    if dtype.is_bool or dtype.is_complex:
        unsupported(f"division with rounding of {dtype}")
    if dtype in (F16, BF16) and (not isinstance(b, Node) or b.type.numel == 1):
        # ATen divides a float16/bfloat16 tensor by a single value (a Python number or a one-element
        # tensor) in float32, reading that value at its own precision, and rounds once at the end.
        a, b = ctx.operands(ctx.convert(a, F32), ctx.convert(b, F32) if isinstance(b, Node) else b,
                            dtype=F32)
        result = (ctx.add("trunc", [ctx.add("div", [a, b])]) if rounding_mode == "trunc"
                  else _floor_divide_float(ctx, a, b))
        return ctx.convert(result, dtype)
    a, b = ctx.operands(a, b, dtype=dtype)
    if dtype.is_float:  # otherwise in the result type throughout, float16/bfloat16 too, as ATen does
        if rounding_mode == "trunc":
            return ctx.add("trunc", [ctx.add("div", [a, b])])
        return _floor_divide_float(ctx, a, b)
    if rounding_mode == "trunc":
        return ctx.add("div", [a, b])
    return _floor_divide_int(ctx, a, b)


@lower(aten.pow.Tensor_Tensor, aten.pow.Tensor_Scalar, aten.pow.Scalar)
def _pow(ctx, a, b):
    dtype = ctx.out_dtype
    if not dtype.is_float:
        unsupported("integer power")
    if isinstance(b, (int, float)) and not isinstance(b, bool) and b in _POWERS:
        return _POWERS[b](ctx, ctx.convert(a, dtype))
    return ctx.elementwise("pow", a, b, dtype=dtype)


# Scalar exponents ATen computes without pow (its CPU and CUDA pow kernels' fast paths), computed
# the same way here: a generated loop over pow calls no vectorized routine (gelu_new's x ** 3).
_POWERS = {
    2: lambda ctx, x: ctx.add("mul", [x, x]),
    3: lambda ctx, x: ctx.add("mul", [ctx.add("mul", [x, x]), x]),
    0.5: lambda ctx, x: ctx.add("sqrt", [x]),
    -1: lambda ctx, x: ctx.elementwise("div", 1.0, x, dtype=x.type.dtype),
}


def _logical(op: str, *targets):
    @lower(*targets)
    def lowering(ctx, a, b):
        return ctx.add(op, ctx.operands(ctx.compare("NE", a, 0), ctx.compare("NE", b, 0), dtype=BOOL))


_logical("and", aten.logical_and.default)
_logical("or", aten.logical_or.default)
_logical("xor", aten.logical_xor.default)


@lower(aten.logical_not.default)
def _logical_not(ctx, x):
    return ctx.add("not", [ctx.compare("NE", x, 0) if x.type.dtype != BOOL else x])


@lower(aten.bitwise_not.default)
def _bitwise_not(ctx, x):
    return ctx.add("not", [x])


def _comparison(direction: str, *targets):
    lower(*targets)(lambda ctx, a, b: ctx.compare(direction, a, b))


_comparison("EQ", aten.eq.Tensor, aten.eq.Scalar)
_comparison("NE", aten.ne.Tensor, aten.ne.Scalar)
_comparison("LT", aten.lt.Tensor, aten.lt.Scalar)
_comparison("LE", aten.le.Tensor, aten.le.Scalar)
_comparison("GT", aten.gt.Tensor, aten.gt.Scalar)
_comparison("GE", aten.ge.Tensor, aten.ge.Scalar)


@lower(aten.isnan.default)
def _isnan(ctx, x):
    return ctx.compare("NE", x, x)


@lower(aten.isinf.default)
def _isinf(ctx, x):
    if not x.type.dtype.is_float:
        return ctx.compare("NE", x, x)  # all false
    return ctx.compare("EQ", ctx.add("abs", [x]), float("inf"))


@lower(aten.where.self, aten.where.ScalarSelf, aten.where.ScalarOther, aten.where.Scalar)
def _where(ctx, condition, a, b):
    return ctx.select(condition, a, b)


@lower(aten.masked_fill.Scalar, aten.masked_fill.Tensor)
def _masked_fill(ctx, x, mask, value):
    if not isinstance(value, (int, float, bool)) and value.type.rank != 0:
        unsupported("masked_fill with a non-scalar value")
    if not isinstance(value, (int, float, bool)):
        value = ctx.convert(value, x.type.dtype)
    return ctx.select(mask, value, x, dtype=x.type.dtype)


@lower(aten.clamp.default, aten.clamp.Tensor)
def _clamp(ctx, x, min=None, max=None):
    dtype = ctx.out_dtype
    out = ctx.convert(x, dtype)
    if min is not None:
        out = ctx.elementwise("max", out, min, dtype=dtype)
    if max is not None:
        out = ctx.elementwise("min", out, max, dtype=dtype)
    return out


@lower(aten.clamp_min.default, aten.clamp_min.Tensor)
def _clamp_min(ctx, x, bound):
    return ctx.elementwise("max", x, bound, dtype=ctx.out_dtype)


@lower(aten.clamp_max.default, aten.clamp_max.Tensor)
def _clamp_max(ctx, x, bound):
    return ctx.elementwise("min", x, bound, dtype=ctx.out_dtype)


@lower(aten.relu.default)
def _relu(ctx, x):
    return ctx.elementwise("max", x, 0)


@lower(aten._to_copy.default)
def _to_copy(ctx, x, dtype=None, layout=None, device=None, pin_memory=None, non_blocking=False,
             memory_format=None):
    if device is not None and str(torch.device(device)) != x.type.device and not (
            torch.device(device).type == "cuda" and x.type.device.startswith("cuda")):
        unsupported("copy to another device")
    return ctx.convert(x, dtype_from_torch(dtype)) if dtype is not None else x


@lower(prims.convert_element_type.default)
def _convert_element_type(ctx, x, dtype):
    return ctx.convert(x, dtype_from_torch(dtype))


@lower(aten.clone.default, aten.alias.default, aten.lift_fresh_copy.default, aten.detach.default,
       aten.contiguous.default)
def _identity(ctx, x, memory_format=None):
    return x
