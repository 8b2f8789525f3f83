"""Fused attention in Triton, FlashAttention-2 style: the contract of kernels/__init__.py on CUDA (and
on the CPU under TRITON_INTERPRET=1, which is how the tests run it).

Forward: one program per (query block, batch * head) walks the key blocks with an online softmax in
float32 (running max m, running sum l, accumulator rescaled when m grows), so the Lq x Lk scores are
never in memory; scores are kept in log2 units (log2(e) folded into the scale) so that each
exponential is one exp2. Each program visits only the key blocks [lo, hi) that some of its queries
may see, and of those the run [full_lo, full_hi) that all of them see in full without any masking
(flash_triton_tiles.tile_bounds): computed from the block indices when attention is causal without a
mask, read from a pre-pass over the mask otherwise (tile_ranges.py), so that a causal mask handed
over as a tensor costs what is_causal does. The backward is in flash_triton_backward.py, the pieces
both kernels share in flash_triton_tiles.py.

Every launch is built as data (`Launch`, flash_triton_launch.py) by one function per direction,
which also picks the configs, so that `precompile` compiles exactly what a later call launches; this
module ties the two directions together (`backward`, `planned_launches`, `precompile`).

The kernels come from `kernel_module` (triton_mode.py), decorated for the mode Triton runs in now.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton import knobs

from .flash_triton_backward import backward
from .flash_triton_backward import plan as _backward_plan
from .flash_triton_launch import _FIRST_FIT  # noqa: F401 - bench/attention_configs.py clears it
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

_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MASK_DTYPES = (torch.bool, torch.float32, torch.bfloat16, torch.float16, torch.float64)
MAX_HEAD_DIM = 256
_MAX_GRID_Y = 65535  # batch * head is the grid's second axis


# ----------------------------------------------------------------------------------------------
# kernel


@triton.jit
def _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn, skd, svn, svd, smm, smn,
                  Lq, Lk, D, qk_scale, MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr,
                  EVEN_N: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr):
    """Folds one key block into the running (acc, m, l) of a query block."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    kt = _tiles.load_tile_t(K, offs_n, offs_d, skn, skd, Lk, D)
    s = _tiles.scores(q, kt, M, smm, smn, offs_m, offs_n, Lq, Lk, qk_scale, MASK_KIND, DIAGONAL,
                      EVEN_N, PRECISION)
    m_new = tl.maximum(m_i, tl.reduce(s, 1, _combine.maximum))
    # A row with nothing unmasked yet keeps m = -inf; subtracting 0 instead keeps p = 0, not NaN.
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.math.exp2(s - m_safe[:, None])
    alpha = tl.math.exp2(m_i - m_safe)
    l_i = l_i * alpha + tl.reduce(p, 1, _combine.add)
    v = _tiles.load_tile(V, offs_n, offs_d, svn, svd, Lk, D)
    acc = acc * alpha[:, None] + _tiles.dot(p.to(v.dtype), v, PRECISION)
    return acc, m_new, l_i


@triton.jit
def _forward_kernel(Q, K, V, M, R, O, LSE,
                    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                    smb, smh, smm, smn, srb, srh, sob, soh, som,
                    H, Lq, Lk, D, qk_scale,
                    MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
                    PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_D: tl.constexpr):
    bh, b, h, offs_m, offs_d = _tiles.program_tile(H, BLOCK_M, BLOCK_D)
    K = _tiles.head(K, b, h, skb, skh)
    V = _tiles.head(V, b, h, svb, svh)
    M = _tiles.head(M, b, h, smb, smh)
    q = _tiles.load_tile(_tiles.head(Q, b, h, sqb, sqh), offs_m, offs_d, sqm, sqd, Lq, D)
    acc = tl.full([BLOCK_M, BLOCK_D], 0.0, dtype=tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.full([BLOCK_M], 0.0, dtype=tl.float32)
    lo, full_lo, full_hi, hi = _tiles.tile_bounds(R, b, h, srb, srh, tl.program_id(0), Lk,
                                                  MASK_KIND != 0, CAUSAL, True, BLOCK_M, BLOCK_N)
    # Three runs of key blocks in order (so the sums are as without skipping): masked, in full
    # (no mask load, no causal test), masked. Blocks outside [lo, hi) would add nothing.
    if MASK_KIND != 0 or CAUSAL:
        for start_n in range(lo * BLOCK_N, full_lo * BLOCK_N, BLOCK_N):
            acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn,
                                          skd, svn, svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND,
                                          CAUSAL, EVEN_N, PRECISION, BLOCK_N)
    for start_n in range(full_lo * BLOCK_N, full_hi * BLOCK_N, BLOCK_N):
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn, skd,
                                      svn, svd, smm, smn, Lq, Lk, D, qk_scale, 0, False, EVEN_N,
                                      PRECISION, BLOCK_N)
    if MASK_KIND != 0 or CAUSAL:
        for start_n in range(full_hi * BLOCK_N, hi * BLOCK_N, BLOCK_N):
            acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn,
                                          skd, svn, svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND,
                                          CAUSAL, EVEN_N, PRECISION, BLOCK_N)
    empty = l_i == 0.0  # every key masked: out 0, lse -inf
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    _tiles.store_tile(_tiles.head(O, b, h, sob, soh), offs_m, offs_d, som, Lq, D, out)
    tl.store(LSE + bh * Lq + offs_m, lse, mask=offs_m < Lq)


