"""Constant folding: an elementwise op or view whose operands are all scalar constants becomes a
scalar constant (evaluated by the reference interpreter, so it means exactly what the op means)."""
from __future__ import annotations

import torch

from ..ir.graph import Graph, Node
from ..ir.interpret import Interpreter
from .rewrite import apply_rules, constant_like, scalar_constant

_SHAPE_ONLY = {"broadcast_in_dim", "reshape", "transpose", "reverse", "slice"}
_FOLDABLE = {"convert", "compare", "select", "is_finite"}


def _fold(node: Node):
    if not node.inputs or not all(scalar_constant(i) is not None for i in node.inputs):
        return None
    if node.op in _SHAPE_ONLY:
        return constant_like(node.inputs[0].attrs["value"], node)
    from ..ir.ops import OPS
    opdef = OPS[node.op]
    if node.op not in _FOLDABLE and not (opdef.arity in (1, 2) and not opdef.attrs):
        return None  # reductions, indexing, library ops: not folded
    scalars = [torch.tensor(i.attrs["value"], dtype=i.type.dtype.torch_dtype) for i in node.inputs]
    try:
        value = Interpreter().eval(node, scalars).item()
    except RuntimeError:
        return None  # e.g. integer division by zero: leave it to fail where eager would
    if node.type.dtype.is_float:
        value = float(value)
    return constant_like(value, node)


def run(graph: Graph) -> bool:
    return apply_rules(graph, [_fold])
