"""Lowerings of ops that create tensors: full/zeros/ones/empty (and *_like), scalar_tensor, arange,
and random sampling (rand/randn and their *_like)."""
from __future__ import annotations

import math

import torch

from ...ir.sizes import Sym
from ...ir.types import BF16, F16, F32, F64, device_name, dtype_from_torch
from .registry import lower, unsupported

aten = torch.ops.aten


def _result(ctx):
    """dtype and device of the op's result, as PyTorch traced it."""
    meta = ctx.meta
    if not isinstance(meta, torch.Tensor):
        unsupported("creation op without a traced result")
    return dtype_from_torch(meta.dtype), device_name(meta.device)


def _fill(ctx, shape, value):
    dtype, device = _result(ctx)
    return ctx.constant(value, dtype, device, list(shape))


@lower(aten.full.default)
def _full(ctx, size, fill_value, **_):
    return _fill(ctx, size, fill_value)


@lower(aten.full_like.default)
def _full_like(ctx, x, fill_value, **_):
    return _fill(ctx, x.type.shape, fill_value)


@lower(aten.zeros.default, aten.empty.memory_format, aten.new_zeros.default, aten.new_empty.default)
def _zeros(ctx, *args, **_):
    size = args[-1] if args and isinstance(args[-1], (list, tuple)) else args[0]
    return _fill(ctx, size, 0)


@lower(aten.ones.default, aten.new_ones.default)
def _ones(ctx, *args, **_):
    return _fill(ctx, args[-1], 1)


@lower(aten.zeros_like.default, aten.empty_like.default)
def _zeros_like(ctx, x, **_):
    return _fill(ctx, x.type.shape, 0)


@lower(aten.ones_like.default)
def _ones_like(ctx, x, **_):
    return _fill(ctx, x.type.shape, 1)


@lower(aten.scalar_tensor.default)
def _scalar_tensor(ctx, value, **_):
    return _fill(ctx, [], value)


@lower(aten.arange.start_step, aten.arange.start, aten.arange.default)
def _arange(ctx, *args, **_):
    dtype, device = _result(ctx)
    start, end, step = (0, args[0], 1) if len(args) == 1 else (*args[:2], args[2] if len(args) > 2 else 1)
    if step == 1 and all(isinstance(v, (int, Sym)) for v in (start, end)):  # sizes may be symbolic
        count = max(0, end - start)
    else:
        count = max(0, math.ceil((end - start) / step))
    if count == 0:
        unsupported("empty arange")
    if not dtype.is_float and any(isinstance(v, float) for v in (start, step)):
        unsupported("integer arange with float bounds")
    # Like ATen, compute start + step * i in a wider type and round once: in float16 or bfloat16
    # the indices themselves (and each product and sum) would round, off by many ulps.
    compute = F32 if dtype in (F16, BF16) else (F64 if dtype.is_float else dtype)
    iota = ctx.add("iota", [], {"shape": [count], "dim": 0, "dtype": compute, "device": device})
    if step != 1:
        iota = ctx.elementwise("mul", iota, step, dtype=compute)
    if start != 0:
        iota = ctx.elementwise("add", iota, start, dtype=compute)
    return ctx.convert(iota, dtype)


def _random(dist: str, *targets, like: bool = False):
    @lower(*targets)
    def lowering(ctx, shape_or_x, **kwargs):
        if kwargs.get("generator") is not None:
            unsupported("an explicit generator")
        dtype, device = _result(ctx)
        shape = shape_or_x.type.shape if like else shape_or_x
        return ctx.add("random", [], {"dist": dist, "shape": list(shape), "dtype": dtype,
                                      "device": device})


_random("uniform", aten.rand.default)
_random("normal", aten.randn.default)
_random("uniform", aten.rand_like.default, like=True)
_random("normal", aten.randn_like.default, like=True)
