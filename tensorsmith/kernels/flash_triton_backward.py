"""The backward of flash_triton.py, FlashAttention-2 style without atomics: each gradient has one
writer, at the cost of recomputing the probabilities twice.

1. delta = rowsum(dO * O) per query (float32), the softmax term of dS;
2. one program per (key block, batch * head) walks the query blocks accumulating dK and dV;
3. one program per (query block, batch * head) walks the key blocks accumulating dQ.

Both recompute p = exp(s - lse) from the saved lse, with dS = p * (dP - delta), dP = dO @ V^T, and
visit only the tiles that the mask or causality leaves some element of, without the mask where they
leave all of it (bounds from flash_triton_tiles.tile_bounds, as the forward). A row whose keys were
all masked (lse = -inf) takes lse = +inf here, so that its p, and so its gradients, are 0.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton import knobs

from .flash_triton_launch import (
    LOG2E,
    Launch,
    device_guard,
    first_fit,
    head_block,
    mask_args,
    mask_ranges,
    precision,
)
from .tile_ranges import Job
from .triton_mode import interpreting, kernel_module

_INTERPRETED = knobs.runtime.interpret  # how this copy's kernels were decorated
# the jitted helpers, decorated as this copy's kernels are
_tiles = kernel_module("tensorsmith.kernels.flash_triton_tiles", _INTERPRETED)
_combine = kernel_module("tensorsmith.kernels.triton_combine", _INTERPRETED)


@triton.jit
def _delta_kernel(O, DO, DELTA, sob, soh, som, sod, sdb, sdh, sdm, sdd, H, Lq, D,
                  BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    bh, b, h, offs_m, offs_d = _tiles.program_tile(H, BLOCK_M, BLOCK_D)
    o = _tiles.load_tile(_tiles.head(O, b, h, sob, soh), offs_m, offs_d, som, sod, Lq, D)
    do = _tiles.load_tile(_tiles.head(DO, b, h, sdb, sdh), offs_m, offs_d, sdm, sdd, Lq, D)
    delta = tl.reduce(o.to(tl.float32) * do.to(tl.float32), 1, _combine.add)
    tl.store(DELTA + bh * Lq + offs_m, delta, mask=offs_m < Lq)


@triton.jit
def _query_rows(Q, DO, LSE, DELTA, offs_m, offs_d, sqm, sqd, sdm, sdd, Lq, D):
    """q, dO, lse (log2 units, +inf for fully masked rows and rows past Lq) and delta of a query
    block, at its (batch, head)."""
    q = _tiles.load_tile(Q, offs_m, offs_d, sqm, sqd, Lq, D)
    do = _tiles.load_tile(DO, offs_m, offs_d, sdm, sdd, Lq, D)
    lse = tl.load(LSE + offs_m, mask=offs_m < Lq, other=float("inf"))
    lse = tl.where(lse == float("-inf"), float("inf"), lse) * 1.4426950408889634
    delta = tl.load(DELTA + offs_m, mask=offs_m < Lq, other=0.0)
    return q, do, lse, delta


@triton.jit
def _dkdv_block(dk, dv, kt, vt, Q, DO, LSE, DELTA, M, start_m, offs_n, offs_d, sqm, sqd, sdm, sdd,
                smm, smn, Lq, Lk, D, qk_scale, MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr,
                EVEN_N: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr):
    """Adds one query block's share to a key block's dK (unscaled) and dV."""
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q, do, lse, delta = _query_rows(Q, DO, LSE, DELTA, offs_m, offs_d, sqm, sqd, sdm, sdd, Lq, D)
    s = _tiles.scores(q, kt, M, smm, smn, offs_m, offs_n, Lq, Lk, qk_scale, MASK_KIND, DIAGONAL,
                      EVEN_N, PRECISION)
    p = tl.math.exp2(s - lse[:, None])
    dv += _tiles.dot(tl.trans(p.to(do.dtype)), do, PRECISION)
    dp = _tiles.dot(do, vt, PRECISION)
    ds = p * (dp - delta[:, None])
    dk += _tiles.dot(tl.trans(ds.to(q.dtype)), q, PRECISION)
    return dk, dv


@triton.jit
def _dkdv_kernel(Q, K, V, M, R, DO, LSE, DELTA, DK, DV,
                 sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                 smb, smh, smm, smn, srb, srh, sdb, sdh, sdm, sdd, sgb, sgh, sgn,
                 H, Lq, Lk, D, qk_scale, scale,
                 MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
                 MASKED_STAGES: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    bh, b, h, offs_n, offs_d = _tiles.program_tile(H, BLOCK_N, BLOCK_D)
    kt = _tiles.load_tile_t(_tiles.head(K, b, h, skb, skh), offs_n, offs_d, skn, skd, Lk, D)
    vt = _tiles.load_tile_t(_tiles.head(V, b, h, svb, svh), offs_n, offs_d, svn, svd, Lk, D)
    Q = _tiles.head(Q, b, h, sqb, sqh)
    DO = _tiles.head(DO, b, h, sdb, sdh)
    M = _tiles.head(M, b, h, smb, smh)
    LSE += bh * Lq
    DELTA += bh * Lq
    dk = tl.full([BLOCK_N, BLOCK_D], 0.0, dtype=tl.float32)
    dv = tl.full([BLOCK_N, BLOCK_D], 0.0, dtype=tl.float32)
    lo, full_lo, full_hi, hi = _tiles.tile_bounds(R, b, h, srb, srh, tl.program_id(0), Lq,
                                                  MASK_KIND != 0, CAUSAL, False, BLOCK_N, BLOCK_M)
    # Query blocks in three runs: masked, in full (no mask load, no causal test), masked. The masked
    # runs are not software-pipelined (MASKED_STAGES = 1) for 16-bit inputs or causal attention:
    # pipelined, Triton 3.6 on an H100 got dK wrong for 16-bit inputs on the causal diagonal, and
    # without knowing why, other masked loops of 16-bit inputs take the same care.
    if MASK_KIND != 0 or CAUSAL:
        for start_m in tl.range(lo * BLOCK_M, full_lo * BLOCK_M, BLOCK_M, num_stages=MASKED_STAGES):
            dk, dv = _dkdv_block(dk, dv, kt, vt, Q, DO, LSE, DELTA, M, start_m, offs_n, offs_d, sqm,
                                 sqd, sdm, sdd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, CAUSAL,
                                 EVEN_N, PRECISION, BLOCK_M)
    for start_m in range(full_lo * BLOCK_M, full_hi * BLOCK_M, BLOCK_M):
        dk, dv = _dkdv_block(dk, dv, kt, vt, Q, DO, LSE, DELTA, M, start_m, offs_n, offs_d, sqm, sqd,
                             sdm, sdd, smm, smn, Lq, Lk, D, qk_scale, 0, False, EVEN_N, PRECISION,
                             BLOCK_M)
    if MASK_KIND != 0 or CAUSAL:
        for start_m in tl.range(full_hi * BLOCK_M, hi * BLOCK_M, BLOCK_M, num_stages=MASKED_STAGES):
            dk, dv = _dkdv_block(dk, dv, kt, vt, Q, DO, LSE, DELTA, M, start_m, offs_n, offs_d, sqm,
                                 sqd, sdm, sdd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, CAUSAL,
                                 EVEN_N, PRECISION, BLOCK_M)
    _tiles.store_tile(_tiles.head(DK, b, h, sgb, sgh), offs_n, offs_d, sgn, Lk, D, dk * scale)
    _tiles.store_tile(_tiles.head(DV, b, h, sgb, sgh), offs_n, offs_d, sgn, Lk, D, dv)


@triton.jit
def _dq_block(dq, q, do, lse, delta, K, V, M, start_n, offs_m, offs_d, skn, skd, svn, svd, smm, smn,
              Lq, Lk, D, qk_scale, MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr,
              EVEN_N: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr):
    """Adds one key block's share to a query block's dQ (unscaled)."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    kt = _tiles.load_tile_t(K, offs_n, offs_d, skn, skd, Lk, D)
    vt = _tiles.load_tile_t(V, offs_n, offs_d, svn, svd, Lk, D)
    s = _tiles.scores(q, kt, M, smm, smn, offs_m, offs_n, Lq, Lk, qk_scale, MASK_KIND, DIAGONAL,
                      EVEN_N, PRECISION)
    p = tl.math.exp2(s - lse[:, None])
    dp = _tiles.dot(do, vt, PRECISION)
    ds = p * (dp - delta[:, None])
    return dq + _tiles.dot(ds.to(kt.dtype), tl.trans(kt), PRECISION)


