"""Lowerings of view and layout ops: reshape, expand, permute, squeeze, slice, split, cat, pad, flip.

In a functional graph a view is just a new value; later passes turn these into index maps.
"""
from __future__ import annotations

import torch

from ...ir.sizes import provably, size_max, size_min
from .registry import lower, normalize_dim, unsupported

aten = torch.ops.aten


def _infer_shape(shape, numel: int) -> list[int]:
    shape = list(shape)
    if shape.count(-1) > 1:
        unsupported(f"shape {shape} has more than one -1")
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if known == 0:
            unsupported(f"cannot infer -1 in {shape}")
        shape[shape.index(-1)] = numel // known
    return shape


@lower(aten.view.default, aten._unsafe_view.default, aten.reshape.default)
def _view(ctx, x, shape):
    return ctx.reshape(x, _infer_shape(shape, x.type.numel))


@lower(aten.expand.default)
def _expand(ctx, x, shape, implicit=False):
    offset = len(shape) - x.type.rank
    target = [x.type.shape[i - offset] if s == -1 else s for i, s in enumerate(shape)]
    return ctx.broadcast_to(x, target)


@lower(aten.permute.default)
def _permute(ctx, x, dims):
    perm = [normalize_dim(d, x.type.rank) for d in dims]
    if perm == list(range(x.type.rank)):
        return x
    return ctx.add("transpose", [x], {"perm": perm})


@lower(aten.t.default)
def _t(ctx, x):
    return _permute(ctx, x, list(range(x.type.rank))[::-1])


@lower(aten.transpose.int)
def _transpose(ctx, x, dim0, dim1):
    perm = list(range(x.type.rank))
    a, b = normalize_dim(dim0, x.type.rank), normalize_dim(dim1, x.type.rank)
    perm[a], perm[b] = perm[b], perm[a]
    return _permute(ctx, x, perm)


@lower(aten.unsqueeze.default)
def _unsqueeze(ctx, x, dim):
    dim = normalize_dim(dim, x.type.rank + 1)
    shape = list(x.type.shape)
    shape.insert(dim, 1)
    return ctx.reshape(x, shape)


@lower(aten.squeeze.default, aten.squeeze.dim, aten.squeeze.dims)
def _squeeze(ctx, x, dims=None):
    rank = x.type.rank
    if dims is None:
        dims = range(rank)
    elif isinstance(dims, int):
        dims = [dims]
    drop = {normalize_dim(d, rank) for d in dims} if rank else set()
    return ctx.reshape(x, [s for i, s in enumerate(x.type.shape) if not (i in drop and s == 1)])


def _slice(ctx, x, dim, start, end, step):
    shape = x.type.shape
    size = shape[dim]
    start, end = (0 if start is None else start), (size if end is None else end)
    start = size_max(0, size_min(size, start + size if start < 0 else start))
    end = size_max(start, size_min(size, end + size if end < 0 else end))
    if provably(lambda: (start, end, step) == (0, size, 1)):
        return x
    starts = [start if i == dim else 0 for i in range(len(shape))]
    limits = [end if i == dim else s for i, s in enumerate(shape)]
    strides = [step if i == dim else 1 for i in range(len(shape))]
    return ctx.add("slice", [x], {"starts": starts, "limits": limits, "strides": strides})


@lower(aten.slice.Tensor)
def _slice_tensor(ctx, x, dim=0, start=None, end=None, step=1):
    if step < 1:
        unsupported(f"slice step {step}")
    return _slice(ctx, x, normalize_dim(dim, x.type.rank), start, end, step)


@lower(aten.select.int)
def _select_int(ctx, x, dim, index):
    dim = normalize_dim(dim, x.type.rank)
    size = x.type.shape[dim]
    if not -size <= index < size:
        unsupported(f"index {index} out of range for size {size}")
    index %= size
    picked = _slice(ctx, x, dim, index, index + 1, 1)
    return ctx.reshape(picked, [s for i, s in enumerate(x.type.shape) if i != dim])


@lower(aten.split_with_sizes.default)
def _split_with_sizes(ctx, x, sizes, dim=0):
    dim = normalize_dim(dim, x.type.rank)
    if sum(sizes) != x.type.shape[dim]:
        unsupported(f"split sizes {sizes} do not add up to {x.type.shape[dim]}")
    parts, start = [], 0
    for size in sizes:
        parts.append(_slice(ctx, x, dim, start, start + size, 1))
        start += size
    return parts


@lower(aten.split.Tensor)
def _split(ctx, x, split_size, dim=0):
    dim = normalize_dim(dim, x.type.rank)
    size = x.type.shape[dim]
    if split_size <= 0:
        unsupported(f"split size {split_size}")
    sizes = [min(split_size, size - s) for s in range(0, size, split_size)] or [0]
    return _split_with_sizes(ctx, x, sizes, dim)


@lower(aten.unbind.int)
def _unbind(ctx, x, dim=0):
    dim = normalize_dim(dim, x.type.rank)
    return [_select_int(ctx, x, dim, i) for i in range(x.type.shape[dim])]


@lower(aten.cat.default)
def _cat(ctx, tensors, dim=0):
    # Like ATen, skip 1-d empty tensors, which cat accepts whatever the others' rank.
    tensors = [t for t in tensors if not (t.type.rank == 1 and t.type.shape[0] == 0)] or tensors[:1]
    dtype = ctx.out_dtype
    dim = normalize_dim(dim, tensors[0].type.rank)
    return ctx.add("concat", [ctx.convert(t, dtype) for t in tensors], {"dim": dim})


@lower(aten.stack.default)
def _stack(ctx, tensors, dim=0):
    dim = normalize_dim(dim, tensors[0].type.rank + 1)
    return _cat(ctx, [_unsqueeze(ctx, t, dim) for t in tensors], dim)


@lower(aten.constant_pad_nd.default)
def _constant_pad_nd(ctx, x, pad, value=0):
    if len(pad) % 2 or len(pad) // 2 > x.type.rank:
        unsupported(f"padding {pad} for rank {x.type.rank}")
    low, high = [0] * x.type.rank, [0] * x.type.rank
    for i in range(len(pad) // 2):
        low[x.type.rank - 1 - i], high[x.type.rank - 1 - i] = pad[2 * i], pad[2 * i + 1]
    dtype = x.type.dtype
    value = bool(value) if dtype.is_bool else (float(value) if dtype.is_float else int(value))
    return ctx.add("pad", [x], {"low": low, "high": high, "value": value})


@lower(aten.flip.default)
def _flip(ctx, x, dims):
    return ctx.add("reverse", [x], {"dims": sorted({normalize_dim(d, x.type.rank) for d in dims})})
