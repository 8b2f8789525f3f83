"""Which tiles of an attention mask hide everything and which hide nothing: the pre-pass that lets the
flash-attention kernels (flash_triton.py, flash_triton_backward.py) skip empty tiles and leave the
mask unread on full ones, for any mask, on the device (no host synchronization, graph-capturable).

nanoGPT writes causal attention as masked_fill with a tril buffer; the kernels see only a bool mask,
and without this they would visit every tile and load the mask for each. Two small launches:

1. `_tile_states_kernel`: for each FINE x FINE tile of the mask (with the causal test folded in when
   the attention is also causal), two bits: bit 0, some element is visible (bool True, additive
   value not -inf); bit 1, some element is hidden or biased (bool False, additive value not exactly
   0.0). Empty = 0b10, full = 0b01, partial = 0b11. Elements past Lq or Lk set neither bit, so OR-ing
   the states of FINE tiles gives the state of the larger tile they make up, at any block size.
2. `_ranges_kernel`: for each block of a kernel's outer loop (query blocks for the forward and dQ,
   key blocks for dK/dV) ORs the states into the kernel's tiles and writes four int32
   [lo, full_lo, full_hi, hi), counted in tiles of the inner loop: tiles outside [lo, hi) are empty
   and skipped; [full_lo, full_hi) is the first run of full tiles, visited without the mask (an all
   True bool tile or an all 0.0 additive one changes nothing); the rest of [lo, hi) is visited with
   the mask as before. No full tile: full_lo = full_hi = hi. Nothing visible: all four are 0. One
   launch serves up to two kernels (the backward's dK/dV and dQ).

Only the mask's own batch and head extent is summarized: a dimension of size 1 or stride 0 once, and
the kernels read the ranges with stride 0 there.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl
from triton import knobs

from .triton_mode import kernel_module

_INTERPRETED = knobs.runtime.interpret  # how this copy's kernels were decorated (see triton_mode)
_combine = kernel_module("tensorsmith.kernels.triton_combine", _INTERPRETED)  # in this copy's mode
FINE = 16  # edge of the summarized tiles; every kernel block size is a multiple of it


@triton.jit
def _tile_states_kernel(M, S, smb, smh, smm, smn, Hs, Lq, Lk, n_fm, n_fn,
                        MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, TILES: tl.constexpr,
                        FINE: tl.constexpr):
    """States of TILES fine tiles in one row of them: S[bh, fm, fn] (int8)."""
    fm = tl.program_id(0)
    bh = tl.program_id(2)
    b = (bh // Hs).to(tl.int64)
    h = (bh % Hs).to(tl.int64)
    offs_m = fm * FINE + tl.arange(0, FINE)
    offs_n = tl.program_id(1) * (TILES * FINE) + tl.arange(0, TILES * FINE)
    inside = (offs_m[:, None] < Lq) & (offs_n[None, :] < Lk)
    x = tl.load(M + b * smb + h * smh + offs_m[:, None] * smm + offs_n[None, :] * smn, mask=inside,
                other=0)
    if MASK_KIND == 1:  # bool as uint8
        visible = x != 0
        dirty = x == 0
    else:  # additive: full only where adding it is a no-op
        visible = x != float("-inf")
        dirty = x != 0.0
    if CAUSAL:
        visible = visible & (offs_m[:, None] >= offs_n[None, :])
        dirty = dirty | (offs_m[:, None] < offs_n[None, :])
    state = tl.where(inside & visible, 1, 0) | tl.where(inside & dirty, 2, 0)
    tiles = tl.reduce(tl.reshape(tl.reduce(state, 0, _combine.bitwise_or), (TILES, FINE)), 1,
                      _combine.bitwise_or)
    offs_t = tl.program_id(1) * TILES + tl.arange(0, TILES)
    tl.store(S + bh.to(tl.int64) * n_fm * n_fn + fm * n_fn + offs_t, tiles.to(tl.int8),
             mask=offs_t < n_fn)


@triton.jit
def _block_ranges(S, R, o, n_fm, n_fn, n_tiles, QUERIES_OUTER: tl.constexpr, RO: tl.constexpr,
                  RI: tl.constexpr, CHUNK: tl.constexpr):
    """Writes R[o] = [lo, full_lo, full_hi, hi) for outer block o, which spans RO fine rows (fine
    columns when keys are outer); an inner tile spans RI fine ones. CHUNK fine ones per step."""
    if QUERIES_OUTER:
        n_fo, n_fi, s_o, s_i = n_fm, n_fn, n_fn, 1
    else:
        n_fo, n_fi, s_o, s_i = n_fn, n_fm, 1, n_fn
    rows = o * RO + tl.arange(0, RO)
    lo = tl.full([], 0, tl.int32) + n_tiles
    full_lo = tl.full([], 0, tl.int32) + n_tiles
    full_hi = tl.full([], 0, tl.int32) + n_tiles
    hi = tl.full([], 0, tl.int32)
    for c0 in range(0, n_fi, CHUNK):
        cols = c0 + tl.arange(0, CHUNK)
        st = tl.load(S + rows[:, None] * s_o + cols[None, :] * s_i,
                     mask=(rows[:, None] < n_fo) & (cols[None, :] < n_fi), other=0).to(tl.int32)
        tiles = tl.reduce(tl.reshape(tl.reduce(st, 0, _combine.bitwise_or), (CHUNK // RI, RI)), 1,
                          _combine.bitwise_or)
        t = c0 // RI + tl.arange(0, CHUNK // RI)
        valid = t < n_tiles
        seen = valid & ((tiles & 1) != 0)
        full = valid & (tiles == 1)
        lo = tl.minimum(lo, tl.reduce(tl.where(seen, t, n_tiles), 0, _combine.minimum))
        hi = tl.maximum(hi, tl.reduce(tl.where(seen, t + 1, 0), 0, _combine.maximum))
        full_lo = tl.minimum(full_lo, tl.reduce(tl.where(full, t, n_tiles), 0, _combine.minimum))
        # the first run ends at the first tile after its start that is not full
        ends = valid & (tiles != 1) & (t > full_lo)
        full_hi = tl.minimum(full_hi, tl.reduce(tl.where(ends, t, n_tiles), 0, _combine.minimum))
    tl.store(R + o * 4, tl.minimum(lo, hi))
    tl.store(R + o * 4 + 1, tl.minimum(full_lo, hi))
    tl.store(R + o * 4 + 2, tl.minimum(full_hi, hi))
    tl.store(R + o * 4 + 3, hi)


@triton.jit
def _ranges_kernel(S, R0, R1, n_fm, n_fn, n_out0, n_out1, n_tiles0, n_tiles1,
                   QUERIES0: tl.constexpr, RO0: tl.constexpr, RI0: tl.constexpr, CHUNK0: tl.constexpr,
                   QUERIES1: tl.constexpr, RO1: tl.constexpr, RI1: tl.constexpr, CHUNK1: tl.constexpr):
    """Programs [0, n_out0) write the ranges of job 0 to R0, the next n_out1 those of job 1 to R1."""
    o = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    S += bh * n_fm * n_fn
    if o < n_out0:
        _block_ranges(S, R0 + bh * n_out0 * 4, o, n_fm, n_fn, n_tiles0, QUERIES0, RO0, RI0, CHUNK0)
    else:
        _block_ranges(S, R1 + bh * n_out1 * 4, o - n_out0, n_fm, n_fn, n_tiles1, QUERIES1, RO1, RI1,
                      CHUNK1)


# ----------------------------------------------------------------------------------------------
# host side


class Ranges(NamedTuple):
    """A kernel's view of its ranges: R[b * batch_stride + h * head_stride + block * 4 + i]."""
    tensor: torch.Tensor
    batch_stride: int
    head_stride: int