# ----------------------------------------------------------------------------------------------
# host side


def unsupported(q, k, v, mask) -> str | None:
    """Why these kernels cannot take the inputs, or None. Looks at metadata only (fake tensors do)."""
    if q.dtype not in _DTYPES:
        return f"dtype {q.dtype} (the Triton kernels take float32, bfloat16 and float16)"
    if k.dtype != q.dtype or v.dtype != q.dtype:
        return f"q, k, v dtypes differ ({q.dtype}, {k.dtype}, {v.dtype})"
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        return "q, k, v must be (B, H, L, D)"
    (B, H, _, D), Lk = q.shape, k.shape[2]
    if tuple(k.shape) != (B, H, Lk, D) or tuple(v.shape) != (B, H, Lk, D):
        return f"k {tuple(k.shape)} and v {tuple(v.shape)} do not match q {tuple(q.shape)}"
    if not 1 <= D <= MAX_HEAD_DIM:
        return f"head dim {D} (the Triton kernels take 1 to {MAX_HEAD_DIM})"
    if B * H > _MAX_GRID_Y:
        return f"batch * heads = {B * H} exceeds the grid's {_MAX_GRID_Y}"
    if mask is not None:
        if mask.dtype not in _MASK_DTYPES:
            return f"mask dtype {mask.dtype}"
        if mask.dim() != 4:
            return "mask must be a (B, H, Lq, Lk) view"
    devices = {t.device for t in (q, k, v) + ((mask,) if mask is not None else ())}
    if len(devices) != 1:
        return f"inputs on several devices {sorted(map(str, devices))}"
    if q.device.type != "cuda" and not interpreting():
        return f"device {q.device} (Triton runs on CUDA, or anywhere under TRITON_INTERPRET=1)"
    return None


