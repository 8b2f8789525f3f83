"""Lowerings of indexing: embedding, index_select, index with one index tensor, gather, scatter,
and the accumulating index_put that embedding's backward becomes."""
from __future__ import annotations

import torch

from ...ir.types import I32, I64, U8
from .registry import lower, normalize_dim, unsupported

aten = torch.ops.aten


def _wrapped(ctx, index, size: int):
    """Negative indices count from the end, as in PyTorch."""
    index = ctx.convert(index, I64)
    negative = ctx.compare("LT", index, 0)
    return ctx.select(negative, ctx.elementwise("add", index, size), index)


def _single_index(x, indices):
    """The (dim, index) of an `x[..., idx, ...]` with exactly one index tensor, else unsupported."""
    present = [(d, i) for d, i in enumerate(indices) if i is not None]
    if len(present) != 1:
        unsupported("indexing with several index tensors")
    dim, index = present[0]
    if index.type.dtype.is_bool or index.type.dtype == U8:
        unsupported("mask indexing")  # ATen reads a uint8 index tensor as a mask, like bool
    if index.type.dtype not in (I64, I32):
        unsupported(f"index of type {index.type.dtype}")
    return normalize_dim(dim, x.type.rank), index


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
    dim, index = _single_index(x, indices)
    return ctx.add("take", [x, _wrapped(ctx, index, x.type.shape[dim])], {"dim": dim})


@lower(aten.index_put.default, aten._unsafe_index_put.default)
def _index_put(ctx, x, indices, values, accumulate=False):
    if not accumulate:
        unsupported("index_put without accumulate")
    dim, index = _single_index(x, indices)
    index = _wrapped(ctx, index, x.type.shape[dim])
    src_shape = [*x.type.shape[:dim], *index.type.shape, *x.type.shape[dim + 1:]]
    src = ctx.broadcast_to(ctx.convert(values, x.type.dtype), src_shape)
    return ctx.add("index_add", [x, index, src], {"dim": dim})


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
