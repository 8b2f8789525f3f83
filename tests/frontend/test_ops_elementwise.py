"""Differential tests of the pointwise lowerings (tensorsmith/frontend/lowering/elementwise.py):
compiled with tensorsmith vs eager, outputs and gradients, and each op lowered natively."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from op_cases import (FEW, HALF_TOLERANCE, aten, bools, broadcast_pair, compile_check, direct_check,
                      direct_import, ints, lay_out, layouts, nonzero_ints, positive, randn, shapes, strided,
                      transposed, unit)

# name -> (function, input domain). Every one is an ATen op the importer claims.
UNARY = {
    "exp": (torch.exp, randn), "log": (torch.log, positive), "log1p": (torch.log1p, positive),
    "expm1": (torch.expm1, randn), "sqrt": (torch.sqrt, positive), "rsqrt": (torch.rsqrt, positive),
    "sin": (torch.sin, randn), "cos": (torch.cos, randn),
    "tan": (torch.tan, lambda *s, dtype=torch.float32: unit(*s, dtype=dtype, bound=1.2)),
    "tanh": (torch.tanh, randn), "sigmoid": (torch.sigmoid, randn), "erf": (torch.erf, randn),
    "erfinv": (torch.erfinv, unit), "asin": (torch.asin, unit), "acos": (torch.acos, unit),
    "atan": (torch.atan, randn), "sinh": (torch.sinh, randn), "cosh": (torch.cosh, randn),
    "asinh": (torch.asinh, randn),
    "acosh": (torch.acosh, lambda *s, dtype=torch.float32: positive(*s, dtype=dtype, low=1.2)),
    "atanh": (torch.atanh, unit), "log2": (torch.log2, positive), "exp2": (torch.exp2, randn),
    "reciprocal": (torch.reciprocal, positive), "neg": (torch.neg, randn), "abs": (torch.abs, randn),
    "sign": (torch.sign, randn), "floor": (torch.floor, randn), "ceil": (torch.ceil, randn),
    "round": (torch.round, randn), "trunc": (torch.trunc, randn),
}
UNARY_NAMES = sorted(UNARY)


def _apply_all(names):
    fns = [UNARY[n][0] for n in names]

    def fn(*xs):
        return [f(x) for f, x in zip(fns, xs)]
    return fn


@FEW
@given(shape=shapes(0, 3), dtype=st.sampled_from([torch.float32, torch.float64]), layout=layouts())
def test_unary_float(shape, dtype, layout):
    """Every unary math function at once, on its own domain, values and gradients."""
    inputs = [lay_out(UNARY[n][1](*shape, dtype=dtype), layout) for n in UNARY_NAMES]
    compile_check(_apply_all(UNARY_NAMES), *inputs,
                  native=[getattr(aten, n).default for n in UNARY_NAMES])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_unary_half(dtype):
    names = [n for n in UNARY_NAMES if n not in ("erfinv",)]
    inputs = [transposed(UNARY[n][1](3, 4, dtype=dtype)) for n in names]
    compile_check(_apply_all(names), *inputs, tol=HALF_TOLERANCE[dtype],
                  native=[getattr(aten, n).default for n in names])


def test_unary_zero_size():
    inputs = [UNARY[n][1](2, 0, 3) for n in UNARY_NAMES]
    compile_check(_apply_all(UNARY_NAMES), *inputs, native=[aten.exp.default, aten.floor.default])


@pytest.mark.parametrize("kind", ["int64", "int32", "bool"])
def test_unary_math_of_integers_promotes_to_float(kind):
    """exp(int) etc. compute in the default float type; neg/abs/sign and rounding keep the type."""
    make = {"int64": lambda: ints(3, 4), "int32": lambda: ints(3, 4, dtype=torch.int32),
            "bool": lambda: bools(3, 4)}[kind]
    float_names = ["exp", "expm1", "sin", "cos", "tanh", "sigmoid", "erf", "atan", "asinh", "exp2",
                   "sinh", "cosh"]
    positive_names = ["log1p", "sqrt", "log", "log2", "reciprocal", "rsqrt"]
    keep = ["sign"] if kind == "bool" else ["abs", "floor", "ceil", "round", "trunc", "neg", "sign"]
    if kind == "bool":
        positive_names = ["log1p", "sqrt"]
    x = make()
    p = x.abs() + 1 if kind != "bool" else x
    fns = [UNARY[n][0] for n in float_names + keep]
    pfns = [UNARY[n][0] for n in positive_names]

    def fn(x, p):
        return [f(x) for f in fns] + [f(p) for f in pfns]
    out, _ = compile_check(fn, x, p, grads=False,
                           native=[getattr(aten, n).default for n in float_names + positive_names
                                   + ([] if kind == "bool" else ["abs", "neg", "sign"])])
    assert out[0].dtype == torch.float32


# -- binary arithmetic --------------------------------------------------------------------------
def _away_from_zero(shape, dtype):
    x = positive(*shape, dtype=dtype)
    return torch.where(torch.rand(shape) > 0.5, x, -x)


BINARY_NATIVE = [aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor,
                 aten.maximum.default, aten.minimum.default, aten.fmod.Tensor,
                 aten.remainder.Tensor, aten.atan2.default, aten.pow.Tensor_Tensor]


def _binary_ops(a, b):
    return (a + b, a - b, a * b, a / b, torch.maximum(a, b), torch.minimum(a, b),
            torch.fmod(a, b), torch.remainder(a, b), torch.atan2(a, b), torch.pow(a.abs() + 0.5, b),
            torch.add(a, b, alpha=2), torch.sub(a, b, alpha=0.5))


@FEW
@given(pair=broadcast_pair(), dtype=st.sampled_from([torch.float32, torch.float64]),
       layout=layouts())
def test_binary_float_broadcasting(pair, dtype, layout):
    a = lay_out(randn(*pair[0], dtype=dtype), layout)
    b = lay_out(_away_from_zero(pair[1], dtype), layout)
    compile_check(_binary_ops, a, b, native=BINARY_NATIVE)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_binary_half(dtype):
    a, b = transposed(randn(4, 3, dtype=dtype)), _away_from_zero((3,), dtype)
    compile_check(_binary_ops, a, b, tol=HALF_TOLERANCE[dtype], native=BINARY_NATIVE)


def test_binary_python_scalars():
    """Python numbers on either side, int and float, and the alpha of add/sub."""
    def fn(x):
        return (x + 2, 3 - x, x * 1.5, x / 3, 2.5 / x.abs().add(1), x ** 3, x.abs() ** 0.5, 2 ** x,
                torch.fmod(x, 1.5), torch.remainder(x, 0.7), torch.add(x, 3, alpha=2),
                torch.sub(x, 1.5, alpha=2), torch.maximum(x, x * 0 + 0.3), 2 ** x.abs(), x ** 2)

    def integers(n):
        return (n + 2.5, n * 2, n - 7, n / 4, n % 4, torch.fmod(n, 3), n * 1.5, torch.add(n, 3, alpha=4),
                2 ** n.abs(), n ** 2, 1.5 ** n)
    compile_check(fn, strided(randn(4, 5)),
                  native=[aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.div.Tensor,
                          aten.pow.Tensor_Scalar, aten.pow.Scalar, aten.fmod.Scalar,
                          aten.remainder.Scalar, aten.maximum.default])
    compile_check(integers, nonzero_ints(4, 5), grads=False,
                  native=[aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor, aten.div.Tensor,
                          aten.remainder.Scalar, aten.fmod.Scalar])


@pytest.mark.parametrize("left,right", [
    (torch.int64, torch.float32), (torch.int32, torch.int64), (torch.float32, torch.float64),
    (torch.bool, torch.int64), (torch.float16, torch.float32), (torch.bool, torch.float32),
    (torch.int32, torch.float16),
])
def test_binary_type_promotion(left, right):
    def make(dtype, shape):
        if dtype == torch.bool:
            return bools(*shape)
        if not dtype.is_floating_point:
            return nonzero_ints(*shape, dtype=dtype)
        return _away_from_zero(shape, dtype)

    a, b = make(left, (3, 4)), make(right, (4,))
    half = torch.float16 in (left, right)

    def fn(a, b):
        out = [a + b, b + a, a * b, b * a, a - b if torch.bool not in (a.dtype, b.dtype) else a * 2,
               torch.maximum(a, b), a / b, a == b, a < b]
        if a.dtype != torch.bool:
            out += [torch.remainder(a, b), torch.fmod(a, b)]
        return out
    compile_check(fn, a, b, tol=1e-2 if half else 1e-4,
                  grads=a.dtype.is_floating_point or b.dtype.is_floating_point,
                  native=[aten.add.Tensor, aten.mul.Tensor, aten.maximum.default, aten.div.Tensor,
                          aten.eq.Tensor, aten.lt.Tensor])


def test_zero_dim_tensor_does_not_promote():
    """A 0-dim float64 tensor with a float32 tensor gives float32; with an int tensor, float64."""
    def fn(x, s, n):
        return x + s, x * s, s - x, n + s, torch.maximum(x, s)
    compile_check(fn, randn(3, 4), torch.tensor(1.5, dtype=torch.float64), nonzero_ints(4),
                  native=[aten.add.Tensor, aten.mul.Tensor, aten.sub.Tensor, aten.maximum.default])


@FEW
@given(pair=broadcast_pair(), dtype=st.sampled_from([torch.int64, torch.int32]))
def test_binary_integer(pair, dtype):
    a, b = ints(*pair[0], low=-50, high=50, dtype=dtype), nonzero_ints(*pair[1], dtype=dtype)

    def fn(a, b):
        return (a + b, a - b, a * b, torch.maximum(a, b), torch.minimum(a, b), torch.fmod(a, b),
                torch.remainder(a, b), a / b, torch.div(a, b, rounding_mode="trunc"),
                torch.div(a, b, rounding_mode="floor"), a // b, a & b, a | b, a ^ b, ~a, a % 7)
    compile_check(fn, a, b, grads=False,
                  native=[aten.add.Tensor, aten.sub.Tensor, aten.mul.Tensor, aten.maximum.default,
                          aten.minimum.default, aten.fmod.Tensor, aten.remainder.Tensor,
                          aten.div.Tensor, aten.div.Tensor_mode, aten.bitwise_and.Tensor,
                          aten.bitwise_or.Tensor, aten.bitwise_xor.Tensor, aten.bitwise_not.default])


# -- division with rounding ---------------------------------------------------------------------
def _rounding_divisions(a, b):
    return (torch.div(a, b, rounding_mode="floor"), torch.div(a, b, rounding_mode="trunc"),
            torch.div(a, 0.1, rounding_mode="floor"), torch.div(a, -0.3, rounding_mode="trunc"),
            a // b, torch.div(a, b, rounding_mode=None))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_floor_division_of_floats_matches_aten_exactly(dtype):
    """ATen's floor division is not floor(a / b): 1 // 0.1 is 9 (a / b rounds up to 10)."""
    a = torch.tensor([[1.0, -1.0, 0.3, 5.0, 0.7, -0.7, 2.0, 0.0],
                      [1e-3, -1e-3, 3.0, -3.0, 7.5, 10.0, 1.0, -0.0]], dtype=dtype)
    b = torch.tensor([[0.1, 0.1, 0.1, 0.5, 0.1, -0.1, -0.2, 0.1],
                      [0.1, 0.1, -1.5, 1.5, 2.5, 0.2, -0.1, -0.1]], dtype=dtype)
    compile_check(_rounding_divisions, a, b, exact=True, native=[aten.div.Tensor_mode])


