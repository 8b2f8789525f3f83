"""Lowerings of indexing: embedding, index_select, index with one index tensor, gather, scatter,
and the accumulating index_put that embedding's backward becomes."""
from __future__ import annotations

import math

import torch

from ...ir.types import I32, I64, U8
from .registry import broadcast_shapes, lower, normalize_dim, unsupported

aten = torch.ops.aten


def _wrapped(ctx, index, size: int):
    """Negative indices count from the end, as in PyTorch."""
    index = ctx.convert(index, I64)
    negative = ctx.compare("LT", index, 0)
    return ctx.select(negative, ctx.elementwise("add", index, size), index)


def _index_tensors(x, indices) -> list[tuple[int, object]]:
    """The (dim, index) pairs of an `x[..., i, j, ...]` whose index tensors are integer and sit in
    adjacent dims (so the result keeps their place), else unsupported."""
    present = [(d, i) for d, i in enumerate(indices) if i is not None]
    if not present or x.type.rank == 0:
        unsupported("indexing without an index tensor, or of a scalar")
    for _, index in present:
        if index.type.dtype.is_bool or index.type.dtype == U8:
            unsupported("mask indexing")  # ATen reads a uint8 index tensor as a mask, like bool
        if index.type.dtype not in (I64, I32):
            unsupported(f"index of type {index.type.dtype}")
    dims = [d for d, _ in present]
    if dims != list(range(dims[0], dims[0] + len(dims))):
        unsupported("index tensors in dims that are not adjacent")  # their result dims move first
    return present


def _flat_index(ctx, x, present):
    """`x` with the indexed dims merged into one (at the first's place), and the index into that
    dim: the row-major combination of the wrapped indices, broadcast together. An index out of its
    own dim's range makes the combined index out of range too, so `take`'s check raises as eager
    does, rather than reading another row."""
    first, last = present[0][0], present[-1][0]
    sizes = [x.type.shape[d] for d, _ in present]
    merged = math.prod(sizes)
    if len(present) == 1:
        return x, first, _wrapped(ctx, present[0][1], sizes[0])
    if merged == 0:
        unsupported("indexing an empty dim with several index tensors")
    shape = broadcast_shapes(*(i.type.shape for _, i in present))
    flat, stride = None, merged
    for size, (_, index) in zip(sizes, present):
        stride //= size
        index = ctx.broadcast_to(_wrapped(ctx, index, size), shape)
        term = ctx.elementwise("mul", index, stride)
        term = ctx.select(ctx.compare("LT", index, size), term, merged)
        term = ctx.select(ctx.compare("GE", index, 0), term, merged)
        flat = term if flat is None else ctx.elementwise("add", flat, term)
    xr = ctx.reshape(x, [*x.type.shape[:first], merged, *x.type.shape[last + 1:]])
    return xr, first, flat


@lower(aten.embedding.default)
def _embedding(ctx, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return ctx.add("take", [weight, _wrapped(ctx, indices, weight.type.shape[0])], {"dim": 0})


@lower(aten.index_select.default)
def _index_select(ctx, x, dim, index):
    dim = normalize_dim(dim, x.type.rank)
    if x.type.rank == 0:
        unsupported("index_select of a scalar")
    if index.type.rank == 0:
        index = ctx.reshape(index, [1])  # a 0-dim index selects a dimension of size 1
    return ctx.add("take", [x, _wrapped(ctx, index, x.type.shape[dim])], {"dim": dim})


@lower(aten.index.Tensor, aten._unsafe_index.Tensor)
def _index(ctx, x, indices):
    xr, dim, index = _flat_index(ctx, x, _index_tensors(x, indices))
    return ctx.add("take", [xr, index], {"dim": dim})


@lower(aten.index_put.default, aten._unsafe_index_put.default)
def _index_put(ctx, x, indices, values, accumulate=False):
    if not accumulate:
        unsupported("index_put without accumulate")
    xr, dim, index = _flat_index(ctx, x, _index_tensors(x, indices))
    src_shape = [*xr.type.shape[:dim], *index.type.shape, *xr.type.shape[dim + 1:]]
    src = ctx.broadcast_to(ctx.convert(values, x.type.dtype), src_shape)
    return ctx.reshape(ctx.add("index_add", [xr, index, src], {"dim": dim}), list(x.type.shape))


@lower(aten.gather.default)
def _gather(ctx, x, dim, index, sparse_grad=False):
    dim = normalize_dim(dim, x.type.rank)
    if x.type.rank == 0 or index.type.rank != x.type.rank:
        unsupported("gather of a scalar or with an index of another rank")
    return ctx.add("gather", [x, _wrapped(ctx, index, x.type.shape[dim])], {"dim": dim})


def _scatter_source(ctx, x, index, src):
    if isinstance(src, (int, float, bool)):
        return ctx.constant(src, x.type.dtype, x.type.device, index.type.shape)
    if tuple(src.type.shape) != tuple(index.type.shape):
        unsupported("scatter source larger than its index")
    return ctx.convert(src, x.type.dtype)


def _scatter(op: str, *targets):
    @lower(*targets)
    def lowering(ctx, x, dim, index, src, reduce=None):
        dim = normalize_dim(dim, x.type.rank)
        if reduce is not None:
            unsupported(f"scatter with reduce={reduce!r}")
        if x.type.rank == 0 or index.type.rank != x.type.rank:
            unsupported("scatter of a scalar or with an index of another rank")
        index = _wrapped(ctx, index, x.type.shape[dim])
        return ctx.add(op, [x, index, _scatter_source(ctx, x, index, src)], {"dim": dim})


_scatter("scatter_add", aten.scatter_add.default)
_scatter("scatter", aten.scatter.src, aten.scatter.value)
