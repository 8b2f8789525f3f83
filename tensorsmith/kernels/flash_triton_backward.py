"""The backward of flash_triton.py, FlashAttention-2 style without atomics: each gradient has one
writer, at the cost of recomputing the probabilities twice.

1. delta = rowsum(dO * O) per query (float32), the softmax term of dS;
2. one program per (key block, batch * head) walks the query blocks accumulating dK and dV;
3. one program per (query block, batch * head) walks the key blocks accumulating dQ.

Both recompute p = exp(s - lse) from the saved lse, with dS = p * (dP - delta), dP = dO @ V^T, and
skip the tiles that causal masking empties. A row whose keys were all masked (lse = -inf) takes
lse = +inf here, so that its p, and so its gradients, are 0.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton import knobs

from .flash_triton import (
    LOG2E,
    device_guard,
    head_block,
    interpreting,
    kernel_module,
    launch,
    mask_args,
    precision,
)

_INTERPRETED = knobs.runtime.interpret  # how this copy's kernels were decorated
_forward = kernel_module("tensorsmith.kernels.flash_triton", _INTERPRETED)  # same mode as this copy
_scores, _add, _dot = _forward._scores, _forward._add, _forward._dot


@triton.jit
def _delta_kernel(O, DO, DELTA, sob, soh, som, sod, sdb, sdh, sdm, sdd, H, Lq, D,
                  BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    inside = (offs_m[:, None] < Lq) & (offs_d[None, :] < D)
    o = tl.load(O + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :] * sod, mask=inside,
                other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdm + offs_d[None, :] * sdd, mask=inside,
                 other=0.0)
    delta = tl.reduce(o.to(tl.float32) * do.to(tl.float32), 1, _add)
    tl.store(DELTA + bh * Lq + offs_m, delta, mask=offs_m < Lq)


@triton.jit
def _query_rows(Q, DO, LSE, DELTA, offs_m, offs_d, sqm, sqd, sdm, sdd, Lq, D):
    """q, dO, lse (log2 units, +inf for fully masked rows and rows past Lq) and delta of a query block."""
    inside = (offs_m[:, None] < Lq) & (offs_d[None, :] < D)
    q = tl.load(Q + offs_m[:, None] * sqm + offs_d[None, :] * sqd, mask=inside, other=0.0)
    do = tl.load(DO + offs_m[:, None] * sdm + offs_d[None, :] * sdd, mask=inside, other=0.0)
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
    s = _scores(q, kt, M + offs_m[:, None] * smm + offs_n[None, :] * smn, offs_m, offs_n, Lq, Lk,
                qk_scale, MASK_KIND, DIAGONAL, EVEN_N, PRECISION)
    p = tl.math.exp2(s - lse[:, None])
    dv += _dot(tl.trans(p.to(do.dtype)), do, PRECISION)
    dp = _dot(do, vt, PRECISION)
    ds = p * (dp - delta[:, None])
    dk += _dot(tl.trans(ds.to(q.dtype)), q, PRECISION)
    return dk, dv


@triton.jit
def _dkdv_kernel(Q, K, V, M, DO, LSE, DELTA, DK, DV,
                 sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                 smb, smh, smm, smn, sdb, sdh, sdm, sdd, sgb, sgh, sgn,
                 H, Lq, Lk, D, qk_scale, scale,
                 MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
                 PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                 BLOCK_D: tl.constexpr):
    start_n = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    inside_t = (offs_n[None, :] < Lk) & (offs_d[:, None] < D)
    kt = tl.load(K + b * skb + h * skh + offs_n[None, :] * skn + offs_d[:, None] * skd, mask=inside_t,
                 other=0.0)
    vt = tl.load(V + b * svb + h * svh + offs_n[None, :] * svn + offs_d[:, None] * svd, mask=inside_t,
                 other=0.0)
    Q += b * sqb + h * sqh
    DO += b * sdb + h * sdh
    M += b * smb + h * smh
    LSE += bh * Lq
    DELTA += bh * Lq
    dk = tl.full([BLOCK_N, BLOCK_D], 0.0, dtype=tl.float32)
    dv = tl.full([BLOCK_N, BLOCK_D], 0.0, dtype=tl.float32)
    if CAUSAL:
        # Queries before start_n see none of these keys; those in the key block's own rows need the
        # j <= i test (BLOCK_N is a multiple of BLOCK_M); those after see every key. This short loop
        # is not software-pipelined: pipelined, Triton 3.6 on an H100 got dK wrong by 4-13% for 16-bit
        # inputs at 2-3 stages (tensorsmith.bench.attention_gpu caught it; 1 stage is right).
        for start_m in tl.range(start_n, tl.minimum(start_n + BLOCK_N, Lq), BLOCK_M, num_stages=1):
            dk, dv = _dkdv_block(dk, dv, kt, vt, Q, DO, LSE, DELTA, M, start_m, offs_n, offs_d, sqm,
                                 sqd, sdm, sdd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, True,
                                 EVEN_N, PRECISION, BLOCK_M)
        lo = start_n + BLOCK_N
    else:
        lo = 0
    for start_m in range(lo, Lq, BLOCK_M):
        dk, dv = _dkdv_block(dk, dv, kt, vt, Q, DO, LSE, DELTA, M, start_m, offs_n, offs_d, sqm, sqd,
                             sdm, sdd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, False, EVEN_N,
                             PRECISION, BLOCK_M)
    inside = (offs_n[:, None] < Lk) & (offs_d[None, :] < D)
    rows = b * sgb + h * sgh + offs_n[:, None] * sgn + offs_d[None, :]
    tl.store(DK + rows, (dk * scale).to(DK.dtype.element_ty), mask=inside)
    tl.store(DV + rows, dv.to(DV.dtype.element_ty), mask=inside)


@triton.jit
def _dq_block(dq, q, do, lse, delta, K, V, M, start_n, offs_m, offs_d, skn, skd, svn, svd, smm, smn,
              Lq, Lk, D, qk_scale, MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr,
              EVEN_N: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr):
    """Adds one key block's share to a query block's dQ (unscaled)."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    inside_t = (offs_n[None, :] < Lk) & (offs_d[:, None] < D)
    kt = tl.load(K + offs_n[None, :] * skn + offs_d[:, None] * skd, mask=inside_t, other=0.0)
    vt = tl.load(V + offs_n[None, :] * svn + offs_d[:, None] * svd, mask=inside_t, other=0.0)
    s = _scores(q, kt, M + offs_m[:, None] * smm + offs_n[None, :] * smn, offs_m, offs_n, Lq, Lk,
                qk_scale, MASK_KIND, DIAGONAL, EVEN_N, PRECISION)
    p = tl.math.exp2(s - lse[:, None])
    dp = _dot(do, vt, PRECISION)
    ds = p * (dp - delta[:, None])
    return dq + _dot(ds.to(kt.dtype), tl.trans(kt), PRECISION)


