"""Dynamo's symbolic sizes (SymInts over sympy expressions, with ranges in their ShapeEnv) as IR
sizes (ir/sizes.py): sums of products of symbols with integer coefficients.

Read from the expression, never by `int()`: that would add a guard to Dynamo's finished graph and
specialize it. An expression the IR cannot hold (a floor division, a min) raises
SymbolicUnsupported, and the graph compiles per concrete shape.
"""
from __future__ import annotations

import math

import sympy
import torch

from ..ir.sizes import INF, Sym, SymbolicUnsupported, symbol
from ..ir.types import TensorType, device_name, dtype_from_torch


def _range(shape_env, name: sympy.Symbol) -> tuple:
    value_range = shape_env.var_to_range.get(name) if shape_env is not None else None
    if value_range is None:
        raise SymbolicUnsupported(f"the symbol {name} has no known range")
    low, high = value_range.lower, value_range.upper
    if not isinstance(low, sympy.Integer) or low < 0:  # an int that may be negative: not a size
        raise SymbolicUnsupported(f"the symbol {name} may be negative (range {value_range})")
    return int(low), (int(high) if isinstance(high, sympy.Integer) else INF)  # else int_oo


def _from_expr(expr, shape_env) -> Sym | int:
    if expr.is_Integer:
        return int(expr)
    if expr.is_Symbol:
        return symbol(expr.name, *_range(shape_env, expr))
    if expr.is_Add:
        return sum((_from_expr(a, shape_env) for a in expr.args), 0)
    if expr.is_Mul:
        return math.prod(_from_expr(a, shape_env) for a in expr.args)
    if expr.is_Pow and expr.exp.is_Integer and int(expr.exp) > 0:
        return math.prod([_from_expr(expr.base, shape_env)] * int(expr.exp))
    raise SymbolicUnsupported(f"the size {expr} is not a polynomial of the size symbols")


def size_of(value):
    """An int or SymInt as an IR size (other values are returned as they are)."""
    if isinstance(value, torch.SymInt):
        node = value.node
        if node.is_nested_int():
            raise SymbolicUnsupported("nested (jagged) sizes")
        return _from_expr(sympy.sympify(node.expr), node.shape_env)
    return value


def type_of(tensor: torch.Tensor) -> TensorType:
    """The IR type of a (fake) tensor whose sizes may be symbolic."""
    return TensorType(tuple(size_of(s) for s in tensor.shape), dtype_from_torch(tensor.dtype),
                      device_name(tensor.device))