@triton.jit
def _dq_kernel(Q, K, V, M, R, DO, LSE, DELTA, DQ,
               sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
               smb, smh, smm, smn, srb, srh, sdb, sdh, sdm, sdd, sgb, sgh, sgm,
               H, Lq, Lk, D, qk_scale, scale,
               MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
               PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
               BLOCK_D: tl.constexpr):
    bh, b, h, offs_m, offs_d = _tiles.program_tile(H, BLOCK_M, BLOCK_D)
    q, do, lse, delta = _query_rows(_tiles.head(Q, b, h, sqb, sqh), _tiles.head(DO, b, h, sdb, sdh),
                                    LSE + bh * Lq, DELTA + bh * Lq, offs_m, offs_d, sqm, sqd, sdm,
                                    sdd, Lq, D)
    K = _tiles.head(K, b, h, skb, skh)
    V = _tiles.head(V, b, h, svb, svh)
    M = _tiles.head(M, b, h, smb, smh)
    dq = tl.full([BLOCK_M, BLOCK_D], 0.0, dtype=tl.float32)
    lo, full_lo, full_hi, hi = _tiles.tile_bounds(R, b, h, srb, srh, tl.program_id(0), Lk,
                                                  MASK_KIND != 0, CAUSAL, True, BLOCK_M, BLOCK_N)
    # as the forward: masked, in full, masked
    if MASK_KIND != 0 or CAUSAL:
        for start_n in range(lo * BLOCK_N, full_lo * BLOCK_N, BLOCK_N):
            dq = _dq_block(dq, q, do, lse, delta, K, V, M, start_n, offs_m, offs_d, skn, skd, svn,
                           svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, CAUSAL, EVEN_N, PRECISION,
                           BLOCK_N)
    for start_n in range(full_lo * BLOCK_N, full_hi * BLOCK_N, BLOCK_N):
        dq = _dq_block(dq, q, do, lse, delta, K, V, M, start_n, offs_m, offs_d, skn, skd, svn, svd,
                       smm, smn, Lq, Lk, D, qk_scale, 0, False, EVEN_N, PRECISION, BLOCK_N)
    if MASK_KIND != 0 or CAUSAL:
        for start_n in range(full_hi * BLOCK_N, hi * BLOCK_N, BLOCK_N):
            dq = _dq_block(dq, q, do, lse, delta, K, V, M, start_n, offs_m, offs_d, skn, skd, svn,
                           svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, CAUSAL, EVEN_N, PRECISION,
                           BLOCK_N)
    _tiles.store_tile(_tiles.head(DQ, b, h, sgb, sgh), offs_m, offs_d, sgm, Lq, D, dq * scale)