@FEW
@given(pair=broadcast_pair(), dtype=st.sampled_from([torch.float32, torch.float64, torch.float16]))
def test_rounding_division_random(pair, dtype):
    a = randn(*pair[0], dtype=dtype) * 4
    b = _away_from_zero(pair[1], dtype)
    compile_check(_rounding_divisions, a, b, exact=True, native=[aten.div.Tensor_mode])


def test_integer_floor_division_signs():
    a = torch.tensor([7, -7, 7, -7, 6, -6, 0, 1, -1, 9], dtype=torch.int64)
    b = torch.tensor([2, 2, -2, -2, 3, -3, 5, -5, 5, 10], dtype=torch.int64)

    def fn(a, b):
        return (torch.div(a, b, rounding_mode="floor"), a // b, torch.div(a, b, rounding_mode="trunc"),
                a // 3, torch.div(a, -4, rounding_mode="floor"), a.int() // b.int())
    compile_check(fn, a, b, exact=True, native=[aten.div.Tensor_mode])


def test_rounding_division_by_python_scalar_overload():
    """div.Scalar_mode (the overload decomposed before import): floor and trunc, float and int."""
    for x in (randn(3, 4) * 5, nonzero_ints(3, 4, high=40)):
        for mode in ("floor", "trunc"):
            for divisor in (3, -3):
                direct_check(aten.div.Scalar_mode, x, divisor, rounding_mode=mode, tol=0.0)
    direct_check(aten.div.Scalar_mode, torch.tensor([1.0, -1.0, 0.3]), 0.1, rounding_mode="floor",
                 tol=0.0)


# -- comparisons, logic, bitwise -----------------------------------------------------------------
def _small_values(shape, dtype):
    """Values from a small set, so that equality holds often."""
    x = torch.randint(-2, 3, shape)
    return x.to(dtype) if dtype != torch.bool else x > 0


@FEW
@given(pair=broadcast_pair(), dtype=st.sampled_from([torch.float32, torch.float64, torch.int64,
                                                      torch.int32, torch.bool]),
       layout=layouts())
def test_comparisons(pair, dtype, layout):
    a, b = lay_out(_small_values(pair[0], dtype), layout), lay_out(_small_values(pair[1], dtype), layout)

    def fn(a, b):
        return (a == b, a != b, a < b, a <= b, a > b, a >= b, a == 1, a != 0, a < 1, a <= 0.5,
                a > -1, a >= 1)
    compile_check(fn, a, b, grads=False,
                  native=[getattr(aten, c).Tensor for c in ("eq", "ne", "lt", "le", "gt", "ge")])


def test_comparisons_mixed_types_and_nan():
    a = torch.tensor([[1.0, float("nan"), -2.0, float("inf")], [0.5, 2.0, -float("inf"), 3.0]])
    n = torch.tensor([1, 2, -2, 3])

    def fn(a, n):
        return (a == n, a < n, n >= a, a != a, a == 0.5, n < 2.5, n == 2.0, a.isnan(), a.isinf(),
                n.isnan(), n.isinf(), torch.isfinite(a))
    compile_check(fn, a, n, grads=False,
                  native=[aten.eq.Tensor, aten.lt.Tensor, aten.ge.Tensor, aten.ne.Tensor,
                          aten.isnan.default, aten.isinf.default])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_isnan_isinf_half(dtype):
    x = randn(3, 4, dtype=dtype)
    x[0, 1], x[1, 2], x[2, 3] = float("nan"), float("inf"), -float("inf")
    compile_check(lambda x: (x.isnan(), x.isinf(), x > 0, x == x), x, grads=False,
                  native=[aten.isnan.default, aten.isinf.default])


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool])
def test_logical_ops(dtype):
    a, b = _small_values((3, 4), dtype), transposed(_small_values((4, 3), dtype).t().contiguous())
    c = _small_values((4,), dtype)

    def fn(a, b, c):
        return (torch.logical_and(a, b), torch.logical_or(a, c), torch.logical_xor(c, b),
                torch.logical_not(a), torch.logical_and(a, b.float()), torch.logical_not(b.int()))
    compile_check(fn, a, b, c, grads=False,
                  native=[aten.logical_and.default, aten.logical_or.default,
                          aten.logical_xor.default, aten.logical_not.default])


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_bitwise_ops(dtype):
    if dtype == torch.bool:
        a, b = bools(3, 4), bools(4)
    elif dtype == torch.uint8:
        a, b = ints(3, 4, low=0, high=256, dtype=dtype), ints(4, low=0, high=256, dtype=dtype)
    else:
        a, b = ints(3, 4, low=-100, high=100, dtype=dtype), ints(4, low=-100, high=100, dtype=dtype)

    def fn(a, b):
        return (a & b, a | b, a ^ b, ~a, torch.bitwise_not(b), a & True, a | False, a ^ True) \
            if a.dtype == torch.bool else (a & b, a | b, a ^ b, ~a, torch.bitwise_not(b), a & 6,
                                           a | 5, a ^ 3)
    compile_check(fn, a, b, grads=False,
                  native=[aten.bitwise_and.Tensor, aten.bitwise_or.Tensor, aten.bitwise_xor.Tensor,
                          aten.bitwise_not.default])