@triton.jit
def _dq_kernel(Q, K, V, M, DO, LSE, DELTA, DQ,
               sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
               smb, smh, smm, smn, sdb, sdh, sdm, sdd, sgb, sgh, sgm,
               H, Lq, Lk, D, qk_scale, scale,
               MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
               PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
               BLOCK_D: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q, do, lse, delta = _query_rows(Q + b * sqb + h * sqh, DO + b * sdb + h * sdh, LSE + bh * Lq,
                                    DELTA + bh * Lq, offs_m, offs_d, sqm, sqd, sdm, sdd, Lq, D)
    K += b * skb + h * skh
    V += b * svb + h * svh
    M += b * smb + h * smh
    dq = tl.full([BLOCK_M, BLOCK_D], 0.0, dtype=tl.float32)
    hi = Lk
    if CAUSAL:  # as the forward: whole blocks left of the diagonal, then the diagonal ones
        hi = tl.minimum(start_m, Lk)
    for start_n in range(0, hi, BLOCK_N):
        dq = _dq_block(dq, q, do, lse, delta, K, V, M, start_n, offs_m, offs_d, skn, skd, svn, svd,
                       smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, False, EVEN_N, PRECISION, BLOCK_N)
    if CAUSAL:
        for start_n in range(start_m, tl.minimum(start_m + BLOCK_M, Lk), BLOCK_N):
            dq = _dq_block(dq, q, do, lse, delta, K, V, M, start_n, offs_m, offs_d, skn, skd, svn,
                           svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, True, EVEN_N, PRECISION,
                           BLOCK_N)
    tl.store(DQ + b * sgb + h * sgh + offs_m[:, None] * sgm + offs_d[None, :],
             (dq * scale).to(DQ.dtype.element_ty), mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D))


