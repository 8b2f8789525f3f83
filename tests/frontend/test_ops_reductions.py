"""Differential tests of the reduction lowerings (tensorsmith/frontend/lowering/reductions.py and
the prims in prims.py): sum, mean, prod, amax/amin, max/min, any/all, argmax/argmin, var/var_mean."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from op_cases import (FEW, HALF_TOLERANCE, aten, bools, compile_check, direct_check, ints, lay_out,
                      layouts, positive, prims, randn, strided, transposed)


@st.composite
def reduce_case(draw, zero_size: bool = True):
    """A shape (sometimes with a 0-size dim) and a set of dims to reduce, some negative."""
    rank = draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    if zero_size and draw(st.integers(0, 4)) == 0:
        shape[draw(st.integers(0, rank - 1))] = 0
    dims = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    dims = [d - rank if draw(st.booleans()) else d for d in dims]
    return tuple(shape), dims


def _empty_reduction(shape, dims):
    return any(shape[d] == 0 for d in dims)


@FEW
@given(case=reduce_case(), keepdim=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]),
       layout=layouts())
def test_float_reductions(case, keepdim, dtype, layout):
    shape, dims = case
    x = lay_out(randn(*shape, dtype=dtype), layout)
    p = lay_out(positive(*shape, dtype=dtype), layout)
    empty = _empty_reduction(shape, dims) or 0 in shape  # max() of no elements raises in eager

    def fn(x, p):
        out = [x.sum(dims, keepdim=keepdim), x.mean(dims, keepdim=keepdim), x.sum(), x.mean(),
               torch.var(x, dims, correction=0, keepdim=keepdim), p.prod(dims[0], keepdim=keepdim),
               p.prod()]
        if not empty:
            out += [x.amax(dims, keepdim=keepdim), x.amin(dims, keepdim=keepdim), x.max(), x.min(),
                    x.argmax(dims[0], keepdim=keepdim), x.argmin(dims[-1], keepdim=keepdim),
                    x.argmax(), x.argmin()]
        return out
    native = [aten.sum.dim_IntList, aten.mean.dim, aten.mean.default, aten.var.correction,
              aten.prod.dim_int, aten.prod.default]
    if not empty:
        native += [aten.amax.default, aten.amin.default, aten.max.default, aten.min.default,
                   aten.argmax.default, aten.argmin.default]
    compile_check(fn, x, p, native=native)


@FEW
@given(case=reduce_case(zero_size=False), correction=st.sampled_from([0, 1, 2]),
       keepdim=st.booleans())
def test_variance(case, correction, keepdim):
    shape, dims = case
    count = 1
    for d in dims:
        count *= shape[d]
    correction = min(correction, count - 1)  # more is a division by zero: see the test below
    x = randn(*shape) + 3  # an offset mean: a one-pass variance would lose precision

    def fn(x):
        var, mean = torch.var_mean(x, dims, correction=correction, keepdim=keepdim)
        return (var, mean, torch.std(x, dims, correction=correction, keepdim=keepdim),
                torch.var(x), x.var(dims[0]), torch.var_mean(x, unbiased=False))
    compile_check(fn, x, native=[aten.var_mean.correction, aten.var.correction])


def test_variance_without_degrees_of_freedom_like_eager():
    """correction >= count divides by zero: NaN for one element (0 / 0), infinity otherwise."""
    compile_check(lambda x: (x.var(0), x.var(1), x.std(), torch.var_mean(x, 0)), randn(1, 3),
                  grads=False, native=[aten.var.correction, aten.var_mean.correction])
    compile_check(lambda x: (torch.var(x, 1, correction=2), torch.var(x, 1, correction=3)), randn(3, 2),
                  exact=True, native=[aten.var.correction])


def test_reductions_over_empty_dims():
    """sum is 0, prod 1, mean and var NaN over an empty dimension, as in eager."""
    x = randn(3, 0, 2)

    def fn(x):
        return (x.sum(1), x.prod(1), x.mean(1), x.var(1), x.sum(), x.mean((0, 1)), x.amax(0), x.argmax(2))
    compile_check(fn, x, native=[aten.sum.dim_IntList, aten.prod.dim_int, aten.mean.dim,
                                 aten.var.correction, aten.amax.default, aten.argmax.default])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reductions_half(dtype):
    x = transposed(randn(6, 5, dtype=dtype))

    def fn(x):
        return x.sum(0), x.mean(1), x.amax(0), x.amin(-1), torch.var_mean(x, 1), x.sum(), x.argmax(1), \
            x.float().sum(0), x.sum(0, dtype=torch.float32), x.prod(0)
    compile_check(fn, x, tol=HALF_TOLERANCE[dtype],
                  native=[aten.sum.dim_IntList, aten.mean.dim, aten.amax.default,
                          aten.amin.default, aten.var_mean.correction, aten.argmax.default,
                          aten.prod.dim_int])


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_and_bool_reductions(dtype):
    """sum/prod of integers and bools accumulate in int64; amax/argmax keep or give the type."""
    x = bools(3, 4) if dtype == torch.bool else ints(3, 4, low=0 if dtype == torch.uint8 else -3,
                                                      high=4, dtype=dtype)

    def fn(x):
        out = [x.sum(), x.sum(0), x.sum(1, keepdim=True), x.prod(1), x.prod(), x.any(), x.all(),
               x.any(1), x.all(0), x.sum(0, dtype=torch.float64), x.sum(dtype=torch.int32),
               x.prod(0, dtype=torch.float32)]
        if x.dtype != torch.bool:
            out += [x.amax(0), x.amin(1), x.max(), x.min(), x.argmax(1), x.argmin(0), x.argmax(),
                    x.float().mean(0)]
        return out
    native = [aten.sum.dim_IntList, aten.prod.dim_int, aten.prod.default, aten.any.default,
              aten.any.dim]
    if dtype != torch.bool:
        native += [aten.amax.default, aten.amin.default, aten.argmax.default, aten.argmin.default]
    compile_check(fn, strided(x), exact=True, native=native)


def test_argmax_ties_and_scalars():
    """Ties resolve to the first index; a 0-dim input and dim=None work like eager."""
    x = torch.randint(-1, 2, (4, 5)).float()

    def fn(x, s):
        return (x.argmax(0), x.argmin(1), x.argmax(), x.argmin(), x.argmax(1, keepdim=True),
                x.argmax(keepdim=True), s.argmax(), s.argmin(0), s.argmax(0, keepdim=True))
    compile_check(fn, x, torch.tensor(2.0), grads=False,
                  native=[aten.argmax.default, aten.argmin.default])


def test_nan_propagation():
    x = randn(3, 4)
    x[1, 2] = float("nan")

    def fn(x):
        return x.amax(1), x.amin(0), x.max(), x.sum(1), x.mean(0), x.argmax(1), x.argmin(0), x.prod(1)
    compile_check(fn, x, grads=False,
                  native=[aten.amax.default, aten.amin.default, aten.max.default,
                          aten.argmax.default, aten.argmin.default])


@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool])
def test_any_all(dtype):
    """any/all with some zeros in the input (a value is true when nonzero, NaN included)."""
    x = torch.randint(0, 2, (3, 4, 2)).to(dtype)
    if dtype == torch.float32:
        x = x * randn(3, 4, 2)
        x[0, 0, 0] = float("nan")

    def fn(x):
        return (x.any(), x.all(), x.any(1), x.all(-1), x.any(1, keepdim=True), torch.any(x, (0, 2)),
                torch.all(x, (0, 1)), (x != 0).all(2), x[:0].any(), x[:0].all(1), torch.any(x, ()),
                torch.all(x, (), keepdim=True))
    compile_check(fn, x, grads=False,
                  native=[aten.any.default, aten.any.dim, aten.any.dims, aten.logical_not.default])


def test_all_overloads_directly():
    """all.* reach the importer as any of the negation; its overloads are lowered too."""
    x = torch.randint(0, 2, (3, 4)).float() * randn(3, 4)
    for t in (x, x.long(), x.bool()):
        direct_check(aten.all.default, t)
        direct_check(aten.all.dim, t, 1)
        direct_check(aten.all.dim, t, -2, True)
        direct_check(aten.all.dims, t, [0, 1])
        direct_check(aten.any.dims, t, [0])
        direct_check(aten.all.default, t[:0])
        direct_check(aten.any.dims, t, [])  # an empty dim list reduces nothing (unlike sum's)
        direct_check(aten.all.dims, t, [], True)
    direct_check(aten.any.default, ints(3).to(torch.uint8))


def test_reduction_overloads_directly():
    x, n = randn(3, 4), ints(3, 4)
    direct_check(aten.sum.default, x)
    direct_check(aten.sum.default, n)
    direct_check(aten.sum.default, bools(3, 4))
    direct_check(aten.sum.default, n, dtype=torch.float32)
    direct_check(aten.sum.dim_IntList, x, [])
    direct_check(aten.sum.dim_IntList, x, None, True)
    direct_check(aten.sum.dim_IntList, torch.tensor(2.5), [0])
    direct_check(aten.prod.default, n, dtype=torch.float64)
    direct_check(aten.mean.default, n, dtype=torch.float64)
    direct_check(aten.mean.dim, x, [-1], True, dtype=torch.float64)
    direct_check(aten.amax.default, x, [])
    direct_check(aten.var.correction, x, None, correction=0.5)
    direct_check(aten.var_mean.correction, x, [1], correction=1, keepdim=True)


def test_prims_directly():
    """The prims that decompositions can leave in graphs."""
    x = transposed(randn(3, 4))
    direct_check(prims.sum.default, x, [1])
    direct_check(prims.sum.default, x, [0, 1])
    direct_check(prims.sum.default, ints(3, 4), [0])
    direct_check(prims.var.default, x, [1], 1.0)
    direct_check(prims.var.default, x, [0, 1], 0.0)
    direct_check(prims.broadcast_in_dim.default, randn(3, 1), [2, 3, 5], [1, 2])
    direct_check(prims.broadcast_in_dim.default, randn(4), [4, 2], [0])
    direct_check(prims.div.default, x, positive(3, 4))
    direct_check(prims.div.default, torch.tensor([-7, 7, 6]), torch.tensor([2, -2, 4]))


def test_softmax_family():
    """Composite ops that decompose into reductions (amax, sum, var_mean) and pointwise ops."""
    x = strided(randn(3, 5))

    def fn(x):
        return (x.softmax(-1), x.log_softmax(0), torch.logsumexp(x, 1),
                torch.nn.functional.layer_norm(x, (5,)), x.norm(dim=1), x.norm())
    compile_check(fn, x, native=[aten.amax.default, aten.sum.dim_IntList, aten.var_mean.correction])


@FEW
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), data=st.data())
def test_cumsum_of_integers_and_bools(shape, data):
    """Position ids from a mask (`mask.cumsum(1) - 1`), packed-sequence ids (`(diff != 1).cumsum(-1)`):
    exact, as a masked sum over the triangle. Floats fall back (their rounding order is eager's)."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x, mask = ints(*shape), torch.rand(*shape) > 0.4

    def fn(x, mask):
        return x.cumsum(dim) * 2, mask.cumsum(dim) - 1, torch.cumsum(x, dim, dtype=torch.int32)
    compile_check(fn, x, mask, native=[aten.cumsum.default], exact=True)


def test_cumsum_of_floats_falls_back():
    x = randn(3, 5)
    _, lowered = compile_check(lambda x: (x.cumsum(1),), x)
    lowered.assert_fallback(aten.cumsum.default)
