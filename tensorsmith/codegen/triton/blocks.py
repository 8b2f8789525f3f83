"""Block sizes and launch grids for Triton kernels: a fixed heuristic, no autotuning.

A kernel's outer points (X of them, flattened) are split into blocks of XBLOCK; its inner elements
(R, flattened) into blocks of RBLOCK. Each program computes an [XBLOCK, RBLOCK] tile.

- Pointwise (no reduction): tiles of about 1024 elements, RBLOCK up to 1024 along the contiguous
  last dimension; a 2-D grid (outer blocks, inner blocks).
- Row reductions (the inner elements are the contiguous ones): persistent, the whole row in one tile,
  when it has at most PERSISTENT_MAX elements (softmax and layer norm read their row once and keep
  it in registers across stages); XBLOCK then packs short rows up to a 4096-element tile while
  leaving at least ~2 programs per SM. Longer rows loop over RBLOCK = 2048 chunks, one row per
  program.
- Reductions over leading dims (`kernel.lanes`: the kept outer dimension is the contiguous one):
  XBLOCK between 8 (one 32-byte sector of float32) and 32 along it, the smallest that still leaves
  ~2 programs per SM (bias gradients keep only a few hundred columns), looping over the reduced
  rows in chunks that fill a 4096-element tile.

num_warps grows with the tile: one warp per 256 elements, between 2 and 16.

Symbolic sizes (ir/sizes.py): what correctness rests on holds for every value (a row is kept whole
only where its largest size fits the tile); what only speed rests on plans for a large size (a
symbol's upper bound, capped at LARGE). The grid is then Python text over the size symbols,
evaluated at each launch; a pointwise kernel whose inner blocks may outgrow the grid's second
dimension runs on a 1-D grid, each program decoding its (outer, inner) block (`combined`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ...ir.sizes import Sym

PERSISTENT_MAX = 4096
TILE = 4096
POINTWISE_TILE = 1024
LOOPED_RBLOCK = 2048
MIN_PROGRAMS = 256  # about two per SM on an H100 (132 SMs)
MAX_GRID_Y = 65535
LARGE = 1 << 20  # what a symbolic size is planned for, where its upper bound is higher


@dataclass(frozen=True)
class Blocks:
    xblock: int
    rblock: int
    looped: bool  # reduction stages loop over the inner elements in RBLOCK chunks
    grid: tuple  # ints; or, with symbolic sizes, Python expressions of the size symbols
    num_warps: int
    combined: bool = False  # a 1-D grid of (outer block, inner block) pairs, inner fastest


def pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _warps(tile: int) -> int:
    return max(2, min(16, tile // 256))


def largest(n) -> int | float:
    """The largest value of a size (math.inf for an unbounded symbol)."""
    return n.bounds()[1] if isinstance(n, Sym) else n


def _planned(n) -> int:
    """The size speed is planned for: the size itself, or a symbolic one's upper bound up to LARGE."""
    return int(min(largest(n), LARGE)) if isinstance(n, Sym) else n


def _count(n, block: int):
    """Blocks of `block` covering `n`: an int, or Python text over the size symbols."""
    return -(-n // block) if isinstance(n, int) else f"(-(-({n}) // {block}))"


def choose(x, r, reduces: bool, lanes: bool) -> Blocks:
    """Blocks for X outer points and R inner elements (sizes, which may be symbolic); `reduces`:
    the kernel has Reduce stages."""
    if isinstance(x, Sym) or isinstance(r, Sym):
        return _choose_symbolic(x, r, reduces, lanes)
    if not reduces:
        rblock = min(pow2(r), POINTWISE_TILE)
        xblock = min(pow2(x), max(1, POINTWISE_TILE // rblock))
        grid = (_cdiv(x, xblock), max(_cdiv(r, rblock), 1))  # R = 0: outer-only stores still run
        if grid[1] > MAX_GRID_Y:  # a huge last dimension: larger tiles along it
            rblock = pow2(_cdiv(r, MAX_GRID_Y))
            grid = (grid[0], _cdiv(r, rblock))
        return Blocks(xblock, rblock, False, grid, _warps(xblock * rblock))
    if lanes:
        xblock = 32
        while xblock > 8 and _cdiv(x, xblock) < MIN_PROGRAMS:
            xblock //= 2
        xblock = min(pow2(x), xblock)
        rblock = min(pow2(r), TILE // xblock)
        return Blocks(xblock, rblock, pow2(r) > rblock, (_cdiv(x, xblock),), _warps(xblock * rblock))
    if pow2(r) <= PERSISTENT_MAX:
        rblock = pow2(r)
        xblock = min(pow2(x), max(1, TILE // rblock))
        while xblock > 1 and _cdiv(x, xblock) < MIN_PROGRAMS:
            xblock //= 2
        return Blocks(xblock, rblock, False, (_cdiv(x, xblock),), _warps(xblock * rblock))
    return Blocks(1, LOOPED_RBLOCK, True, (x,), _warps(LOOPED_RBLOCK))


def _choose_symbolic(x, r, reduces: bool, lanes: bool) -> Blocks:
    """choose's blocks where a size is symbolic: planned for _planned sizes, a row kept whole only
    where it fits for every value, the grid counted at launch."""
    px, pr = _planned(x), _planned(r)
    planned = choose(max(px, 1), max(pr, 1), reduces, lanes)
    xblock, rblock = planned.xblock, planned.rblock
    if not reduces:
        if isinstance(r, int):  # only the outer count is symbolic
            return Blocks(xblock, rblock, False, (_count(x, xblock), planned.grid[1]), planned.num_warps)
        grid = (f"{_count(x, xblock)} * max({_count(r, rblock)}, 1)",)
        return Blocks(xblock, rblock, False, grid, planned.num_warps, combined=True)
    looped = pow2(largest(r)) > rblock if largest(r) < math.inf else True
    if looped and not lanes:
        xblock, rblock = 1, LOOPED_RBLOCK
    return Blocks(xblock, rblock, looped, (_count(x, xblock),), _warps(xblock * rblock))
