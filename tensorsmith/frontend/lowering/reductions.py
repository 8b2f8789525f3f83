"""Lowerings of reductions: sum, mean, prod, amax/amin, any/all, argmax/argmin, var/var_mean,
and the cumulative sum of integers."""
from __future__ import annotations

import torch

from ...ir.types import BOOL, I64, dtype_from_torch
from .registry import lower, normalize_dim, unsupported

aten = torch.ops.aten


def _dims(x, dims) -> list[int]:
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return list(range(x.type.rank))
    if isinstance(dims, int):
        dims = [dims]
    return [normalize_dim(d, x.type.rank) for d in dims]


def _count(x, dims) -> int:
    """How many elements each result of reducing `dims` of `x` covers."""
    count = 1
    for d in dims:
        count *= x.type.shape[d]
    return count


def _accumulation_input(ctx, x, dtype):
    """sum/prod of bool or integers accumulate in int64 (as ATen does) unless a dtype is given."""
    if dtype is not None:
        return ctx.convert(x, dtype_from_torch(dtype))
    if x.type.dtype.is_bool or x.type.dtype.is_integer:
        return ctx.convert(x, I64)
    return x


@lower(aten.sum.dim_IntList, aten.sum.default)
def _sum(ctx, x, dims=None, keepdim=False, dtype=None):
    return ctx.reduce(_accumulation_input(ctx, x, dtype), "sum", _dims(x, dims), keepdim)


@lower(aten.prod.dim_int, aten.prod.default)
def _prod(ctx, x, dim=None, keepdim=False, dtype=None):
    return ctx.reduce(_accumulation_input(ctx, x, dtype), "prod", _dims(x, dim), keepdim)


@lower(aten.mean.dim, aten.mean.default)
def _mean(ctx, x, dims=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = ctx.convert(x, dtype_from_torch(dtype))
    if not x.type.dtype.is_float:
        unsupported(f"mean of {x.type.dtype}")
    dims = _dims(x, dims)
    total = ctx.reduce(x, "sum", dims, keepdim)
    return ctx.elementwise("div", total, float(_count(x, dims)))


def _min_max(kind: str, *targets):
    @lower(*targets)
    def lowering(ctx, x, dims=None, keepdim=False):
        dims = _dims(x, dims)
        if any(x.type.shape[d] == 0 for d in dims):
            unsupported(f"{kind} over an empty dimension")
        return ctx.reduce(x, kind, dims, keepdim)


_min_max("max", aten.amax.default, aten.max.default)
_min_max("min", aten.amin.default, aten.min.default)


def _any_all(kind: str, *targets):
    @lower(*targets)
    def lowering(ctx, x, dims=None, keepdim=False):
        pred = x if x.type.dtype == BOOL else ctx.compare("NE", x, 0)
        if isinstance(dims, (list, tuple)) and len(dims) == 0:
            result = pred  # unlike sum's, an empty dim list of any/all.dims reduces nothing
        else:
            result = ctx.reduce(pred, kind, _dims(x, dims), keepdim)
        return ctx.convert(result, ctx.out_dtype)


_any_all("any", aten.any.default, aten.any.dim, aten.any.dims)
_any_all("all", aten.all.default, aten.all.dim, aten.all.dims)


def _arg(kind: str, *targets):
    @lower(*targets)
    def lowering(ctx, x, dim=None, keepdim=False):
        if dim is None:
            x, dim = ctx.reshape(x, [x.type.numel]), 0
            keepdim_shape = [1] * len(ctx.meta.shape) if keepdim else []
        else:
            dim = normalize_dim(dim, x.type.rank)
            keepdim_shape = [1 if i == dim else s for i, s in enumerate(x.type.shape)]
        if x.type.rank == 0:
            return ctx.constant(0, I64, x.type.device)
        if x.type.shape[dim] == 0:
            unsupported(f"{kind} over an empty dimension")
        out = ctx.add(kind, [x], {"dim": dim})
        return ctx.reshape(out, keepdim_shape) if keepdim else out


_arg("argmax", aten.argmax.default)
_arg("argmin", aten.argmin.default)


@lower(aten.var.correction, aten.var_mean.correction)
def _var(ctx, x, dims=None, correction=None, keepdim=False):
    if not x.type.dtype.is_float:
        unsupported(f"variance of {x.type.dtype}")
    dims = _dims(x, dims)
    count = _count(x, dims)
    correction = 1 if correction is None else correction
    mean = ctx.elementwise("div", ctx.reduce(x, "sum", dims, keepdim=True), float(count))
    centered = ctx.elementwise("sub", x, mean)
    squares = ctx.reduce(ctx.add("mul", [centered, centered]), "sum", dims, keepdim)
    var = ctx.elementwise("div", squares, float(max(count - correction, 0)))
    if isinstance(ctx.meta, (tuple, list)):
        return var, (mean if keepdim else ctx.reshape(mean, var.type.shape))
    return var


# The longest dim whose integer cumulative sum is lowered: it becomes a masked sum over an n x n
# triangle per row (n^2 additions, fused into one reduction kernel).
CUMSUM_MAX = 4096


@lower(aten.cumsum.default)
def _cumsum(ctx, x, dim, dtype=None):
    """cumsum of bools or integers (position ids from a mask, packed-sequence ids) as
    out[..., k, ...] = sum over j <= k of x[..., j, ...]: exact for integers in any order of
    addition. Floats fall back: a sum in another order than eager's running one rounds otherwise."""
    x = _accumulation_input(ctx, x, dtype)
    if not x.type.dtype.is_integer:
        unsupported("cumsum of floating point values")
    dim = normalize_dim(dim, max(x.type.rank, 1))
    if x.type.rank == 0:
        return x
    shape = list(x.type.shape)
    n = shape[dim]
    if n > CUMSUM_MAX:
        unsupported(f"cumsum over {n} elements (a triangle of {n}^2)")
    # [..., j, k, ...]: x along j, the result's position along k
    wide = [*shape[:dim], n, n, *shape[dim + 1:]]
    spread = ctx.add("broadcast_in_dim", [x], {"shape": wide, "dims": [
        *range(dim + 1), *range(dim + 2, len(wide))]})
    j, k = (ctx.add("iota", [], {"shape": wide, "dim": d, "dtype": I64, "device": x.type.device})
            for d in (dim, dim + 1))
    kept = ctx.select(ctx.compare("LE", j, k), spread, 0)
    return ctx.reduce(kept, "sum", [dim])