def _forward_configs(block_d: int, itemsize: int) -> list[tuple[int, int, int, int]]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) to try, best first. The q tile stays resident and
    k/v tiles are pipelined num_stages deep: shared memory is roughly
    (BLOCK_M + 2 * num_stages * BLOCK_N) * D * itemsize, to keep well under the H100's 227 KiB
    (Triton also stages layout conversions there). Smaller fallbacks follow in case a GPU has less;
    block sizes are multiples of 16 (the mask pre-pass's tiles, tile_ranges.FINE). The interpreter
    gets small tiles: its cost is per operation, and small tiles exercise the loops at test-sized
    lengths."""
    if interpreting():
        return [(32, 16, 4, 1)]
    if block_d <= 64:
        first = [(128, 64, 8, 3)] if itemsize == 4 else [(128, 64, 4, 3)]
    elif block_d <= 128:
        first = [(128, 64, 8, 3)] if itemsize == 2 else [(64, 32, 4, 2)]
    else:
        first = [(64, 32, 4, 2)] if itemsize == 2 else [(32, 16, 4, 2)]
    return first + [(64, 32, 4, 1), (32, 16, 4, 1), (16, 16, 4, 1)]


def _forward_plan(q, k, v, mask, is_causal: bool, scale: float):
    """(out, lse, [Launch]) of the forward, for real tensors or meta ones (then only compiled): the
    one place that picks its config and arguments, for `forward` and `precompile` alike."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    out = torch.empty((B, H, Lq, D), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, Lq), dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out, lse, []
    kernels = kernel_module(__name__, interpreting())
    m, m_strides, mask_kind = mask_args(mask, q)
    block_d = head_block(D)
    constexprs = {"MASK_KIND": mask_kind, "CAUSAL": bool(is_causal), "PRECISION": precision(q.dtype),
                  "BLOCK_D": block_d}

    def plan(config):
        bm, bn, warps, stages = config
        pre, (r,) = mask_ranges(m, m_strides, mask_kind, is_causal, B, H, Lq, Lk, [Job(True, bm, bn)])
        args = (q, k, v, m, r.tensor, out, lse, *q.stride(), *k.stride(), *v.stride(), *m_strides,
                r.batch_stride, r.head_stride, *out.stride()[:3], H, Lq, Lk, D, scale * LOG2E)
        return pre + [Launch(kernels._forward_kernel, (triton.cdiv(Lq, bm), B * H), args,
                             {**constexprs, "EVEN_N": Lk % bn == 0, "BLOCK_M": bm, "BLOCK_N": bn,
                              "num_warps": warps, "num_stages": stages})]

    configs = _forward_configs(block_d, q.element_size())
    key = ("forward", block_d, q.dtype, mask_kind, bool(is_causal))
    return out, lse, plan(first_fit(key, configs, lambda c: plan(c)[-1]))


def forward(q, k, v, mask, is_causal: bool, scale: float):
    """(out, lse) of the contract: out in q's dtype, contiguous; lse float32 (B, H, Lq)."""
    with device_guard(q):
        out, lse, launches = _forward_plan(q, k, v, mask, is_causal, scale)
        for launch in launches:
            launch.run()
    return out, lse


def _meta(t: torch.Tensor) -> torch.Tensor:
    """A meta tensor with t's dtype, shape, strides and storage offset (t may be a FakeTensor)."""
    extent = 1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) if t.numel() else 0
    storage = torch.empty(t.storage_offset() + extent, dtype=t.dtype, device="meta")
    return storage.as_strided(t.shape, t.stride(), t.storage_offset())


def planned_launches(q, k, v, mask, is_causal: bool) -> list[Launch]:
    """The launches `forward` then `backward` will make for inputs like these, built on meta tensors
    of the same dtype, shape, strides and storage offset (q, k, v, mask may be FakeTensors; mask as
    the op takes it, broadcastable to (B, H, Lq, Lk)); grad_out, out and lse as contiguous as
    `tensorsmith::attention_backward` passes them. Picking configs may compile (see first_fit)."""
    from torch._subclasses.fake_tensor import unset_fake_temporarily

    with unset_fake_temporarily():
        q, k, v = (_meta(t) for t in (q, k, v))
        if mask is not None:
            mask = _meta(mask).expand(*q.shape[:-1], k.shape[-2])
        out, lse, launches = _forward_plan(q, k, v, mask, is_causal, 1.0)
        if out.numel() and k.shape[2]:
            launches += _backward_plan(torch.empty_like(out), q, k, v, out, lse, mask, is_causal,
                                       1.0)[-1]
    return launches


def precompile(q, k, v, mask, is_causal: bool) -> None:
    """Compile and load, without launching anything, every kernel that `forward` and `backward`
    will launch for inputs like these (see `planned_launches`; FakeTensors do): the mask's
    pre-passes, the forward, delta, dK/dV and dQ kernels, with the configs the calls will pick, so
    that the first call finds them built. For a background thread: it touches only Triton's caches
    and `_FIRST_FIT`. Compiled as torch.backends.cuda.matmul.allow_tf32 says now, for 16-byte aligned
    allocations. Does nothing under the interpreter, for inputs the kernels do not take, or for
    symbolic shapes (the kernels specialize on sizes and strides)."""
    tensors = [t for t in (q, k, v, mask) if t is not None]
    if interpreting() or not all(isinstance(n, int) for t in tensors
                                 for n in (*t.shape, *t.stride(), t.storage_offset())):
        return
    if unsupported(q, k, v, None) is not None or q.device.type != "cuda" or (
            mask is not None and (mask.dtype not in _MASK_DTYPES or mask.device != q.device)):
        return
    with device_guard(q.device):
        for launch in planned_launches(q, k, v, mask, is_causal):
            launch.compile()
