"""Flash attention for float32 on the CPU: a tiled C++ kernel (flash_attention.cpp, OpenMP over
(batch*head, block), online softmax, no L x L matrix), built once per process through the compile
cache and called with ctypes. The contract is the one in kernels/__init__.py. A mask is summarized
per 64 x 64 tile first, so tiles it hides are skipped: a causal mask costs about what is_causal does.
"""
from __future__ import annotations

import array
import ctypes
import functools
import os

import torch

from ..codegen.cpp.build import build_module
from ..errors import FlashKernelError
from .attention_reference import broadcasts_to

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flash_attention.cpp")
_MASK_NONE, _MASK_BOOL, _MASK_FLOAT = 0, 1, 2

_p = ctypes.c_void_p
_i = ctypes.c_int


@functools.cache
def _library() -> ctypes.CDLL:
    with open(_SOURCE) as f:
        source = f.read()
    lib, _ = build_module(source)
    lib.ts_flash_fwd.restype = _i
    lib.ts_flash_fwd.argtypes = [_p, _p, _p, _p, _p, _p, _p, _i, _i, ctypes.c_float, _i]
    lib.ts_flash_bwd.restype = _i
    lib.ts_flash_bwd.argtypes = [_p, _p, _p, _p, _p, _p, _p, _p, _p, _p, _p, _i, _i, ctypes.c_float,
                                 _i, _i]
    return lib


def unsupported(q, k, v, mask) -> str | None:
    """Why this kernel cannot take these inputs, or None when it can. (Checked on every call
    before the C++ code reads the memory: written to cost about a microsecond.)"""
    for name, t in (("q", q), ("k", k), ("v", v), ("mask", mask)):
        if t is None and name == "mask":
            continue
        if not isinstance(t, torch.Tensor):
            return f"{name} is not a tensor"
        if not t.is_cpu:
            return f"{name} is on {t.device}, not the CPU"
        if t.dim() != 4:
            return f"{name} has {t.dim()} dimensions, not 4 (B, H, L, D)"
        if t.dtype is not torch.float32 and name != "mask":
            return f"{name} is {t.dtype}: the C++ flash kernel takes float32 only"
    B, H, Lq, D = q.shape
    if k.shape[:2] != (B, H) or k.shape[3] != D or v.shape != k.shape:
        return f"k {tuple(k.shape)} and v {tuple(v.shape)} do not match q {tuple(q.shape)}"
    if mask is not None:
        if mask.dtype != torch.bool and not mask.dtype.is_floating_point:
            return f"mask is {mask.dtype}, neither bool nor floating"
        full = (B, H, Lq, k.shape[2])
        if mask.shape != full and not broadcasts_to(tuple(mask.shape), full):
            return f"mask {tuple(mask.shape)} does not broadcast to {full}"
    return None


def _check(q, k, v, mask) -> None:
    reason = unsupported(q, k, v, mask)
    if reason is not None:
        raise FlashKernelError(reason)


def _mask_args(mask, shape):
    """(kind, mask as passed to the kernel, pointer, strides) of the mask seen as `shape`."""
    if mask is None:
        return _MASK_NONE, None, None, [0, 0, 0, 0]
    if mask.shape != shape:
        mask = mask.expand(shape)
    if mask.dtype == torch.bool:
        kind = _MASK_BOOL
    else:
        kind = _MASK_FLOAT
        if mask.dtype != torch.float32:
            # Convert only the stored part (the broadcast dimensions stay stride 0).
            index = tuple(slice(0, 1) if st == 0 else slice(None) for st in mask.stride())
            mask = mask[index].to(torch.float32).expand(shape)
    return kind, mask, mask.data_ptr(), list(mask.stride())


def _sizes(*values) -> array.array:
    """The int64 array of sizes and strides the kernels take (pass `.buffer_info()[0]`)."""
    return array.array("q", values)


def forward(q, k, v, mask, is_causal, scale):
    """(out, lse): out (B, H, Lq, D) float32 contiguous, lse (B, H, Lq) float32 natural log."""
    _check(q, k, v, mask)
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    out = torch.empty((B, H, Lq, D), dtype=torch.float32)
    lse = torch.empty((B, H, Lq), dtype=torch.float32)
    if B * H * Lq == 0:
        return out, lse
    kind, mask, mask_ptr, mask_strides = _mask_args(mask, (B, H, Lq, Lk))
    sizes = _sizes(B, H, Lq, Lk, D, *q.stride(), *k.stride(), *v.stride(), *mask_strides)
    code = _library().ts_flash_fwd(out.data_ptr(), lse.data_ptr(), q.data_ptr(), k.data_ptr(),
                                   v.data_ptr(), mask_ptr, sizes.buffer_info()[0], kind,
                                   int(bool(is_causal)), float(scale), torch.get_num_threads())
    if code:
        raise FlashKernelError("the C++ flash attention forward ran out of memory")
    return out, lse


def _use_fused(bh: int, threads: int) -> bool:
    """One pass per (batch, head) does five tile products instead of seven, but parallelises only
    over batch*head: take it when that keeps every thread about equally busy."""
    return threads <= 1 or bh % threads == 0 or bh >= 8 * threads


def backward(grad_out, q, k, v, out, lse, mask, is_causal, scale):
    """(dq, dk, dv), float32 contiguous, dk and dv (B, H, Lk, D) as k and v are given."""
    _check(q, k, v, mask)
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    dq = torch.empty((B, H, Lq, D), dtype=torch.float32)
    dk = torch.empty((B, H, Lk, D), dtype=torch.float32)
    dv = torch.empty((B, H, Lk, D), dtype=torch.float32)
    if B * H * D == 0 or Lq == 0 or Lk == 0:
        return dq.zero_(), dk.zero_(), dv.zero_()
    grad_out = grad_out.to(torch.float32)
    out = out.to(torch.float32).contiguous()
    lse = lse.to(torch.float32).contiguous()
    kind, mask, mask_ptr, mask_strides = _mask_args(mask, (B, H, Lq, Lk))
    sizes = _sizes(B, H, Lq, Lk, D, *grad_out.stride(), *q.stride(), *k.stride(), *v.stride(),
                   *mask_strides)
    threads = torch.get_num_threads()
    code = _library().ts_flash_bwd(dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), grad_out.data_ptr(),
                                   q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(),
                                   lse.data_ptr(), mask_ptr, sizes.buffer_info()[0], kind,
                                   int(bool(is_causal)), float(scale), threads,
                                   int(_use_fused(B * H, threads)))
    if code:
        raise FlashKernelError("the C++ flash attention backward ran out of memory")
    return dq, dk, dv
