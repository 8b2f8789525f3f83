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
"""
from __future__ import annotations

from dataclasses import dataclass

PERSISTENT_MAX = 4096
TILE = 4096
POINTWISE_TILE = 1024
LOOPED_RBLOCK = 2048
MIN_PROGRAMS = 256  # about two per SM on an H100 (132 SMs)
MAX_GRID_Y = 65535


@dataclass(frozen=True)
class Blocks:
    xblock: int
    rblock: int
    looped: bool  # reduction stages loop over the inner elements in RBLOCK chunks
    grid: tuple[int, ...]
    num_warps: int


def pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _warps(tile: int) -> int:
    return max(2, min(16, tile // 256))


def choose(x: int, r: int, reduces: bool, lanes: bool) -> Blocks:
    """Blocks for X outer points and R inner elements; `reduces`: the kernel has Reduce stages."""
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
