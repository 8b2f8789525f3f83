"""Index expressions (codegen/index.py): a floor-div and a modulo of one argument that sum back to it
(d * (x // d) + x % d) become the argument itself, and the simplified index is the same number for
every value of the loop variables."""
from __future__ import annotations

import itertools

from codegen_cases import compare, graph
from hypothesis import given, settings
from hypothesis import strategies as st

from tensorsmith.codegen.index import Affine, FloorDiv, Mod, Var
from tensorsmith.codegen.kernel import IndexValue, Load, Op, Reduce
from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.passes.fuse import schedule


def _value(index: Affine, at: dict) -> int:
    """The index's number with each loop variable at `at[name]` (Python's floor division)."""
    total = index.const
    for atom, coef in index.terms:
        if isinstance(atom, Var):
            total += coef * at[atom.name]
        elif isinstance(atom, FloorDiv):
            total += coef * (_value(atom.arg, at) // atom.divisor)
        else:
            assert isinstance(atom, Mod)
            total += coef * (_value(atom.arg, at) % atom.divisor)
    return total


def _divisions(index: Affine) -> list:
    return [a for a, _ in index.terms if isinstance(a, (FloorDiv, Mod))]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40), st.integers(-50, 50), st.integers(1, 3), st.integers(2, 12),
       st.integers(-3, 3).filter(bool), st.integers(-4, 4))
def test_a_split_and_its_remainder_sum_back_to_their_argument(extent, offset, scale, d, k, other):
    i, j = Var("i", extent), Var("j", 5)
    x = Affine.of(i) * scale + offset
    index = x.floordiv(d) * (k * d) + x.mod(d) * k + Affine.of(j) * other
    expected = x * k + Affine.of(j) * other
    assert index == expected and not _divisions(index)
    for a, b in itertools.product(range(extent), range(5)):
        assert _value(index, {"i": a, "j": b}) == k * (scale * a + offset) + other * b


def test_a_remainder_with_another_coefficient_stays():
    i = Var("i", 64)
    x = Affine.of(i)
    index = x.floordiv(16) * 16 + x.mod(16) * 2
    assert len(_divisions(index)) == 2
    assert all(_value(index, {"i": a}) == 16 * (a // 16) + 2 * (a % 16) for a in range(64))


def _reduce_divisions(stage: Reduce) -> list:
    found = []

    def walk(expr):
        if isinstance(expr, Op):
            for a in expr.args:
                walk(a)
        elif isinstance(expr, (Load, IndexValue)):
            found.extend(_divisions(expr.index))

    walk(stage.value)
    return found


def test_group_statistics_read_each_group_without_dividing():
    """GroupNorm's mean: channels reshaped into groups and reduced over each group's channels and
    pixels, read as one contiguous run per group."""
    ir_graph = graph("""\
        graph @group_mean(%x: f32[2,8,4,4]@cpu) {
          %0 = reshape(%x) {shape=[2,2,4,16]} : f32[2,2,4,16]@cpu
          %1 = reshape(%0) {shape=[2,2,64]} : f32[2,2,64]@cpu
          %2 = reduce(%1) {kind="sum", dims=[2]} : f32[2,2]@cpu
          return %2
        }
    """)
    kernels = [s.kernel for s in schedule(ir_graph).steps if isinstance(s, KernelStep)]
    reduces = [stage for k in kernels for stage in k.stages if isinstance(stage, Reduce)]
    assert reduces and not any(_reduce_divisions(r) for r in reduces)
    compare(ir_graph)
