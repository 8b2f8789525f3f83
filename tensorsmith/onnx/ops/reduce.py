"""Reduction ONNX ops: ReduceSum and its kin over chosen axes, ArgMax and ArgMin."""
from __future__ import annotations

import torch

from .registry import computable, highest, ints, lowest, op


def _prod(x: torch.Tensor, dims, keepdim: bool) -> torch.Tensor:
    for d in sorted(dims, reverse=True):
        x = x.prod(d, keepdim=keepdim)
    return x


def _mean(x: torch.Tensor, dims, keepdim: bool) -> torch.Tensor:
    if x.is_floating_point():
        return x.mean(dims, keepdim=keepdim)
    count = 1
    for d in dims:
        count *= x.shape[d]
    return torch.div(x.sum(dims, keepdim=keepdim), count, rounding_mode="trunc")


def _norm2(x: torch.Tensor, dims, keepdim: bool) -> torch.Tensor:
    squares = (x * x).sum(dims, keepdim=keepdim)
    return squares.sqrt() if squares.is_floating_point() else squares.double().sqrt()


# name: (reduction of x over dims, opset from which axes are an input, value over no elements
# when the reduction cannot compute it)
_REDUCTIONS = {
    "ReduceSum": (lambda x, d, k: x.sum(d, keepdim=k), 13, None),
    "ReduceMean": (_mean, 18, None),
    "ReduceProd": (_prod, 18, None),
    "ReduceMax": (lambda x, d, k: x.amax(d, keepdim=k), 18, lowest),
    "ReduceMin": (lambda x, d, k: x.amin(d, keepdim=k), 18, highest),
    "ReduceL1": (lambda x, d, k: x.abs().sum(d, keepdim=k), 18, None),
    "ReduceL2": (_norm2, 18, None),
    "ReduceSumSquare": (lambda x, d, k: (x * x).sum(d, keepdim=k), 18, None),
    "ReduceLogSum": (lambda x, d, k: x.sum(d, keepdim=k).log(), 18, None),
    "ReduceLogSumExp": (lambda x, d, k: x.logsumexp(d, keepdim=k), 18, None),
}


def _reduced_axes(node, x: torch.Tensor, axes, since: int) -> list[int] | None:
    """The axes to reduce, or None for none at all (empty axes with noop_with_empty_axes)."""
    axes = node.attr("axes") if node.opset < since else ints(axes, f"{node.op_type}'s axes")
    if not axes:
        return None if node.attr("noop_with_empty_axes", 0) else list(range(x.dim()))
    return sorted({a + x.dim() if a < 0 else a for a in axes})


@op(*_REDUCTIONS)
def reduce(node, x, axes=None):
    fn, since, empty = _REDUCTIONS[node.op_type]
    keepdim = bool(node.attr("keepdims", 1))
    dims = _reduced_axes(node, x, axes, since)
    data = computable(x)
    if dims is None:  # over a new axis of size 1: the reduction of each value alone
        data, dims, keepdim = data.unsqueeze(-1), [x.dim()], False
    if empty is not None and data.numel() == 0:
        shape = [1 if i in dims else n for i, n in enumerate(data.shape)
                 if keepdim or i not in dims]
        return torch.full(shape, empty(x.dtype), dtype=x.dtype, device=x.device)
    return fn(data, dims, keepdim).to(x.dtype)


@op("ArgMax", "ArgMin")
def arg_reduce(node, x):
    """The index of the largest (smallest) value along `axis`: the first one, or the last with
    select_last_index."""
    axis = node.attr("axis", 0)
    axis = axis + x.dim() if axis < 0 else axis
    keepdim = bool(node.attr("keepdims", 1))
    find = torch.argmax if node.op_type == "ArgMax" else torch.argmin
    data = computable(x)
    if node.attr("select_last_index", 0):
        return x.shape[axis] - 1 - find(data.flip(axis), axis, keepdim=keepdim)
    return find(data, axis, keepdim=keepdim)
