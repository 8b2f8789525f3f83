"""Algebraic simplification: identities that hold exactly in IEEE arithmetic, and view algebra.

    x * 1, x / 1, x - 0 -> x            (x + 0 only for integers: -0.0 + 0.0 is +0.0)
    neg(neg(x)) -> x                    select(c, x, x) -> x
    convert(x) to x's dtype -> x        convert(convert(x, wider), back) -> x, when exact
    reshape to the same shape -> x      reshape(reshape(x)) -> reshape(x)
    identity transpose -> x             transpose(transpose(x)) -> one transpose
    broadcast to the same shape -> x    full slice -> x
    the sum of a one-hot row -> its one value (one_hot_sum.py)
"""
from __future__ import annotations

from ..ir.graph import Graph, Node
from ..ir.types import F16, F32, F64, I8, I16, I32, I64, BF16
from .one_hot_sum import sum_of_one_hot
from .rewrite import apply_rules, new_node, scalar_constant

# convert(convert(x, a), b) is x when going through `a` loses nothing of x's type `b`.
_EXACT_WIDENING = {(F16, F32), (F16, F64), (BF16, F32), (BF16, F64), (F32, F64), (I8, I16),
                   (I8, I32), (I8, I64), (I16, I32), (I16, I64), (I32, I64)}


def _neutral_operand(node: Node):
    if len(node.inputs) != 2:
        return None
    a, b = node.inputs
    right = scalar_constant(b)
    if node.op in ("mul", "div") and right == 1:
        return a
    if node.op == "sub" and right == 0:
        return a
    if node.op == "add" and not node.type.dtype.is_float:
        if right == 0:
            return a
        if scalar_constant(a) == 0:
            return b
    if node.op == "mul" and scalar_constant(a) == 1:
        return b
    return None


def _involution(node: Node):
    if node.op == "neg" and node.inputs[0].op == "neg":
        return node.inputs[0].inputs[0]
    if node.op == "select" and node.inputs[1] is node.inputs[2]:
        return node.inputs[1]
    return None


def _converts(node: Node):
    if node.op != "convert":
        return None
    x = node.inputs[0]
    if x.type.dtype == node.type.dtype:
        return x
    if x.op == "convert" and x.inputs[0].type.dtype == node.type.dtype and \
            (node.type.dtype, x.type.dtype) in _EXACT_WIDENING:
        return x.inputs[0]
    return None


def _views(node: Node):
    x = node.inputs[0] if node.inputs else None
    if node.op in ("reshape", "broadcast_in_dim") and x.type.shape == node.type.shape and (
            node.op == "reshape" or node.attrs["dims"] == list(range(x.type.rank))):
        return x
    if node.op == "reshape" and x.op == "reshape":
        return new_node("reshape", [x.inputs[0]], {"shape": node.attrs["shape"]}, node)
    if node.op == "transpose":
        perm = node.attrs["perm"]
        if perm == list(range(len(perm))):
            return x
        if x.op == "transpose":
            inner = x.attrs["perm"]
            return new_node("transpose", [x.inputs[0]], {"perm": [inner[p] for p in perm]}, node)
    if node.op == "slice" and x.type.shape == node.type.shape and all(
            s == 1 for s in node.attrs["strides"]) and not any(node.attrs["starts"]):
        return x
    return None


RULES = [_neutral_operand, _involution, _converts, _views, sum_of_one_hot]


def run(graph: Graph) -> bool:
    return apply_rules(graph, RULES)
