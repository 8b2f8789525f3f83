"""Sizes that may be symbolic: an int, or a `Sym`, a polynomial with integer coefficients over
size symbols (Dynamo's SymInts, such as a sequence length `s0`), each with the range it may take.

A question about symbolic sizes is answered only where the answer holds for every value in range
(`s0 == 1` is False for s0 in [2, inf]); any other question, and any need for a concrete value
(`int(s0)`, `range(s0)`), raises `SymbolicUnsupported`. The graph then compiles per concrete
shape instead (compile/specialize.py): sound, never a guess. Arithmetic that leaves no symbol
gives back a plain int, so static sizes stay ints everywhere.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import UnsupportedError

INF = math.inf
# No size reaches this (2**62 elements would not fit in any memory), so a symbol without an upper
# bound is below it: `s0 < sys.maxsize`, the end of an open slice, holds.
SIZE_LIMIT = 2**62


class SymbolicUnsupported(UnsupportedError):
    """A question about symbolic sizes that has no one answer for all their values."""


@dataclass(frozen=True, eq=False)
class Sym:
    """sum(coef * product of symbols) + const, over symbols with known ranges.

    `terms` are (monomial, coef) pairs, sorted, none zero, a monomial being the names of the
    symbols multiplied, sorted (repeated for powers; () for the constant); `ranges` are
    (name, low, high) per symbol."""

    terms: tuple
    ranges: tuple

    # -- construction ---------------------------------------------------------------------------
    @staticmethod
    def _make(coefs: dict, ranges: dict) -> "Sym | int":
        terms = tuple(sorted((m, c) for m, c in coefs.items() if c != 0))
        if not any(m for m, _ in terms):
            return terms[0][1] if terms else 0
        names = {name for m, _ in terms for name in m}
        return Sym(terms, tuple(sorted((n, *ranges[n]) for n in names)))

    def _coefs(self) -> dict:
        return dict(self.terms)

    def _ranges(self) -> dict:
        return {name: (low, high) for name, low, high in self.ranges}

    # -- arithmetic -----------------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        coefs, ranges = self._coefs(), self._ranges()
        for m, c in _terms_of(other):
            coefs[m] = coefs.get(m, 0) + c
        if isinstance(other, Sym):
            ranges.update(other._ranges())
        return Sym._make(coefs, ranges)

    __radd__ = __add__

    def __neg__(self):
        return Sym._make({m: -c for m, c in self.terms}, self._ranges())

    def __pos__(self):
        return self

    def __sub__(self, other):
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        coefs, ranges = {}, self._ranges()
        if isinstance(other, Sym):
            ranges.update(other._ranges())
        for m1, c1 in self.terms:
            for m2, c2 in _terms_of(other):
                m = tuple(sorted(m1 + m2))
                coefs[m] = coefs.get(m, 0) + c1 * c2
        return Sym._make(coefs, ranges)

    __rmul__ = __mul__

    def __floordiv__(self, other):
        """Exact where every symbolic coefficient divides by `other`, or `other` divides this size
        exactly (numel // numel, numel // a dimension)."""
        if isinstance(other, Sym):
            quotient = _exact_quotient(self, other)
            if quotient is None:
                raise SymbolicUnsupported(f"{self} // {other} is not exact")
            return quotient
        if isinstance(other, bool) or not isinstance(other, int):
            return NotImplemented
        if other > 0 and all(c % other == 0 for m, c in self.terms if m):
            return Sym._make({m: c // other for m, c in self.terms}, self._ranges())
        raise SymbolicUnsupported(f"{self} // {other} depends on the sizes")

    def __rfloordiv__(self, other):
        if isinstance(other, int) and provably(lambda: 0 <= other < self):
            return 0
        raise SymbolicUnsupported(f"{other} // {self} depends on the sizes")

    def __mod__(self, other):
        if isinstance(other, bool) or not isinstance(other, int):
            if isinstance(other, Sym) and _exact_quotient(self, other) is not None:
                return 0
            raise SymbolicUnsupported(f"{self} % {other} depends on the sizes")
        if other > 0 and all(c % other == 0 for m, c in self.terms if m):
            return self.constant % other
        raise SymbolicUnsupported(f"{self} % {other} depends on the sizes")

    def __rmod__(self, other):
        if isinstance(other, int) and provably(lambda: 0 <= other < self):
            return other
        raise SymbolicUnsupported(f"{other} % {self} depends on the sizes")

    def __truediv__(self, other):
        raise SymbolicUnsupported(f"{self} / {other} is not an integer size")

    __rtruediv__ = __truediv__

    # -- questions ------------------------------------------------------------------------------
    def bounds(self) -> tuple:
        """(low, high) over every value of the symbols in their ranges (high may be INF): interval
        arithmetic per term, tightened by the polynomial shifted to its symbols' lower bounds
        (s = low + t, t >= 0: all of its coefficients of one sign bound it by its constant, which
        proves s0 < s0*s1 for s1 >= 2)."""
        ranges = {n: (low, min(high, SIZE_LIMIT)) for n, (low, high) in self._ranges().items()}
        low = high = 0
        for m, c in self.terms:
            lo = math.prod(ranges[n][0] for n in m)
            his = [ranges[n][1] for n in m]
            hi = 0 if 0 in his else (INF if INF in his else math.prod(his))
            low, high = (low + c * lo, high + c * hi) if c > 0 else (low + c * hi, high + c * lo)
        shifted = self._shifted_to_lows()
        constant = shifted.pop((), 0)
        if all(c >= 0 for c in shifted.values()):
            low = max(low, constant)
        if all(c <= 0 for c in shifted.values()):
            high = min(high, constant)
        return low, high

    def _shifted_to_lows(self) -> dict:
        """The coefficients of this polynomial in t, where each symbol s = low(s) + t(s)."""
        ranges = self._ranges()
        coefs: dict = {}
        for m, c in self.terms:
            expanded = {(): c}
            for name in m:
                low = ranges[name][0]
                step: dict = {}
                for mono, k in expanded.items():
                    grown = tuple(sorted(mono + (name,)))
                    step[grown] = step.get(grown, 0) + k
                    if low:
                        step[mono] = step.get(mono, 0) + k * low
                expanded = step
            for mono, k in expanded.items():
                coefs[mono] = coefs.get(mono, 0) + k
        return coefs

    def __eq__(self, other):
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        difference = self - other
        if isinstance(difference, int):
            return difference == 0
        low, high = difference.bounds()
        if low > 0 or high < 0:
            return False
        raise SymbolicUnsupported(f"whether {self} == {other} depends on the sizes")

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self):
        return hash(self.terms)

    def _sign_of_difference(self, other, strict: bool, what: str) -> bool:
        """Whether self - other < 0 (strict) or <= 0, for every value."""
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        difference = self - other
        if isinstance(difference, int):
            return difference < 0 if strict else difference <= 0
        low, high = difference.bounds()
        if (high < 0) if strict else (high <= 0):
            return True
        if (low >= 0) if strict else (low > 0):
            return False
        raise SymbolicUnsupported(f"whether {self} {what} {other} depends on the sizes")

    def __lt__(self, other):
        return self._sign_of_difference(other, True, "<")

    def __le__(self, other):
        return self._sign_of_difference(other, False, "<=")

    def __gt__(self, other):
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        return (-self)._sign_of_difference(-other, True, ">")

    def __ge__(self, other):
        if isinstance(other, bool) or not isinstance(other, (int, Sym)):
            return NotImplemented
        return (-self)._sign_of_difference(-other, False, ">=")

    def __bool__(self):
        return self != 0

    def __int__(self):
        raise SymbolicUnsupported(f"a concrete value of {self} is needed")

    __index__ = __int__
    __float__ = __int__

    @property
    def constant(self) -> int:
        return dict(self.terms).get((), 0)

    @property
    def name(self) -> str | None:
        """The symbol's name where this size is exactly one symbol, else None."""
        (first, _, _), *_ = self.ranges
        return first if self.terms == (((first,), 1),) else None

    def evaluate(self, values: dict) -> int:
        return sum(c * math.prod(values[n] for n in m) for m, c in self.terms)

    def __str__(self) -> str:
        text = ""
        for m, c in sorted(self.terms, key=lambda t: (not t[0], t[0])):  # the constant last
            factors = ([str(abs(c))] if abs(c) != 1 or not m else []) + list(m)
            sign = "-" if c < 0 else ("+" if text else "")
            text += sign + "*".join(factors)
        return text

    def __repr__(self) -> str:
        return f"Sym({self})"


def _terms_of(size) -> tuple:
    return size.terms if isinstance(size, Sym) else (((), size),)


def _exact_quotient(numerator: Sym, denominator: Sym):
    """q with numerator == q * denominator exactly, for a denominator of one term (c * s0 * ...)
    or a numerator that is an int multiple of the denominator; else None."""
    num, den = numerator._coefs(), denominator._coefs()
    if len(den) == 1:
        (dm, dc), = den.items()
        quotient = {}
        for m, c in num.items():
            rest = list(m)
            for name in dm:
                if name not in rest:
                    return None
                rest.remove(name)
            if c % dc:
                return None
            quotient[tuple(rest)] = c // dc
        return Sym._make(quotient, numerator._ranges())
    ratio = None
    if set(num) != set(den):
        return None
    for m, c in den.items():
        if num[m] % c or (ratio is not None and num[m] // c != ratio):
            return None
        ratio = num[m] // c
    return ratio


def symbol(name: str, low: int = 0, high=INF) -> Sym:
    """The size symbol `name`, taking values in [low, high]."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or low < 0 or high < low:
        raise ValueError(f"bad size symbol {name!r} in [{low}, {high}]")
    return Sym((((name,), 1),), ((name, low, high),))


def provably(question) -> bool:
    """`question()` where its answer holds for every value of the symbols; False where it depends
    on them. For decisions that may say no: an optimization, a simplification, a fast path."""
    try:
        return bool(question())
    except SymbolicUnsupported:
        return False


def floor_divide(a, d):
    """a // d for sizes that may be symbolic (d >= 1): exact where d divides a, and where it
    divides a but for a constant c with -d <= c < d (so (s0*s1 - 1) // s1 is s0 - 1); else
    SymbolicUnsupported."""
    if isinstance(a, int) and isinstance(d, int):
        return a // d
    constant = a.constant if isinstance(a, Sym) else a
    rest = a - constant
    quotient = rest // d if isinstance(rest, Sym) else (0 if rest == 0 else None)
    if quotient is None:
        raise SymbolicUnsupported(f"({a}) // ({d}) depends on the sizes")
    if provably(lambda: 0 <= constant < d):
        return quotient
    if provably(lambda: -d <= constant < 0):
        return quotient - 1
    raise SymbolicUnsupported(f"({a}) // ({d}) depends on the sizes")


def size_max(a, b):
    """max(a, b) where one is >= the other for every value of the symbols (unlike `max`, which
    asks whether b > a and cannot answer where they may be equal)."""
    if provably(lambda: a >= b):
        return a
    if provably(lambda: b >= a):
        return b
    raise SymbolicUnsupported(f"max({a}, {b}) depends on the sizes")


def size_min(a, b):
    """min(a, b) where one is <= the other for every value of the symbols."""
    if provably(lambda: a <= b):
        return a
    if provably(lambda: b <= a):
        return b
    raise SymbolicUnsupported(f"min({a}, {b}) depends on the sizes")


def is_symbolic(value) -> bool:
    """Whether a size, a shape or a nested list of sizes has a symbol in it."""
    if isinstance(value, Sym):
        return True
    if isinstance(value, (list, tuple)):
        return any(is_symbolic(v) for v in value)
    if isinstance(value, dict):
        return any(is_symbolic(v) for v in value.values())
    return False


def evaluate(value, values: dict):
    """`value` (a size, or lists/tuples/dicts holding sizes) with each symbol given its value."""
    if isinstance(value, Sym):
        return value.evaluate(values)
    if isinstance(value, list):
        return [evaluate(v, values) for v in value]
    if isinstance(value, tuple):
        return tuple(evaluate(v, values) for v in value)
    if isinstance(value, dict):
        return {k: evaluate(v, values) for k, v in value.items()}
    return value


def ranges_of(values) -> dict:
    """name -> (low, high) of every symbol in `values` (sizes, shapes, nested lists)."""
    found = {}
    stack = [values]
    while stack:
        value = stack.pop()
        if isinstance(value, Sym):
            found.update(value._ranges())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
    return found


def size_symbols(graph) -> dict:
    """name -> (low, high) of every size symbol in an IR graph's types and attributes; empty when
    all its sizes are static."""
    values = [p.type.shape for p in graph.params]
    for node in graph.nodes:
        values.append(node.attrs)
        values.extend(t.shape for t in getattr(node.type, "elements", (node.type,)))
    return ranges_of(values)


_TERM = re.compile(r"([+-]?)((?:[0-9]+|[A-Za-z_][A-Za-z0-9_]*)(?:\*(?:[0-9]+|[A-Za-z_][A-Za-z0-9_]*))*)")


def parse_size(text: str, ranges: dict):
    """The size `str(size)` printed, its symbols taking their ranges from `ranges`."""
    total, pos = 0, 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if match is None or match.end() == pos or (pos and not match.group(1)):
            raise ValueError(f"bad size expression {text!r}")
        term = -1 if match.group(1) == "-" else 1
        for factor in match.group(2).split("*"):
            if factor.isdigit():
                term = term * int(factor)
            elif factor in ranges:
                term = term * symbol(factor, *ranges[factor])
            else:
                raise ValueError(f"size symbol {factor!r} in {text!r} has no declared range")
        total, pos = total + term, match.end()
    return total