class Job(NamedTuple):
    """Ranges for one kernel: its outer loop over queries or keys, and its block sizes."""
    queries_outer: bool
    block_outer: int
    block_inner: int


def summary_extent(B: int, H: int, mask_strides) -> tuple[int, int]:
    """(batch, heads) the summary covers: 1 where the mask broadcasts (size 1 or stride 0)."""
    smb, smh = mask_strides[:2]
    return (B if B > 1 and smb != 0 else 1), (H if H > 1 and smh != 0 else 1)


def _chunk(ro: int, ri: int) -> int:
    """Fine tiles per step of `_block_ranges`: about a thousand states a step; two inner tiles
    under the interpreter, so that test-sized masks take several steps."""
    if knobs.runtime.interpret:
        return 2 * ri
    return max(ri, 1024 // ro)


def prepass(kernels, m, mask_strides, mask_kind: int, is_causal: bool, B: int, H: int, Lq: int,
            Lk: int, jobs: list[Job]):
    """([(kernel, grid, args, options)] of the two launches, [Ranges] per job) for mask m (a bool
    mask viewed as uint8, mask_kind 1; additive, 2), strides as the kernels read it. `kernels` is
    this module decorated for the current mode. Works on meta tensors too (nothing is launched)."""
    assert 1 <= len(jobs) <= 2 and all(j.block_outer % FINE == 0 and j.block_inner % FINE == 0
                                        for j in jobs)
    Bs, Hs = summary_extent(B, H, mask_strides)
    n_fm, n_fn = triton.cdiv(Lq, FINE), triton.cdiv(Lk, FINE)
    ranges, args, options = [], [], {}
    for i, job in enumerate(jobs):
        n_out = triton.cdiv(Lq if job.queries_outer else Lk, job.block_outer)
        n_tiles = triton.cdiv(Lk if job.queries_outer else Lq, job.block_inner)
        r = torch.empty((Bs * Hs, n_out, 4), dtype=torch.int32, device=m.device)
        ranges.append(Ranges(r, Hs * n_out * 4 if Bs > 1 else 0, n_out * 4 if Hs > 1 else 0))
        args.append((r, n_out, n_tiles))
        ro, ri = job.block_outer // FINE, job.block_inner // FINE
        options.update({f"QUERIES{i}": job.queries_outer, f"RO{i}": ro, f"RI{i}": ri,
                        f"CHUNK{i}": _chunk(ro, ri)})
    if n_fm == 0 or n_fn == 0:  # no queries or no keys: every range is empty
        for r in ranges:
            r.tensor.zero_()
        return [], ranges
    if len(jobs) == 1:  # the second job is never reached (grid), but takes the same arguments
        args.append((args[0][0], 0, args[0][2]))
        options.update({k[:-1] + "1": v for k, v in options.items()})
    states = torch.empty((Bs * Hs, n_fm, n_fn), dtype=torch.int8, device=m.device)
    tiles = 2 if knobs.runtime.interpret else 16
    (r0, n0, t0), (r1, n1, t1) = args
    return [(kernels._tile_states_kernel, (n_fm, triton.cdiv(n_fn, tiles), Bs * Hs),
             (m, states, *mask_strides, Hs, Lq, Lk, n_fm, n_fn),
             {"MASK_KIND": mask_kind, "CAUSAL": bool(is_causal), "TILES": tiles, "FINE": FINE}),
            (kernels._ranges_kernel, (n0 + n1, Bs * Hs), (states, r0, r1, n_fm, n_fn, n0, n1, t0, t1),
             options)], ranges
