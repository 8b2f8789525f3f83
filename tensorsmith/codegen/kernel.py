"""Kernel IR: loops over an index space, with value expressions, reductions and stores.

A Kernel runs its `outer` loops in parallel; for each outer point it runs its stages in order.
A Reduce stage loops over `inner` sizes and leaves one value (a Local) per outer point; a Store
stage loops over `inner` sizes and writes a buffer. A plain pointwise kernel is one Store whose
inner loop is the last dimension; softmax is Reduce(max), Reduce(sum), Store over one row.

Value expressions are frozen dataclasses, so equal subexpressions hash equal (the emitter CSEs).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.types import DType
from .index import Affine, Var, keeps_its_hash


@keeps_its_hash
@dataclass(frozen=True)
class Load:
    buffer: str
    index: Affine  # the flat element offset into the (contiguous) buffer
    dtype: DType


@dataclass(frozen=True)
class Const:
    value: float | int | bool
    dtype: DType


@keeps_its_hash
@dataclass(frozen=True)
class IndexValue:
    """An index expression used as a value (iota)."""
    index: Affine
    dtype: DType


@keeps_its_hash
@dataclass(frozen=True)
class Op:
    """An IR elementwise op (`name` as in ir/ops.py, "compare" with `dir`, "select", "convert"), or
    "guarded_select": a select whose untaken branch may index out of range (pad, concat)."""
    name: str
    args: tuple
    dtype: DType
    dir: str | None = None


@dataclass(frozen=True)
class Local:
    """The value a Reduce stage left for the current outer point."""
    name: str
    dtype: DType


Expr = Load | Const | IndexValue | Op | Local


@dataclass
class Reduce:
    name: str  # the Local it defines
    kind: str  # sum, prod, max, min, any, all, argmax, argmin
    inner: list[Var]
    value: Expr
    dtype: DType


@dataclass
class Store:
    buffer: str
    inner: list[Var]
    index: Affine  # flat element offset written
    value: Expr


@dataclass
class Kernel:
    name: str
    outer: list[Var]
    stages: list = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)  # buffers read
    outputs: list[str] = field(default_factory=list)  # buffers written
    sources: list[str] = field(default_factory=list)  # the model source lines it computes
    lanes: bool = False  # vectorize across the last outer variable (reductions over leading dims)

    @property
    def work(self) -> int:
        """Element visits in one call, for the parallelism threshold."""
        outer = 1
        for v in self.outer:
            outer *= v.extent
        inner = sum(_prod(v.extent for v in s.inner) for s in self.stages) or 1
        return outer * inner


def _prod(values) -> int:
    result = 1
    for v in values:
        result *= v
    return result
