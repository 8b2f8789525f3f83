"""Fused attention in Triton, FlashAttention-2 style: the contract of kernels/__init__.py on CUDA (and
on the CPU under TRITON_INTERPRET=1, which is how the tests run it).

Forward: one program per (query block, batch * head) walks the key blocks with an online softmax in
float32 (running max m, running sum l, accumulator rescaled when m grows), so the Lq x Lk scores are
never in memory; scores are kept in log2 units (log2(e) folded into the scale) so that each
exponential is one exp2. Causal attention visits only the key blocks at or left of the diagonal and
applies the elementwise j <= i test on the diagonal blocks alone. The backward is in
flash_triton_backward.py.

@triton.jit reads TRITON_INTERPRET when it decorates, and tests set it after this module is imported:
the kernels come from `kernel_module`, which loads a second copy of the file for the other mode.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import sys

import torch
import triton
import triton.language as tl
from triton import knobs
from triton.runtime.errors import OutOfResources

_INTERPRETED = knobs.runtime.interpret  # how this copy's kernels were decorated
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MASK_DTYPES = (torch.bool, torch.float32, torch.bfloat16, torch.float16, torch.float64)
MAX_HEAD_DIM = 256
_MAX_GRID_Y = 65535  # batch * head is the grid's second axis
LOG2E = 1.4426950408889634


# ----------------------------------------------------------------------------------------------
# kernels
#
# Only builtins of triton.language (and functions jitted here) are called: tl.zeros, tl.sum, tl.max
# are themselves jitted in Triton's standard library, decorated for the mode of Triton's import,
# which the interpreter cannot call when TRITON_INTERPRET was set later.


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _max(a, b):
    return tl.maximum(a, b)


@triton.jit
def _dot(a, b, PRECISION: tl.constexpr):
    """a @ b in float32. The interpreter's dot multiplies bfloat16 as its raw uint16 bits, so there
    ("numpy", see `precision`) the operands go up to float32 first, which is exact."""
    if PRECISION == "numpy":
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    return tl.dot(a, b, input_precision=PRECISION)


@triton.jit
def _scores(q, kt, mask_ptrs, offs_m, offs_n, Lq, Lk, qk_scale,
            MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr, EVEN_N: tl.constexpr,
            PRECISION: tl.constexpr):
    """One (query block, key block) tile of scores in log2 units, -inf where a query may not look.
    Shared by the forward and both backward kernels so that they mask identically."""
    s = _dot(q, kt, PRECISION) * qk_scale
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
def _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn, skd, svn, svd, smm, smn,
                  Lq, Lk, D, qk_scale, MASK_KIND: tl.constexpr, DIAGONAL: tl.constexpr,
                  EVEN_N: tl.constexpr, PRECISION: tl.constexpr, BLOCK_N: tl.constexpr):
    """Folds one key block into the running (acc, m, l) of a query block."""
    offs_n = start_n + tl.arange(0, BLOCK_N)
    kt = tl.load(K + offs_n[None, :] * skn + offs_d[:, None] * skd,
                 mask=(offs_n[None, :] < Lk) & (offs_d[:, None] < D), other=0.0)
    s = _scores(q, kt, M + offs_m[:, None] * smm + offs_n[None, :] * smn, offs_m, offs_n, Lq, Lk,
                qk_scale, MASK_KIND, DIAGONAL, EVEN_N, PRECISION)
    m_new = tl.maximum(m_i, tl.reduce(s, 1, _max))
    # A row with nothing unmasked yet keeps m = -inf; subtracting 0 instead keeps p = 0, not NaN.
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.math.exp2(s - m_safe[:, None])
    alpha = tl.math.exp2(m_i - m_safe)
    l_i = l_i * alpha + tl.reduce(p, 1, _add)
    v = tl.load(V + offs_n[:, None] * svn + offs_d[None, :] * svd,
                mask=(offs_n[:, None] < Lk) & (offs_d[None, :] < D), other=0.0)
    acc = acc * alpha[:, None] + _dot(p.to(v.dtype), v, PRECISION)
    return acc, m_new, l_i


@triton.jit
def _forward_kernel(Q, K, V, M, O, LSE,
                    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd,
                    smb, smh, smm, smn, sob, soh, som,
                    H, Lq, Lk, D, qk_scale,
                    MASK_KIND: tl.constexpr, CAUSAL: tl.constexpr, EVEN_N: tl.constexpr,
                    PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    BLOCK_D: tl.constexpr):
    start_m = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    K += b * skb + h * skh
    V += b * svb + h * svh
    M += b * smb + h * smh
    q = tl.load(Q + b * sqb + h * sqh + offs_m[:, None] * sqm + offs_d[None, :] * sqd,
                mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D), other=0.0)
    acc = tl.full([BLOCK_M, BLOCK_D], 0.0, dtype=tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.full([BLOCK_M], 0.0, dtype=tl.float32)
    # Key blocks wholly visible to every query of the block (all of them unless causal; BLOCK_M is
    # a multiple of BLOCK_N, so the causal ones end where this query block starts).
    hi = Lk
    if CAUSAL:
        hi = tl.minimum(start_m, Lk)
    for start_n in range(0, hi, BLOCK_N):
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn, skd,
                                      svn, svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND, False,
                                      EVEN_N, PRECISION, BLOCK_N)
    if CAUSAL:  # the diagonal blocks; those right of them are skipped
        for start_n in range(start_m, tl.minimum(start_m + BLOCK_M, Lk), BLOCK_N):
            acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, K, V, M, start_n, offs_m, offs_d, skn,
                                          skd, svn, svd, smm, smn, Lq, Lk, D, qk_scale, MASK_KIND,
                                          True, EVEN_N, PRECISION, BLOCK_N)
    empty = l_i == 0.0  # every key masked: out 0, lse -inf
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("-inf"), (m_i + tl.math.log2(l_safe)) * 0.6931471805599453)
    tl.store(O + b * sob + h * soh + offs_m[:, None] * som + offs_d[None, :], out.to(O.dtype.element_ty),
             mask=(offs_m[:, None] < Lq) & (offs_d[None, :] < D))
    tl.store(LSE + bh * Lq + offs_m, lse, mask=offs_m < Lq)


# ----------------------------------------------------------------------------------------------
# host side


def interpreting() -> bool:
    """Whether Triton runs kernels on the CPU now (TRITON_INTERPRET=1), read at each call."""
    return bool(knobs.runtime.interpret)


@functools.cache
def kernel_module(name: str, interpreted: bool):
    """Module `name` with its @triton.jit functions decorated for `interpreted`: the module itself
    when it was imported in that mode, else a second copy loaded from its file with the flag set."""
    module = importlib.import_module(name)
    if module._INTERPRETED == interpreted:
        return module
    spec = importlib.util.spec_from_file_location(f"{name}_{'interpreted' if interpreted else 'jit'}",
                                                  module.__file__)
    copy = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = copy  # the JIT resolves a kernel's globals through its module
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1" if interpreted else "0"
    try:
        spec.loader.exec_module(copy)
    finally:
        if saved is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = saved
    return copy


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


def head_block(D: int) -> int:
    """D padded to a power of two, at least 16 (the smallest tl.dot operand)."""
    return max(16, triton.next_power_of_2(D))


def precision(dtype: torch.dtype) -> str:
    """tl.dot's input_precision: TF32 for float32 exactly when PyTorch's float32 matmuls use it.
    Under the interpreter "numpy": `_dot` then multiplies in float32 (numpy), whatever the dtype."""
    if interpreting():
        return "numpy"
    if dtype == torch.float32:
        return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
    return "tf32"  # ignored for 16-bit inputs; the target's default


def device_guard(t: torch.Tensor):
    return torch.cuda.device(t.device) if t.device.type == "cuda" else contextlib.nullcontext()


def mask_args(mask: torch.Tensor | None, q: torch.Tensor):
    """(tensor, its four strides, MASK_KIND): 0 no mask, 1 bool, 2 additive."""
    if mask is None:
        return q, (0, 0, 0, 0), 0
    if mask.dtype == torch.bool:
        return mask.view(torch.uint8), tuple(mask.stride()), 1
    return mask, tuple(mask.stride()), 2


def _forward_configs(block_d: int, itemsize: int) -> list[tuple[int, int, int, int]]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) to try, best first. The q tile stays resident and
    k/v tiles are pipelined num_stages deep: shared memory is roughly
    (BLOCK_M + 2 * num_stages * BLOCK_N) * D * itemsize, to keep well under the H100's 227 KiB
    (Triton also stages layout conversions there). Smaller fallbacks follow in case a GPU has less;
    BLOCK_M must be a multiple of BLOCK_N (causal loop bounds). The interpreter gets small tiles:
    its cost is per operation, and small tiles exercise the loops at test-sized lengths."""
    if interpreting():
        return [(32, 16, 4, 1)]
    if block_d <= 64:
        first = [(128, 64, 4, 3)]
    elif block_d <= 128:
        first = [(128, 64, 8, 3)] if itemsize == 2 else [(64, 32, 4, 2)]
    else:
        first = [(64, 32, 4, 2)] if itemsize == 2 else [(32, 16, 4, 2)]
    return first + [(64, 32, 4, 1), (32, 16, 4, 1), (16, 16, 4, 1)]


