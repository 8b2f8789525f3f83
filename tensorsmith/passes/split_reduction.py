"""Split reductions over many rows into few columns in two, for GPUs.

A bias gradient sums a (tokens, features) matrix over its rows: one program per block of columns
leaves most of a GPU's SMs idle (a few hundred columns give only about a hundred programs). Reshaped
to (S, rows / S, columns), summed over the middle dim into S partial rows and then over those, the
first kernel has S times the programs and the second reads only the S partial rows.

Only float32 sums and max/min of any type are split: max and min are exact in any order, and a
float32 sum already runs in another order than eager's (a 16-bit one would round each partial).
Reductions sharing a domain get the same S, so they still fuse into one kernel.
"""
from __future__ import annotations

import math

from ..ir.graph import Graph, Node
from ..ir.types import F32
from . import dce
from .rewrite import apply_rules, new_node

MIN_ROWS = 1024  # fewer rows than this reduce fast enough in one pass
MAX_COLUMNS = 8192  # more columns than this already give the GPU enough programs
TARGET_ELEMENTS = 32768  # S x columns to aim for: ~1000 programs of 32 columns
MIN_ROWS_PER_SPLIT = 128
MAX_SPLITS = 128


def splits_for(rows: int, columns: int) -> int:
    """S: a power of two dividing `rows`, enough to give the GPU work, at least 128 rows each."""
    s = 1
    while s < MAX_SPLITS and s * columns < TARGET_ELEMENTS and rows % (2 * s) == 0 and \
            rows // (2 * s) >= MIN_ROWS_PER_SPLIT:
        s *= 2
    return s


def _split(node: Node) -> Node | None:
    if node.op != "reduce":
        return None
    kind, x = node.attrs["kind"], node.inputs[0]
    if not (kind in ("max", "min") or (kind == "sum" and x.type.dtype == F32 == node.type.dtype)):
        return None
    shape, dims = list(x.type.shape), sorted(node.attrs["dims"])
    if dims != list(range(len(dims))) or not dims or len(dims) == len(shape):
        return None  # only leading dims, with some kept (trailing, contiguous)
    rows, columns = math.prod(shape[:len(dims)]), math.prod(shape[len(dims):])
    if rows < MIN_ROWS or columns > MAX_COLUMNS:
        return None
    s = splits_for(rows, columns)
    if s < 2:
        return None
    grouped = new_node("reshape", [x], {"shape": [s, rows // s, *shape[len(dims):]]}, node)
    partial = new_node("reduce", [grouped], {"kind": kind, "dims": [1]}, node)
    return new_node("reduce", [partial], {"kind": kind, "dims": [0]}, node)


def run(graph: Graph) -> bool:
    changed = apply_rules(graph, [_split], max_rounds=1)
    if changed:
        dce.run(graph)
    return changed