def _configs(block_d: int, itemsize: int, queries_outer: bool) -> list[tuple[int, int, int, int]]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) to try, best first, for the dK/dV kernel (a key
    block of BLOCK_N stays resident with its two float32 accumulators while query tiles of BLOCK_M
    stream; BLOCK_N a multiple of BLOCK_M) or the dQ kernel (queries_outer, the mirror image, BLOCK_M
    a multiple of BLOCK_N). Wide resident blocks amortize the streamed loads; larger D halves the
    tiles for shared memory. Warps and stages at D <= 64 in float32 are the fastest of
    bench/attention_configs.py's sweep on the H100 (GPT-2's shape, tril mask)."""
    if interpreting():
        pairs = [(32, 16, 4, 1)]
    elif block_d <= 64 and itemsize == 4:
        pairs = [(128, 32, 8, 3)] if queries_outer else [(128, 32, 4, 1)]
    elif block_d <= 64:
        pairs = [(128, 32, 4, 3)]
    elif block_d <= 128:
        pairs = [(64, 32, 8, 2)] if itemsize == 4 else [(128, 32, 8, 2)]
    else:
        pairs = [(32, 16, 4, 2)] if itemsize == 4 else [(64, 16, 8, 2)]
    pairs += [(64, 16, 4, 1), (32, 16, 4, 1), (16, 16, 4, 1)]
    # pairs are (resident, streamed)
    return [(r, s, w, st) if queries_outer else (s, r, w, st) for r, s, w, st in pairs]


def plan(grad_out, q, k, v, out, lse, mask, is_causal: bool, scale: float):
    """(dq, dk, dv, [Launch]) of the backward (Lq, Lk and B * H positive), for real tensors or meta
    ones (then only compiled): the one place that picks its configs and arguments, for `backward`
    and flash_triton.precompile alike."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    dq = torch.empty((B, H, Lq, D), dtype=q.dtype, device=q.device)
    dk = torch.empty((B, H, Lk, D), dtype=k.dtype, device=q.device)
    dv = torch.empty((B, H, Lk, D), dtype=v.dtype, device=q.device)
    kernels = kernel_module(__name__, interpreting())
    m, m_strides, mask_kind = mask_args(mask, q)
    block_d = head_block(D)
    lse = lse.contiguous()
    delta = torch.empty((B, H, Lq), dtype=torch.float32, device=q.device)
    block = 16 if interpreting() else 64
    delta_launch = Launch(kernels._delta_kernel, (triton.cdiv(Lq, block), B * H),
                          (out, grad_out, delta, *out.stride(), *grad_out.stride(), H, Lq, D),
                          {"BLOCK_M": block, "BLOCK_D": block_d})
    common = (*q.stride(), *k.stride(), *v.stride(), *m_strides)
    constexprs = {"MASK_KIND": mask_kind, "CAUSAL": bool(is_causal), "PRECISION": precision(q.dtype),
                  "BLOCK_D": block_d}

    def dkdv(config, r):
        bm, bn, warps, stages = config
        masked_stages = 1 if q.element_size() == 2 or is_causal else stages
        args = (q, k, v, m, r.tensor, grad_out, lse, delta, dk, dv, *common, r.batch_stride,
                r.head_stride, *grad_out.stride(), *dk.stride()[:3], H, Lq, Lk, D, scale * LOG2E, scale)
        return Launch(kernels._dkdv_kernel, (triton.cdiv(Lk, bn), B * H), args,
                      {**constexprs, "EVEN_N": Lk % bn == 0, "MASKED_STAGES": masked_stages,
                       "BLOCK_M": bm, "BLOCK_N": bn, "num_warps": warps, "num_stages": stages})

    def dq_(config, r):
        bm, bn, warps, stages = config
        args = (q, k, v, m, r.tensor, grad_out, lse, delta, dq, *common, r.batch_stride,
                r.head_stride, *grad_out.stride(), *dq.stride()[:3], H, Lq, Lk, D, scale * LOG2E, scale)
        return Launch(kernels._dq_kernel, (triton.cdiv(Lq, bm), B * H), args,
                      {**constexprs, "EVEN_N": Lk % bn == 0, "BLOCK_M": bm, "BLOCK_N": bn,
                       "num_warps": warps, "num_stages": stages})

    def ranges(kv_config, q_config):  # one pre-pass for both kernels
        jobs = [Job(False, kv_config[1], kv_config[0]), Job(True, q_config[0], q_config[1])]
        return mask_ranges(m, m_strides, mask_kind, is_causal, B, H, Lq, Lk, jobs)

    key = (block_d, q.dtype, mask_kind, bool(is_causal))
    kv_configs = _configs(block_d, q.element_size(), queries_outer=False)
    q_configs = _configs(block_d, q.element_size(), queries_outer=True)
    kv = first_fit(("dkdv", *key), kv_configs, lambda c: dkdv(c, ranges(c, q_configs[0])[1][0]))
    qc = first_fit(("dq", *key), q_configs, lambda c: dq_(c, ranges(kv, c)[1][1]))
    pre, (r_kv, r_q) = ranges(kv, qc)
    return dq, dk, dv, [delta_launch, *pre, dkdv(kv, r_kv), dq_(qc, r_q)]


def backward(grad_out, q, k, v, out, lse, mask, is_causal: bool, scale: float):
    """(dq, dk, dv), each contiguous in its input's dtype; dk and dv per (B, H) even where k and v
    are expanded views (their autograd sums over the expansion)."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    if Lq == 0 or Lk == 0 or B * H == 0:
        return (torch.zeros((B, H, Lq, D), dtype=q.dtype, device=q.device),
                torch.zeros((B, H, Lk, D), dtype=k.dtype, device=q.device),
                torch.zeros((B, H, Lk, D), dtype=v.dtype, device=q.device))
    with device_guard(q):
        dq, dk, dv, launches = plan(grad_out, q, k, v, out, lse, mask, is_causal, scale)
        for launch in launches:
            launch.run()
    return dq, dk, dv