_FIRST_FIT: dict = {}


def launch(kernel, grid, args: tuple, constexprs, configs, key) -> None:
    """kernel[grid(bm, bn)](*args, **constexprs(bm, bn)) with the first config that fits the GPU (a
    config past its shared memory raises OutOfResources at launch, before anything ran). The fit is
    remembered per key."""
    start = _FIRST_FIT.get(key, 0)
    for i in range(start, len(configs)):
        bm, bn, warps, stages = configs[i]
        try:
            kernel[grid(bm, bn)](*args, **constexprs(bm, bn), BLOCK_M=bm, BLOCK_N=bn, num_warps=warps,
                                 num_stages=stages)
        except OutOfResources:
            if i == len(configs) - 1:
                raise
            continue
        _FIRST_FIT[key] = i
        return


def forward(q, k, v, mask, is_causal: bool, scale: float):
    """(out, lse) of the contract: out in q's dtype, contiguous; lse float32 (B, H, Lq)."""
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    out = torch.empty((B, H, Lq, D), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, Lq), dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out, lse
    kernels = kernel_module(__name__, interpreting())
    m, m_strides, mask_kind = mask_args(mask, q)
    block_d = head_block(D)
    configs = _forward_configs(block_d, q.element_size())
    args = (q, k, v, m, out, lse, *q.stride(), *k.stride(), *v.stride(), *m_strides,
            *out.stride()[:3], H, Lq, Lk, D, scale * LOG2E)
    with device_guard(q):
        launch(kernels._forward_kernel, lambda bm, bn: (triton.cdiv(Lq, bm), B * H), args,
               lambda bm, bn: {"MASK_KIND": mask_kind, "CAUSAL": bool(is_causal), "EVEN_N": Lk % bn == 0,
                                 "PRECISION": precision(q.dtype), "BLOCK_D": block_d},
               configs, ("forward", block_d, q.dtype))
    return out, lse


def backward(grad_out, q, k, v, out, lse, mask, is_causal: bool, scale: float):
    """(dq, dk, dv) of the contract; see flash_triton_backward.py."""
    from . import flash_triton_backward

    return flash_triton_backward.backward(grad_out, q, k, v, out, lse, mask, is_causal, scale)
