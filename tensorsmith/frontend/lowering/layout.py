"""Lowerings of ops defined by memory layout or writing into a base tensor: as_strided,
empty_strided, copy and slice_scatter (what functionalization makes of in-place updates;
select_scatter is decomposed before import)."""
from __future__ import annotations

import torch

from ...errors import GraphUnsupportedError
from ...ir.graph import Node
from ...ir.types import device_name, dtype_from_torch
from .registry import lower, normalize_dim, unsupported
from .views import _slice

aten = torch.ops.aten


def _contiguous_strides(shape) -> list[int]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return strides[::-1]


def _eager_input_is_contiguous(ctx) -> bool:
    meta = ctx.fx_node.args[0].meta.get("val") if ctx.fx_node is not None else None
    return isinstance(meta, torch.Tensor) and meta.is_contiguous()


@lower(aten.as_strided.default)
def _as_strided(ctx, x, size, stride, storage_offset=None):
    """A reshape when it reads the whole input in row-major order; other strides fall back, which is
    exact only when eager's input is contiguous too (IR values are row-major)."""
    if not _eager_input_is_contiguous(ctx):
        raise GraphUnsupportedError("as_strided of a tensor whose eager layout is not contiguous")
    numel = 1
    for s in size:
        numel *= s
    relevant = [(sz, st) for sz, st in zip(size, stride) if sz != 1]
    expected = [(sz, st) for sz, st in zip(size, _contiguous_strides(size)) if sz != 1]
    if (storage_offset or 0) == 0 and numel == x.type.numel and relevant == expected:
        return ctx.reshape(x, size)
    unsupported("as_strided other than a row-major reshape")


@lower(aten.slice_scatter.default)
def _slice_scatter(ctx, base, src, dim=0, start=None, end=None, step=1):
    dim = normalize_dim(dim, base.type.rank)
    size = base.type.shape[dim]
    start = 0 if start is None else (start + size if start < 0 else start)
    end = size if end is None else (end + size if end < 0 else end)
    start, end = max(0, min(size, start)), max(0, min(size, end))
    if src.type.shape[dim] != len(range(start, end, step)):
        unsupported("slice_scatter source does not fit the slice")
    return _scattered(ctx, base, ctx.convert(src, base.type.dtype), dim, start, step)


def _scattered(ctx, base, src, dim: int, start: int, step: int):
    """`base` with `src` written at start, start + step, ... along `dim`: the span those positions
    cover, with `src` itself for a step of 1; for a larger step (an in-place update of
    `x[..., 1::2]`, as in Mamba's associative scan) the span, padded at the end if it runs past
    `base`, seen as [count, step] blocks whose first column is `src`."""
    shape, count = list(base.type.shape), src.type.shape[dim]
    if count == 0:
        return base
    size, span_end = shape[dim], start + count * step

    def along(n):
        return [*shape[:dim], *n, *shape[dim + 1:]]

    span = src
    if step > 1:
        extended = base
        if span_end > size:
            padding = ctx.constant(0, base.type.dtype, base.type.device, along([span_end - size]))
            extended = ctx.add("concat", [base, padding], {"dim": dim})
        blocks = ctx.reshape(_slice(ctx, extended, dim, start, span_end, 1), along([count, step]))
        columns = [ctx.reshape(src, along([count, 1])), _slice(ctx, blocks, dim + 1, 1, step, 1)]
        span = ctx.reshape(ctx.add("concat", columns, {"dim": dim + 1}), along([count * step]))
    parts = [_slice(ctx, base, dim, 0, start, 1), span,
             _slice(ctx, base, dim, min(span_end, size), size, 1)]
    parts = [p for p in parts if p.type.shape[dim] > 0]
    joined = parts[0] if len(parts) == 1 else ctx.add("concat", parts, {"dim": dim})
    return _slice(ctx, joined, dim, 0, size, 1) if span_end > size else joined


@lower(aten.copy.default)
def _copy(ctx, dst, src, non_blocking=False):
    """Functional copy_: src converted and broadcast to dst's dtype and shape."""
    return ctx.broadcast_to(ctx.convert(src, dst.type.dtype), dst.type.shape)


@lower(aten.new_empty_strided.default, aten.empty_strided.default)
def _empty_strided(ctx, *args, **_):
    """Uninitialized memory of any layout: zeros in row-major order serve."""
    size = args[1] if isinstance(args[0], Node) else args[0]
    meta = ctx.meta
    if not isinstance(meta, torch.Tensor):
        unsupported("empty_strided without a traced result")
    return ctx.constant(0, dtype_from_torch(meta.dtype), device_name(meta.device), list(size))
