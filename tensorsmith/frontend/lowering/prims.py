"""Lowerings of the few `prims` ops that PyTorch's decompositions leave in graphs."""
from __future__ import annotations

import torch

from ...ir.types import dtype_from_torch
from . import reductions
from .registry import lower

prims = torch.ops.prims


@lower(prims.broadcast_in_dim.default)
def _broadcast_in_dim(ctx, x, shape, broadcast_dimensions):
    return ctx.add("broadcast_in_dim", [x], {"shape": list(shape), "dims": list(broadcast_dimensions)})


@lower(prims.sum.default)
def _sum(ctx, x, dims, output_dtype=None):
    if output_dtype is not None:
        x = ctx.convert(x, dtype_from_torch(output_dtype))
    return ctx.reduce(x, "sum", list(dims))


@lower(prims.var.default)
def _var(ctx, x, dims, correction=1, output_dtype=None):
    return reductions._var(ctx, x, list(dims), correction)


@lower(prims.div.default)
def _div(ctx, a, b):
    return ctx.elementwise("div", a, b)  # prims.div truncates integers, as the IR's div does
