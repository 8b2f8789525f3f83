"""The @triton.jit pieces shared by the Triton flash-attention kernels (the forward in
flash_triton.py; delta, dK/dV and dQ in flash_triton_backward.py), so that they read their inputs,
mask their scores and bound their loops alike: where a program's tile is, tiles of one (batch, head)
loaded and stored, a tile's scores, and the run of tiles a program visits.

The kernels call these through `kernel_module` (triton_mode.py), decorated as they are, and only
builtins of triton.language besides (see triton_combine.py).
"""
from __future__ import annotations

import triton
import triton.language as tl
from triton import knobs

_INTERPRETED = knobs.runtime.interpret  # how this copy's functions were decorated


@triton.jit
def program_tile(H, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr):
    """(bh, b, h, offs, offs_d) of this program: grid axis 0 is the block of BLOCK rows (queries or
    keys) at offs, axis 1 is batch * head (b and h in int64, for the offsets they scale)."""
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    return bh, b, h, offs, offs_d


@triton.jit
def head(X, b, h, sb, sh):
    """X at batch b, head h."""
    return X + b * sb + h * sh


@triton.jit
def load_tile(X, offs, offs_d, s_row, s_d, L, D):
    """The (rows, head dim) tile of X at rows offs, 0 past L rows or D columns."""
    return tl.load(X + offs[:, None] * s_row + offs_d[None, :] * s_d,
                   mask=(offs[:, None] < L) & (offs_d[None, :] < D), other=0.0)


@triton.jit
def load_tile_t(X, offs, offs_d, s_row, s_d, L, D):
    """`load_tile` transposed: (head dim, rows)."""
    return tl.load(X + offs[None, :] * s_row + offs_d[:, None] * s_d,
                   mask=(offs[None, :] < L) & (offs_d[:, None] < D), other=0.0)


@triton.jit
def store_tile(X, offs, offs_d, s_row, L, D, value):
    """Stores `value` in X's dtype as the (rows, head dim) tile at rows offs (head dim contiguous),
    inside L rows and D columns."""
    tl.store(X + offs[:, None] * s_row + offs_d[None, :], value.to(X.dtype.element_ty),
             mask=(offs[:, None] < L) & (offs_d[None, :] < D))


@triton.jit
def dot(a, b, PRECISION: tl.constexpr):
    """a @ b in float32. The interpreter's dot multiplies bfloat16 as its raw uint16 bits, so there
    ("numpy", see flash_triton_launch.precision) the operands go up to float32 first, which is exact."""
    if PRECISION == "numpy":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b, input_precision=PRECISION)


@triton.jit
def scores(q, kt, M, smm, smn, offs_m, offs_n, Lq, Lk, qk_scale, MASK_KIND: tl.constexpr,
           DIAGONAL: tl.constexpr, EVEN_N: tl.constexpr, PRECISION: tl.constexpr):
    """One (query block, key block) tile of scores in log2 units, -inf where a query may not look;
    M is the mask at the tile's (batch, head)."""
    mask_ptrs = M + offs_m[:, None] * smm + offs_n[None, :] * smn
    s = dot(q, kt, PRECISION) * qk_scale
    if MASK_KIND == 1:  # bool, True = attend (loaded as uint8)
        inside = (offs_m[:, None] < Lq) & (offs_n[None, :] < Lk)
        keep = tl.load(mask_ptrs, mask=inside, other=0)
        s = tl.where(keep != 0, s, float("-inf"))
    if MASK_KIND == 2:  # additive, natural-log units
        inside = (offs_m[:, None] < Lq) & (offs_n[None, :] < Lk)
        bias = tl.load(mask_ptrs, mask=inside, other=0.0).to(tl.float32)
        s = s + bias * 1.4426950408889634
    if DIAGONAL:
        s = tl.where(offs_m[:, None] >= offs_n[None, :], s, float("-inf"))
    if not EVEN_N:
        s = tl.where(offs_n[None, :] < Lk, s, float("-inf"))
    return s


@triton.jit
def tile_bounds(R, b, h, srb, srh, block, L_inner, RANGES: tl.constexpr, CAUSAL: tl.constexpr,
                QUERIES_OUTER: tl.constexpr, BLOCK_OUTER: tl.constexpr, BLOCK_INNER: tl.constexpr):
    """[lo, full_lo, full_hi, hi), in inner blocks, for outer block `block` (a query block when
    QUERIES_OUTER, else a key block): blocks outside [lo, hi) are all masked, those in
    [full_lo, full_hi) need no masking at all. From the mask's pre-pass when RANGES, else from the
    causal diagonal, else everything."""
    n = (L_inner + BLOCK_INNER - 1) // BLOCK_INNER
    if RANGES:
        at = R + b * srb + h * srh + block * 4
        lo = tl.load(at)
        full_lo = tl.load(at + 1)
        full_hi = tl.load(at + 2)
        hi = tl.load(at + 3)
    elif CAUSAL:  # query i sees key j <= i
        start = block * BLOCK_OUTER
        if QUERIES_OUTER:  # key blocks up to the last query; in full, those up to the first
            lo = 0
            full_lo = 0
            hi = tl.minimum((start + BLOCK_OUTER + BLOCK_INNER - 1) // BLOCK_INNER, n)
            full_hi = tl.minimum((start + 1) // BLOCK_INNER, hi)
        else:  # query blocks from the first key on; in full, those from the last key on
            hi = n
            full_hi = n
            lo = tl.minimum(start // BLOCK_INNER, n)
            full_lo = tl.minimum((start + BLOCK_OUTER + BLOCK_INNER - 2) // BLOCK_INNER, n)
    else:
        lo = 0
        full_lo = 0
        full_hi = n
        hi = n
    return lo, full_lo, full_hi, hi
