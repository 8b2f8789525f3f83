"""The sum of a one-hot row is its one value: a simplify rule for cross-entropy's backward.

nll_loss's backward scatters -1 into zeros at each row's target, scales it, and log_softmax's
backward sums that row:

    sum_d(scatter(zeros, t, src, dim=d) * f)  ->  (src * f) + (0.0 * f) + 0.0

when t has extent 1 along d (one target per row) and f does not vary along d. Without it, the
kernel loops once over every row (a 50k vocabulary) only to find the one element that is not zero.

The result is exactly eager's: every other term of the sum is 0 * f, which is zero for finite f and
NaN for an infinite or NaN f, as `0.0 * f` is; and a sum starting from +0.0 never ends at -0.0, which
the final `+ 0.0` reproduces. An out-of-range target is caught by the index check either way.
"""
from __future__ import annotations

from ..ir.graph import Node
from .rewrite import constant_like, new_node, scalar_constant


def _zeros(node: Node) -> bool:
    return scalar_constant(node) == 0


def _one_hot(node: Node, dim: int) -> bool:
    """scatter(zeros, t, src, dim) with one index per row along `dim`, as large as zeros elsewhere."""
    if node.op != "scatter" or node.attrs["dim"] != dim or not _zeros(node.inputs[0]):
        return False
    base, index, src = (i.type.shape for i in node.inputs)
    row = tuple(1 if d == dim else n for d, n in enumerate(base))
    return base[dim] > 1 and tuple(index) == row and tuple(src) == row


def _constant_along(node: Node, dim: int) -> bool:
    """A broadcast whose operand has extent 1 along `dim` (or does not reach it)."""
    if node.op != "broadcast_in_dim":
        return False
    dims = node.attrs["dims"]
    return dim not in dims or node.inputs[0].type.shape[dims.index(dim)] == 1


def sum_of_one_hot(node: Node):
    if node.op != "reduce" or node.attrs["kind"] != "sum" or len(node.attrs["dims"]) != 1:
        return None
    (dim,) = node.attrs["dims"]
    x = node.inputs[0]
    if not x.type.dtype.is_float:
        return None
    if _one_hot(x, dim):
        one_hot, factor = x, None
    elif x.op == "mul" and any(_one_hot(i, dim) for i in x.inputs):
        one_hot, factor = (x.inputs[0], x.inputs[1]) if _one_hot(x.inputs[0], dim) else x.inputs[::-1]
        if not _constant_along(factor, dim):
            return None
    else:
        return None
    src = one_hot.inputs[2]
    value = src
    if factor is not None:
        row = list(src.type.shape)
        f = new_node("broadcast_in_dim", [factor.inputs[0]], {"shape": row, "dims": factor.attrs["dims"]},
                     node)
        value = new_node("mul", [src, f], {}, node)
        value = new_node("add", [value, new_node("mul", [constant_like(0.0, f), f], {}, node)], {}, node)
    value = new_node("add", [value, constant_like(0.0, value)], {}, node)
    return new_node("reshape", [value], {"shape": list(node.type.shape)}, node)
