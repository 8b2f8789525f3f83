"""Index expressions: affine combinations of loop variables, with floor-div/mod and indirect terms.

Views (reshape, transpose, broadcast, slice, ...) become index maps built from these instead of
copies. Expressions are normalized (terms sorted, constants folded, div/mod simplified using each
variable's range, d * (x // d) + x % d summed back to x), so two equal maps compare equal
structurally. Coefficients, constants, extents and divisors may be symbolic sizes (ir/sizes.py); a
simplification is made only where it holds for every value of the symbols.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir.sizes import Sym, SymbolicUnsupported, floor_divide, provably


def keeps_its_hash(cls):
    """Class decorator for a frozen dataclass of nested fields: its hash (the same value the
    dataclass computes) is kept once computed. Expression trees are looked up in the emitters' and
    the scheduler's tables at every subexpression, and each lookup would hash the whole subtree
    again. The kept hash stays out of pickles (string hashes differ between processes)."""
    fields_hash = cls.__hash__

    def __hash__(self):
        kept = self.__dict__.get("_hash")
        if kept is None:
            kept = fields_hash(self)
            object.__setattr__(self, "_hash", kept)
        return kept

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    cls.__hash__ = __hash__
    cls.__getstate__ = __getstate__
    return cls


def order_key(atom) -> str:
    """The atom's place in an Affine's sorted terms: its repr, kept on the (immutable) atom once
    computed, since every addition sorts the terms again and a nested dataclass's repr is slow."""
    kept = atom.__dict__.get("_order")
    if kept is None:
        kept = repr(atom)
        object.__setattr__(atom, "_order", kept)
    return kept


@dataclass(frozen=True)
class Var:
    name: str
    extent: int  # the variable runs over [0, extent)


@keeps_its_hash
@dataclass(frozen=True)
class FloorDiv:
    arg: "Affine"
    divisor: int


@keeps_its_hash
@dataclass(frozen=True)
class Mod:
    arg: "Affine"
    divisor: int


@keeps_its_hash
@dataclass(frozen=True)
class Indirect:
    """An index read from data (take/gather): `value` is a kernel value expression of integer type,
    `extent` the size of the dimension it indexes (the value is in [0, extent))."""
    value: object
    extent: int


Atom = Var | FloorDiv | Mod | Indirect


