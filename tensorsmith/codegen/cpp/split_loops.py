"""A store's inner loop split at a divisor: i = c*a + b, where its indices read i // c and i % c.

A concatenation along the last dimension (the gradient of q, k and v split from one projection) or
a head transpose reads its inputs at `8192 * ((i // 64) % 4) + i % 64` and chooses among them by
`i < 256`: each element costs integer divisions and a chain of selects, and GCC vectorizes none of
it. Looping over a (c-sized runs) and then b (within a run), Affine's own floor-div and mod rules
turn those reads into plain `b` plus terms of `a`, and a choice at multiples of c depends on `a`
only (GCC moves it out of the inner loop), so the inner loop copies contiguous runs.

A stage is split only where afterwards no division or modulo reads its inner variable; anything
else (an index read from data, a symbolic size, a divisor that does not divide the extent) keeps
the loop as it was. C++ only: Triton's blocks are not loops over one variable.
"""
from __future__ import annotations

import dataclasses
import math

from ...ir.types import BOOL
from ..index import Affine, FloorDiv, Indirect, Mod, Var
from ..kernel import Const, IndexValue, Kernel, Load, Op, Store


MIN_RUN = 8  # the shortest inner loop worth a split: one AVX2 vector of floats


class _Unsplittable(Exception):
    """The stage reads an index from data, or compares an index otherwise than with a constant
    edge: left as it is."""


def split_inner_loops(kernel: Kernel) -> Kernel:
    """`kernel` with each Store stage whose one inner loop can be split so split (a copy where any
    is; the kernel itself otherwise)."""
    if kernel.lanes:
        return kernel
    stages = [_split(stage) if isinstance(stage, Store) else stage for stage in kernel.stages]
    if all(new is old for new, old in zip(stages, kernel.stages)):
        return kernel
    return dataclasses.replace(kernel, stages=stages)


def _split(stage: Store) -> Store:
    if len(stage.inner) != 1 or not isinstance(stage.inner[0].extent, int):
        return stage
    (var,) = stage.inner
    try:
        divisors = _divisors_of(var, [stage.index], stage.value)
        bounds = _bounds_of(var, stage.value)
    except _Unsplittable:
        return stage
    if bounds:
        divisors.add(math.gcd(var.extent, *bounds))
    for c in sorted(divisors, reverse=True):
        if MIN_RUN <= c < var.extent and var.extent % c == 0:
            split = _try(stage, var, c)
            if split is not None:
                return split
    return stage


def _try(stage: Store, var: Var, c: int) -> Store | None:
    """The stage over (a, b) for i = c*a + b, or None where a division, a modulo or a comparison
    still reads b."""
    high, low = Var(f"{var.name}_hi", var.extent // c), Var(f"{var.name}_lo", c)
    replacement = Affine.of(high) * c + Affine.of(low)
    try:
        index = _substitute(stage.index, var, replacement)
        value = _substitute_value(stage.value, var, replacement, low, c)
        if _divisors_of(low, [index], value) or _bounds_of(low, value):
            return None
    except _Unsplittable:
        return None
    return Store(stage.buffer, [high, low], index, value)


def _divisors_of(var: Var, indices: list[Affine], value) -> set[int]:
    """The constant divisors of the floor-divs and mods whose argument has `var` as a term."""
    found: set[int] = set()
    for index in [*indices, *_indices_in(value)]:
        _collect(index, var, found)
    return found


def _bounds_of(var: Var, expr) -> list[int]:
    """Where comparisons of an index with a constant change with `var` (a concatenation's or a
    pad's edges: with `var`'s coefficient 1, the constant less the index's other terms, so their
    constant and coefficients); _Unsplittable where a comparison reads `var` otherwise."""
    if not isinstance(expr, Op):
        return []
    found = [b for a in expr.args for b in _bounds_of(var, a)]
    if expr.name == "compare":
        x, bound = expr.args
        if isinstance(x, IndexValue) and any(a == var for a, _ in x.index.terms):
            terms = dict(x.index.terms)
            others = [c for a, c in x.index.terms if a != var]
            if expr.dir not in ("LT", "GE") or not isinstance(bound, Const) or terms[var] != 1 or \
                    not all(isinstance(n, int) and not isinstance(n, bool)
                            for n in [bound.value, x.index.const, *others]):
                raise _Unsplittable
            found += [bound.value - x.index.const, *others]
    return found


def _collect(index: Affine, var: Var, found: set[int]) -> None:
    for atom, _ in index.terms:
        if isinstance(atom, Indirect):
            raise _Unsplittable
        if isinstance(atom, (FloorDiv, Mod)):
            if any(a == var for a, _ in atom.arg.terms):
                if not isinstance(atom.divisor, int):
                    raise _Unsplittable
                found.add(atom.divisor)
            _collect(atom.arg, var, found)


def _indices_in(expr):
    if isinstance(expr, Op):
        for a in expr.args:
            yield from _indices_in(a)
    elif isinstance(expr, (Load, IndexValue)):
        yield expr.index


def _substitute(index: Affine, var: Var, replacement: Affine) -> Affine:
    """`index` with `var` replaced, its floor-divs and mods simplified again."""
    result = Affine((), index.const)
    for atom, coef in index.terms:
        if atom == var:
            term = replacement
        elif isinstance(atom, FloorDiv):
            term = _substitute(atom.arg, var, replacement).floordiv(atom.divisor)
        elif isinstance(atom, Mod):
            term = _substitute(atom.arg, var, replacement).mod(atom.divisor)
        elif isinstance(atom, Indirect):
            raise _Unsplittable
        else:
            term = Affine.of(atom)
        result = result + term * coef
    return result


def _substitute_value(expr, var: Var, replacement: Affine, low: Var, c: int):
    if isinstance(expr, Load):
        return Load(expr.buffer, _substitute(expr.index, var, replacement), expr.dtype)
    if isinstance(expr, IndexValue):
        return IndexValue(_substitute(expr.index, var, replacement), expr.dtype)
    if isinstance(expr, Op):
        args = tuple(_substitute_value(a, var, replacement, low, c) for a in expr.args)
        return _compare_runs(Op(expr.name, args, expr.dtype, expr.dir), low, c)
    return expr


def _compare_runs(op: Op, low: Var, c: int) -> Op:
    """`x < K` as `x // c < K // c` (and `>=` alike) where c divides K, both hold for the same x:
    a concatenation's choice at a multiple of c then no longer reads `low`."""
    if op.name != "compare" or op.dir not in ("LT", "GE"):
        return op
    x, bound = op.args
    if not (isinstance(x, IndexValue) and isinstance(bound, Const) and isinstance(bound.value, int)
            and not isinstance(bound.value, bool) and bound.value % c == 0):
        return op
    if not any(a == low for a, _ in x.index.terms):
        return op
    runs = x.index.floordiv(c)
    if any(a == low or isinstance(a, (FloorDiv, Mod)) for a, _ in runs.terms):
        return op
    return Op("compare", (IndexValue(runs, x.dtype), Const(bound.value // c, bound.dtype)), BOOL, op.dir)