def test_bitwise_scalar_overloads():
    """bitwise_*.Scalar are what AOTAutograd leaves for tensor-op-scalar in some graphs."""
    x = ints(3, 4, low=-100, high=100)
    for op in (aten.bitwise_and.Scalar, aten.bitwise_or.Scalar, aten.bitwise_xor.Scalar):
        direct_check(op, x, 6)
        direct_check(op, bools(5), True)


# -- select-like: where, masked_fill, clamp, relu ---------------------------------------------------
@FEW
@given(pair=broadcast_pair(), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_where_broadcasting(pair, dtype):
    cond = bools(*pair[0])
    a, b = randn(*pair[1], dtype=dtype), randn(*pair[0], dtype=dtype)

    def fn(cond, a, b):
        return (torch.where(cond, a, b), torch.where(cond, a, 0.5), torch.where(cond, -1.0, b),
                a.masked_fill(a > 0, -3.0))
    compile_check(fn, cond, a, b, native=[aten.where.self])
    compile_check(lambda cond: torch.where(cond, 2.0, -2.0), cond, exact=True, native=[aten.where.self])


def test_where_mixed_types():
    cond, i = bools(3, 4), nonzero_ints(4)
    f, h = randn(3, 1), randn(4, dtype=torch.float16)

    def fn(cond, i, f, h):
        return torch.where(cond, i, f), torch.where(cond, h, f), torch.where(cond, h, 1.5)

    def discrete(cond, i):
        return torch.where(cond, i, 2), torch.where(cond, i, 0.5), torch.where(i > 0, i, i * 2)
    compile_check(fn, cond, i, f, h, tol=1e-3, native=[aten.where.self])
    compile_check(discrete, cond, i, exact=True, native=[aten.where.self])


def test_masked_fill():
    x, mask = randn(3, 4), bools(4)
    value = torch.tensor(2.5, dtype=torch.float64)

    def fn(x, mask, value):
        return (x.masked_fill(mask, -1.0), x.masked_fill(mask, value), x.int().masked_fill(mask, 7),
                x.masked_fill(x > 0.5, -1e4))
    compile_check(fn, transposed(x.expand(5, 3, 4).contiguous()[1]), mask, value,
                  native=[aten.where.self])
    compile_check(lambda x, mask: (x.masked_fill(mask, float("-inf")), x.masked_fill(mask, float("nan"))),
                  x, mask, exact=True,
                  native=[aten.where.self])


def test_masked_fill_overloads_directly():
    x, mask = randn(3, 4), bools(3, 4)
    direct_check(aten.masked_fill.Scalar, x, mask, -2.5)
    direct_check(aten.masked_fill.Scalar, ints(3, 4), bools(4), 3)
    direct_check(aten.masked_fill.Scalar, bools(2, 3), bools(2, 3), True)
    direct_check(aten.masked_fill.Tensor, x, bools(4), torch.tensor(1.25))
    direct_check(aten.masked_fill.Tensor, x, mask, torch.tensor(3, dtype=torch.int64))


@FEW
@given(pair=broadcast_pair(), layout=layouts())
def test_clamp(pair, layout):
    x = lay_out(randn(*pair[0]), layout)
    lo, hi = randn(*pair[1]) - 0.5, randn(*pair[1]) + 0.5

    def fn(x, lo, hi):
        return (x.clamp(-0.5, 0.5), x.clamp(min=0.1), x.clamp(max=0.2), torch.clamp(x, lo, hi),
                torch.clamp(x, min=lo), torch.clamp(x, max=hi), torch.relu(x), x.clamp(0.5, -0.5),
                torch.nn.functional.hardtanh(x), torch.nn.functional.relu6(x))
    compile_check(fn, x, lo, hi, native=[aten.relu.default, aten.where.self])


def test_clamp_integers_and_nan():
    x = torch.tensor([[float("nan"), 1.0, -3.0, 0.2]])

    def fn(x, n):
        return x.clamp(-1, 1), x.clamp(min=0), torch.relu(x), n.clamp(-3, 3), n.clamp(min=0), \
            torch.relu(n), n.clamp(max=2.5)
    compile_check(fn, x, ints(2, 5), grads=False, native=[aten.relu.default])


@pytest.mark.parametrize("op,args", [
    (aten.clamp.default, (-0.5, 0.5)), (aten.clamp.default, (None, 0.3)),
    (aten.clamp.default, (0.2, None)), (aten.clamp.default, (0.5, -0.5)),
    (aten.clamp_min.default, (0.1,)), (aten.clamp_max.default, (-0.1,)),
])
def test_clamp_scalar_overloads_directly(op, args):
    x = randn(3, 4)
    x[0, 0] = float("nan")
    direct_check(op, x, *args)
    direct_check(op, ints(3, 4), *[None if a is None else int(a * 10) for a in args])


def test_clamp_tensor_overloads_directly():
    x, lo, hi = randn(3, 4), randn(4) - 0.5, randn(3, 1) + 0.5
    direct_check(aten.clamp.Tensor, x, lo, hi)
    direct_check(aten.clamp.Tensor, x, None, hi)
    direct_check(aten.clamp.Tensor, x, lo.double())
    direct_check(aten.clamp_min.Tensor, x, lo)
    direct_check(aten.clamp_max.Tensor, x, hi)
    direct_check(aten.clamp_min.Tensor, ints(3, 4), torch.tensor(0.5))


def test_where_scalar_overloads_directly():
    cond, x = bools(3, 4), randn(4)
    direct_check(aten.where.ScalarSelf, cond, 1.5, x)
    direct_check(aten.where.ScalarOther, cond, x, -2)
    direct_check(aten.where.Scalar, cond, 1.5, -2.5)
    direct_check(aten.where.Scalar, cond, 1, 2)
    direct_check(aten.where.self, cond, ints(3, 1), x.double())


# -- casts and identities -------------------------------------------------------------------------
def test_casts():
    x = randn(3, 4) * 4

    def differentiable(x):
        return (x.to(torch.float64), x.double().float(), x.half(), x.bfloat16(), x.clone(),
                x.contiguous(), x.t().contiguous(), x.float())

    def discrete(x):
        return (x.to(torch.int32), x.long(), x.bool(), x.int().float(), x.bool().long(),
                x.to(torch.uint8), x.detach(), x.abs().to(torch.int16).double())
    for layout in (x, strided(x)):
        compile_check(differentiable, layout, tol=4e-3, native=[aten._to_copy.default, aten.clone.default])
        compile_check(discrete, layout, exact=True, native=[aten._to_copy.default])


def test_casts_zero_size_and_scalars():
    compile_check(lambda x: (x.double(), x.int(), x.clone()), randn(0, 3),
                  native=[aten._to_copy.default])
    compile_check(lambda x: (x.double() * 2, x.int(), x.to(torch.bool)), torch.tensor(2.5),
                  native=[aten._to_copy.default])


def test_identity_overloads_directly():
    x = transposed(randn(3, 4))
    for op in (aten.clone.default, aten.alias.default, aten.detach.default, aten.contiguous.default,
               aten.lift_fresh_copy.default):
        direct_check(op, x)
    direct_check(aten._to_copy.default, x, dtype=torch.float64)
    direct_check(aten._to_copy.default, x, dtype=torch.int16)
    direct_check(aten._to_copy.default, x, device="cpu")
    direct_check(torch.ops.prims.convert_element_type.default, x, torch.float16, tol=1e-3)
    direct_check(torch.ops.prims.convert_element_type.default, ints(5), torch.float32)


def test_unary_overloads_directly_on_integers():
    """floor/ceil/round/trunc of integers are the identity; neg/abs/sign keep the type."""
    x = ints(3, 4)
    for op in (aten.floor.default, aten.ceil.default, aten.round.default, aten.trunc.default,
               aten.neg.default, aten.abs.default, aten.sign.default, aten.exp.default,
               aten.sigmoid.default):
        direct_check(op, x)


def test_scalar_overloads_directly():
    """The .Scalar overloads (tensor op Python number) with float and int tensors."""
    x, n = randn(3, 4), nonzero_ints(3, 4)
    for op in (aten.add.Scalar, aten.sub.Scalar, aten.mul.Scalar, aten.div.Scalar,
               aten.fmod.Scalar, aten.remainder.Scalar, aten.eq.Scalar, aten.ne.Scalar,
               aten.lt.Scalar, aten.le.Scalar, aten.gt.Scalar, aten.ge.Scalar):
        for tensor in (x, n):
            for scalar in (3, -0.5):
                direct_check(op, tensor, scalar)
    direct_check(aten.add.Scalar, x, 2, alpha=3)
    direct_check(aten.sub.Scalar, n, 2, alpha=3)
    direct_check(aten.add.Tensor, n, x, alpha=2)
    direct_check(aten.pow.Tensor_Scalar, x, 2)
    direct_check(aten.pow.Tensor_Scalar, positive(3, 4), -1.5)
    direct_check(aten.pow.Tensor_Scalar, n, 2.0)
    direct_check(aten.pow.Scalar, 2.0, x)
    direct_check(aten.pow.Scalar, 3, x)
    direct_check(aten.pow.Tensor_Tensor, positive(3, 4), n)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_rounding_division_many_values(dtype):
    """Bit-exact against eager on many values, reduced precision included: ATen computes float16
    division with rounding in float16 on CPU, except by a single value (a Python number, a
    one-element tensor), which it does in float32 with that value read at its own precision."""
    a = (randn(40, 50) * 1000).to(dtype)
    b = _away_from_zero((50,), dtype)
    one = b[:1].clone()
    zero_dim = torch.tensor(0.3, dtype=torch.float64)

    def fn(a, b, one, zero_dim):
        return (torch.div(a, b, rounding_mode="floor"), torch.div(a, b, rounding_mode="trunc"),
                torch.div(a, 0.3, rounding_mode="floor"), torch.div(a, -0.7, rounding_mode="trunc"),
                torch.div(a, one, rounding_mode="floor"), torch.div(a, one, rounding_mode="trunc"),
                torch.div(a, zero_dim, rounding_mode="floor"), a // 0.3, a // b)
    compile_check(fn, a, b, one, zero_dim, exact=True, native=[aten.div.Tensor_mode])


def test_integer_scalar_operands_wrap_like_aten():
    """ATen casts a Python number operand to an integer tensor's type with wraparound: uint8 + 300
    adds 44, uint8 == 256 compares with 0, int8 > 200 compares with -56."""
    u = torch.tensor([0, 1, 44, 200, 255], dtype=torch.uint8)

    def fn(u):
        i8, i32 = u.to(torch.int8), u.int()
        return (u + 300, u == 256, u < -1, u * -1, u - 257, i8 > 200, i8 + 130, i32 + 2 ** 40,
                i32 == 2 ** 32 + 1, u.clamp(min=-5), u % 300, u & 511, torch.maximum(u, u * 0 + 7))
    compile_check(fn, u, exact=True, native=[aten.add.Tensor, aten.eq.Scalar, aten.lt.Scalar,
                                             aten.gt.Scalar, aten.mul.Tensor, aten.sub.Tensor])
    direct_check(aten.add.Scalar, u, 300)
    direct_check(aten.eq.Scalar, u, 256)
    direct_check(aten.clamp_min.default, u, -5)


def test_unary_math_of_integers_follows_the_default_dtype():
    """exp(int) is float64 under torch.set_default_dtype(torch.float64)."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for op in (aten.exp.default, aten.sqrt.default, aten.sigmoid.default, aten.reciprocal.default):
            direct_check(op, nonzero_ints(3, 4).abs())
        out, _ = compile_check(lambda n: (n.exp(), n.abs().log(), torch.sin(n)), nonzero_ints(5),
                               grads=False, native=[aten.exp.default, aten.log.default, aten.sin.default])
        assert out[0].dtype == torch.float64
    finally:
        torch.set_default_dtype(saved)


@pytest.mark.parametrize("exponent", [2, 3, 3.0, -1])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_powers_aten_computes_by_multiplication_are_bit_exact(exponent, dtype):
    """x ** 2, x ** 3 and x ** -1 are products and a division, as ATen's pow kernels compute
    them (GPT-2's gelu_new takes x ** 3): the same bits as eager, with no pow call left."""
    x = randn(7, 33).to(dtype) * 3
    compile_check(lambda t: t ** exponent + 1, x, native=["aten.pow.Tensor_Scalar"], exact=True)
    imported, _ = direct_import(aten.pow.Tensor_Scalar, x, exponent)
    assert "pow" not in {n.op for n in imported.graph.nodes}


def test_a_square_root_power_is_the_square_root():
    x = positive(5, 9)
    direct_check(aten.pow.Tensor_Scalar, x, 0.5)
    imported, _ = direct_import(aten.pow.Tensor_Scalar, x, 0.5)
    assert "sqrt" in {n.op for n in imported.graph.nodes}
