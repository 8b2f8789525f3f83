"""Expressions keep their hash once computed: the same value the dataclass computes, never pickled."""
from __future__ import annotations

import pickle

from tensorsmith.codegen.index import Affine, FloorDiv, Var
from tensorsmith.codegen.kernel import Load, Op
from tensorsmith.ir.types import F32


def _expr():
    index = (Affine.of(Var("o0", 8)) * 4 + Affine.of(FloorDiv(Affine.of(Var("i0", 16)), 4))) + 1
    load = Load("buf0", index, F32)
    return Op("add", (load, load), F32)


def test_kept_hash_is_the_dataclass_hash_of_the_fields():
    expr = _expr()
    assert hash(expr) == hash((expr.name, expr.args, expr.dtype, expr.dir))
    assert hash(expr) == hash(expr) == hash(_expr()) and expr == _expr()
    assert {expr: 1}[_expr()] == 1


def test_kept_hash_is_left_out_of_pickles():
    expr = _expr()
    hash(expr)
    copy = pickle.loads(pickle.dumps(expr))
    assert "_hash" not in copy.__dict__ and copy == expr and repr(copy) == repr(expr)
    assert "_hash" not in copy.args[0].index.__dict__
