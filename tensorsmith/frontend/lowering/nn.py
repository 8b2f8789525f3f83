"""Lowerings of matrix products and convolution (library calls after fusion)."""
from __future__ import annotations

import torch

from .registry import lower, unsupported

aten = torch.ops.aten


def _matching_dtypes(a, b):
    if a.type.dtype != b.type.dtype:
        unsupported(f"matrix product of {a.type.dtype} and {b.type.dtype}")


@lower(aten.mm.default, aten.bmm.default)
def _mm(ctx, a, b):
    _matching_dtypes(a, b)
    return ctx.add("dot", [a, b])


@lower(aten.addmm.default)
def _addmm(ctx, bias, a, b, beta=1, alpha=1):
    _matching_dtypes(a, b)
    if alpha == 1 and beta == 1 and bias.type.rank == 1 and bias.type.dtype == a.type.dtype:
        return ctx.add("addmm", [bias, a, b])  # nn.Linear: the bias add is the product's epilogue
    product = ctx.add("dot", [a, b])
    if alpha != 1:
        product = ctx.elementwise("mul", product, alpha)
    if beta == 0:
        return product
    if beta != 1:
        bias = ctx.elementwise("mul", bias, beta)
    return ctx.elementwise("add", product, bias)


@lower(aten.convolution.default)
def _convolution(ctx, x, w, bias, stride, padding, dilation, transposed, output_padding, groups):
    _matching_dtypes(x, w)
    spatial = x.type.rank - 2
    def expand(v):
        v = list(v)
        return v * spatial if len(v) == 1 else v
    if isinstance(padding, str):
        unsupported(f"padding mode {padding!r}")
    out = ctx.add("convolution", [x, w], {
        "stride": expand(stride), "padding": expand(padding), "dilation": expand(dilation),
        "groups": groups, "transposed": bool(transposed), "output_padding": expand(output_padding)})
    if bias is None:
        return out
    per_channel = ctx.add("broadcast_in_dim", [ctx.convert(bias, out.type.dtype)],
                          {"shape": list(out.type.shape), "dims": [1]})
    return ctx.add("add", [out, per_channel])