@keeps_its_hash
@dataclass(frozen=True)
class Affine:
    """const + sum(coef * atom)."""

    terms: tuple[tuple[Atom, int], ...] = ()
    const: int = 0

    # -- construction ---------------------------------------------------------------------------
    @staticmethod
    def of(value) -> "Affine":
        if isinstance(value, Affine):
            return value
        if isinstance(value, (int, Sym)):
            return Affine((), value)
        return Affine(((value, 1),), 0)

    def __add__(self, other) -> "Affine":
        other = Affine.of(other)
        # Terms are kept normalized (sorted, one per atom, none zero), so adding a constant, or
        # to one, keeps the other side's terms as they are.
        if not other.terms:
            return Affine(self.terms, self.const + other.const)
        if not self.terms:
            return Affine(other.terms, self.const + other.const)
        coefs: dict = dict(self.terms)
        for atom, coef in other.terms:
            coefs[atom] = coefs.get(atom, 0) + coef
        whole = _recombined(coefs)
        terms = tuple(sorted(((a, c) for a, c in coefs.items() if c != 0), key=lambda t: order_key(t[0])))
        result = Affine(terms, self.const + other.const)
        return result if whole is None else result + whole

    __radd__ = __add__

    def __mul__(self, k: int) -> "Affine":
        if k == 0:
            return Affine()
        return Affine(tuple((a, c * k) for a, c in self.terms), self.const * k)

    __rmul__ = __mul__

    def __sub__(self, other) -> "Affine":
        return self + Affine.of(other) * -1

    # -- analysis -------------------------------------------------------------------------------
    @property
    def is_const(self) -> bool:
        return not self.terms

    def bounds(self) -> tuple[int, int]:
        """Inclusive [low, high] over all variable values."""
        low = high = self.const
        for atom, coef in self.terms:
            lo, hi = _atom_bounds(atom)
            a, b = coef * lo, coef * hi
            low += min(a, b)
            high += max(a, b)
        return low, high

    def floordiv(self, d) -> "Affine":
        if provably(lambda: d == 1):
            return self
        if self.is_const:
            return Affine((), _divmod(self.const, d)[0])
        # Split off the terms divisible by d; if the rest stays within [0, d), it vanishes.
        quotient, remainder = _divmod(self.const, d)
        whole = Affine(tuple((a, c // d) for a, c in self.terms if _divides(d, c)), quotient)
        rest = Affine(tuple((a, c) for a, c in self.terms if not _divides(d, c)), remainder)
        if _within(rest, d):
            return whole
        if _within(self, d):
            return Affine()
        return Affine.of(FloorDiv(self, d))

    def mod(self, d) -> "Affine":
        if provably(lambda: d == 1):
            return Affine()
        if self.is_const:
            return Affine((), _divmod(self.const, d)[1])
        rest = Affine(tuple((a, c) for a, c in self.terms if not _divides(d, c)),
                      _divmod(self.const, d)[1])
        if _within(rest, d):
            return rest
        return Affine.of(Mod(rest, d))


def _recombined(coefs: dict) -> "Affine | None":
    """Where `coefs` holds k*d * (x // d) and k * (x % d), the two removed from it and k*x returned
    (x = d * (x // d) + x % d for every integer x, floors included): a reshape into groups and back
    (GroupNorm's statistics, a split of heads undone) then indexes by x itself. A modulo keeps its
    argument reduced (terms and constant less their multiples of d), so it pairs with the floor-div
    of any argument equal to its own up to multiples of d. None where there is no such pair."""
    mods = [a for a in coefs if isinstance(a, Mod) and coefs[a] != 0]
    if not mods:
        return None
    divs = [a for a in coefs if isinstance(a, FloorDiv) and coefs[a] != 0]
    whole = None
    for mod in mods:
        k = coefs[mod]
        for div in divs:
            if div in coefs and provably(lambda: div.divisor == mod.divisor) and \
                    provably(lambda: coefs[div] == k * mod.divisor) and \
                    _congruent(div.arg, mod.arg, mod.divisor):
                del coefs[mod], coefs[div]
                whole = (whole or Affine()) + div.arg * k
                break
    return whole


def _congruent(a: "Affine", b: "Affine", d) -> bool:
    """Whether a - b is d times an integer for every value of the variables (each coefficient and
    the constant of the difference divisible by d)."""
    difference = a - b
    return _divides(d, difference.const) and all(_divides(d, c) for _, c in difference.terms)


def _divides(d, c) -> bool:
    """Whether d divides c for every value of the symbols in them."""
    return provably(lambda: c % d == 0)


def _divmod(c, d) -> tuple:
    """(c // d, c % d) for constants that may be symbolic (SymbolicUnsupported where that is not
    one expression for every value)."""
    if isinstance(c, int) and isinstance(d, int):
        return divmod(c, d)
    if provably(lambda: 0 <= c < d):
        return 0, c
    if _divides(d, c):
        return c // d, 0
    raise SymbolicUnsupported(f"({c}) // ({d}) depends on the sizes")


def _within(index: "Affine", d) -> bool:
    """Whether 0 <= index < d for every value of the variables (and of the symbols)."""
    def check():
        low, high = index.bounds()
        return 0 <= low and high < d
    return provably(check)


def _atom_bounds(atom) -> tuple[int, int]:
    if isinstance(atom, (Var, Indirect)):
        return 0, max(atom.extent - 1, 0)
    low, high = atom.arg.bounds()
    if isinstance(atom, FloorDiv):
        return floor_divide(low, atom.divisor), floor_divide(high, atom.divisor)
    return 0, atom.divisor - 1


def linearize(index: list[Affine], shape) -> Affine:
    """Row-major flat offset of a multi-index into a contiguous tensor of `shape`."""
    flat, stride = Affine(), 1
    for i, size in reversed(list(zip(index, shape))):
        if size != 1:
            flat = flat + Affine.of(i) * stride
        stride *= size
    return flat


def delinearize(flat: Affine, shape) -> list[Affine]:
    index, stride = [], 1
    for size in reversed(shape):
        index.append(Affine() if size == 1 else flat.floordiv(stride).mod(size))
        stride *= size
    return index[::-1]


def reshape_index(index: list[Affine], out_shape, in_shape) -> list[Affine]:
    """The input multi-index that a reshape's output `index` reads, group by group where the shapes
    split or merge dimensions, so common reshapes need no division."""
    result, i, j = [], 0, 0
    out_shape, in_shape = list(out_shape), list(in_shape)
    while i < len(out_shape) or j < len(in_shape):
        gi, gj = i, j
        out_size, in_size = 1, 1
        # Grow both groups until their sizes agree (size-1 dims join the current group).
        while True:
            if out_size == in_size and (i > gi or j > gj) and not (
                    i < len(out_shape) and out_shape[i] == 1) and not (
                    j < len(in_shape) and in_shape[j] == 1):
                break
            if i < len(out_shape) and (out_size <= in_size or j >= len(in_shape)):
                out_size *= out_shape[i]
                i += 1
            elif j < len(in_shape):
                in_size *= in_shape[j]
                j += 1
            else:
                break
        if out_size != in_size or out_size == 0:  # fall back to the whole flat index
            flat = linearize(index, out_shape)
            return delinearize(flat, in_shape)
        result += delinearize(linearize(index[gi:i], out_shape[gi:i]), in_shape[gj:j])
    return result
