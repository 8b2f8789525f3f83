"""Symbolic sizes (ir/sizes.py): arithmetic, questions answered only where they hold for every
value of the symbols, and the text form (types, attributes, the graph's ranges) parsing back."""
from __future__ import annotations

import itertools
import random

import pytest

from tensorsmith.ir.graph import Graph
from tensorsmith.ir.parser import parse_graph
from tensorsmith.ir.sizes import (INF, Sym, SymbolicUnsupported, evaluate, floor_divide, parse_size,
                                  provably, size_max, size_min, size_symbols, symbol)
from tensorsmith.ir.types import F32, TensorType

S, T = symbol("s0", 2), symbol("s1", 2, 64)
RANGES = {"s0": (2, INF), "s1": (2, 64)}


def _expressions():
    return [S, T, S * 12 + 1, S * T * 3 - 2, -S + 5, S * S, 768 * S, S + T, S * 4 - T]


def test_arithmetic_agrees_with_ints_at_random_values():
    rng = random.Random(0)
    for _ in range(50):
        values = {"s0": rng.randint(2, 500), "s1": rng.randint(2, 64)}
        for a, b in itertools.product(_expressions(), repeat=2):
            va, vb = evaluate(a, values), evaluate(b, values)
            assert evaluate(a + b, values) == va + vb
            assert evaluate(a - b, values) == va - vb
            assert evaluate(a * b, values) == va * vb
            assert evaluate(a * 7 - 3, values) == va * 7 - 3


def test_no_symbol_left_gives_an_int():
    assert (S * 3 - S * 3) == 0 and isinstance(S * 3 - S * 3 + 4, int)
    assert (S * 12) // S == 12 and isinstance((S * 12) // S, int)
    assert (S * T * 6) // (S * 3) == T * 2
    assert (S * 12 + 5) // 4 == S * 3 + 1 and (S * 12 + 5) % 4 == 1
    assert 0 // S == 0 and 1 % S == 1 and 0 % (S * T) == 0  # s0 >= 2
    assert floor_divide(S * T - 1, T) == S - 1 and floor_divide(S * 6 - 1, 3) == S * 2 - 1


def test_questions_are_answered_where_they_hold_for_every_value():
    assert S != 1 and S > 1 and S >= 2 and not S < 2  # s0 in [2, inf]
    assert S < S * T and S * T > S  # through the shift to lower bounds: s0*s1 - s0 >= 2
    assert T <= 64 and T < 65 and not T > 64
    assert S < 2**63 - 1  # no size reaches SIZE_LIMIT: the end of an open slice
    assert max(S, 1) is S and min(S, S + 3) is S
    assert size_max(1, S - 1) == S - 1 and size_min(S, S - 1 + 1) == S  # max() would ask S - 1 > 1
    with pytest.raises(SymbolicUnsupported):
        size_max(S, T)
    assert S == symbol("s0", 2) and hash(S) == hash(symbol("s0", 2))
    for undecided in (lambda: S == T, lambda: S < T, lambda: T > 32, lambda: S * 2 == 8):
        with pytest.raises(SymbolicUnsupported):
            undecided()
        assert provably(undecided) is False


def test_a_concrete_value_or_an_inexact_division_is_refused():
    for needs_value in (lambda: int(S), lambda: range(S), lambda: [0] * S, lambda: (S * 3) // 2,
                        lambda: S / 2, lambda: 12 // S, lambda: 2 % S, lambda: (S * T) // (S + T),
                        lambda: floor_divide(S * T + 5, T)):
        with pytest.raises(SymbolicUnsupported):
            needs_value()


def test_sizes_print_and_parse_back():
    for e in _expressions():
        text = str(e)
        assert parse_size(text, RANGES) == e and str(parse_size(text, RANGES)) == text
    with pytest.raises(ValueError, match="no declared range"):
        parse_size("s7*2", RANGES)


def test_a_symbolic_graph_prints_its_ranges_and_parses_back():
    g = Graph("f")
    x = g.add_param("x", TensorType((S, 12, T), F32))
    r = g.add("reshape", [x], {"shape": [S * 12, T]})
    g.outputs.append(g.add("exp", [r]))
    text = str(g)
    assert "sizes(s0: [2, inf], s1: [2, 64])" in text and "f32[<12*s0>,<s1>]@cpu" in text
    parsed = parse_graph(text)
    assert str(parsed) == text and size_symbols(parsed) == RANGES
    assert parsed.nodes[0].type.shape == (S * 12, T)


def test_shape_rules_keep_symbolic_sizes():
    g = Graph("f")
    x = g.add_param("x", TensorType((S, 8), F32))
    y = g.add_param("y", TensorType((S, 8), F32))
    total = g.add("add", [x, y])
    summed = g.add("reduce", [total], {"kind": "sum", "dims": [1]})
    assert total.type.shape == (S, 8) and summed.type.shape == (S,)
    cat = g.add("concat", [x, y], {"dim": 0})
    assert cat.type.shape == (S * 2, 8)
    assert isinstance(cat.type.numel, Sym) and cat.type.numel == S * 16