def _configs(block_d: int, itemsize: int, queries_outer: bool) -> list[tuple[int, int, int, int]]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) to try, best first, for the dK/dV kernel (a key
    block of BLOCK_N stays resident with its two float32 accumulators while query tiles of BLOCK_M
    stream; BLOCK_N a multiple of BLOCK_M) or the dQ kernel (queries_outer, the mirror image, BLOCK_M
    a multiple of BLOCK_N). Wide resident blocks amortize the streamed loads; the float32 accumulators
    (2 x 128 x 64 for dK/dV at D = 64) set num_warps; larger D halves the tiles for shared memory."""
    if interpreting():
        pairs = [(32, 16, 4, 1)]
    elif block_d <= 64:
        pairs = [(128, 32, 8, 3)] if itemsize == 4 else [(128, 32, 4, 3)]
    elif block_d <= 128:
        pairs = [(64, 32, 8, 2)] if itemsize == 4 else [(128, 32, 8, 2)]
    else:
        pairs = [(32, 16, 4, 2)] if itemsize == 4 else [(64, 16, 8, 2)]
    pairs += [(64, 16, 4, 1), (32, 16, 4, 1), (16, 16, 4, 1)]
    # pairs are (resident, streamed)
    return [(r, s, w, st) if queries_outer else (s, r, w, st) for r, s, w, st in pairs]


def backward(grad_out, q, k, v, out, lse, mask, is_causal: bool, scale: float):
    """(dq, dk, dv), each contiguous in its input's dtype; dk and dv per (B, H) even where k and v
    are expanded views (their autograd sums over the expansion)."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    dq = torch.empty((B, H, Lq, D), dtype=q.dtype, device=q.device)
    dk = torch.empty((B, H, Lk, D), dtype=k.dtype, device=q.device)
    dv = torch.empty((B, H, Lk, D), dtype=v.dtype, device=q.device)
    if Lq == 0 or Lk == 0 or B * H == 0:
        return dq.zero_(), dk.zero_(), dv.zero_()
    kernels = kernel_module(__name__, interpreting())
    m, m_strides, mask_kind = mask_args(mask, q)
    block_d = head_block(D)
    prec = precision(q.dtype)
    lse = lse.contiguous()
    delta = torch.empty((B, H, Lq), dtype=torch.float32, device=q.device)
    common = (*q.stride(), *k.stride(), *v.stride(), *m_strides, *grad_out.stride())
    with device_guard(q):
        block = 16 if interpreting() else 64
        kernels._delta_kernel[(triton.cdiv(Lq, block), B * H)](
            out, grad_out, delta, *out.stride(), *grad_out.stride(), H, Lq, D, BLOCK_M=block,
            BLOCK_D=block_d)

        def constexprs(bm, bn):
            return {"MASK_KIND": mask_kind, "CAUSAL": bool(is_causal), "EVEN_N": Lk % bn == 0,
                    "PRECISION": prec, "BLOCK_D": block_d}

        configs = _configs(block_d, q.element_size(), queries_outer=False)
        launch(kernels._dkdv_kernel, lambda bm, bn: (triton.cdiv(Lk, bn), B * H),
               (q, k, v, m, grad_out, lse, delta, dk, dv, *common, *dk.stride()[:3], H, Lq, Lk, D,
                scale * LOG2E, scale), constexprs, configs, ("dkdv", block_d, q.dtype))
        configs = _configs(block_d, q.element_size(), queries_outer=True)
        launch(kernels._dq_kernel, lambda bm, bn: (triton.cdiv(Lq, bm), B * H),
               (q, k, v, m, grad_out, lse, delta, dq, *common, *dq.stride()[:3], H, Lq, Lk, D,
                scale * LOG2E, scale), constexprs, configs, ("dq", block_d, q.dtype))
    return dq, dk, dv
