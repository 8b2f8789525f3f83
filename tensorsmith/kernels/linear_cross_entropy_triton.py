"""Cross-entropy rows of one logits chunk on CUDA (and on the CPU under TRITON_INTERPRET=1, how the
tests run it): the chunk contract of linear_cross_entropy_op.py (`rows`) as one Triton kernel.

One program per row walks the vocabulary in blocks twice: first an online max and sum of
exponentials (the running sum rescaled when the max grows) with the row's sum for label smoothing,
then, for training, the gradient written over the logits in their dtype. Arithmetic is float32
whatever the logits' dtype (bfloat16/float16 rows are upcast on load), as eager's cross-entropy on
upcast logits. The mean's scale is read from device memory, so no call waits for the GPU.
"""
from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from triton import knobs

from .triton_mode import interpreting, kernel_module

_INTERPRETED = knobs.runtime.interpret  # how this copy's kernels were decorated
_combine = kernel_module("tensorsmith.kernels.triton_combine", _INTERPRETED)  # tl.sum/max stand-ins
_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_MAX_BLOCK = 4096


@triton.jit
def _rows_kernel(logits_ptr, stride, target_ptr, loss_ptr, scale_ptr, V, ignore_index, eps,
                 WRITE_GRAD: tl.constexpr, SMOOTHING: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * stride
    t = tl.load(target_ptr + row)
    ignored = t == ignore_index
    cols0 = tl.arange(0, BLOCK)
    m = tl.full((), float("-inf"), tl.float32)
    s = tl.full((), 0.0, tl.float32)
    sum_x = tl.full((), 0.0, tl.float32)
    for start in range(0, V, BLOCK):
        cols = start + cols0
        inside = cols < V
        x = tl.load(base + cols, mask=inside, other=float("-inf")).to(tl.float32)
        new_m = tl.maximum(m, tl.reduce(x, 0, _combine.maximum))
        shift = tl.where(new_m == float("-inf"), 0.0, new_m)  # no NaN from (-inf) - (-inf)
        s = s * tl.exp(m - shift) + tl.reduce(tl.exp(x - shift), 0, _combine.add)
        m = new_m
        if SMOOTHING:
            sum_x += tl.reduce(tl.where(inside, x, 0.0), 0, _combine.add)
    lse = m + tl.log(s)
    in_range = (t >= 0) & (t < V)
    x_t = tl.load(base + t, mask=in_range & (~ignored), other=0.0).to(tl.float32)
    loss = (1.0 - eps) * (lse - x_t)
    if SMOOTHING:
        loss += eps * (lse - sum_x / V)
    tl.store(loss_ptr + row, tl.where(ignored, 0.0, loss))
    if WRITE_GRAD:
        scale = tl.load(scale_ptr).to(tl.float32)
        scale = tl.where(ignored, 0.0, scale)
        hit = (1.0 - eps) * scale
        uniform = eps / V
        for start in range(0, V, BLOCK):
            cols = start + cols0
            inside = cols < V
            x = tl.load(base + cols, mask=inside, other=0.0).to(tl.float32)
            g = (tl.exp(x - lse) - uniform) * scale
            g = tl.where(cols == t, g - hit, g)
            g = tl.where(ignored, 0.0, g)  # (0 even where the row's loss is not finite)
            tl.store(base + cols, g.to(logits_ptr.dtype.element_ty), mask=inside)


def unsupported(logits: torch.Tensor) -> str | None:
    """Why this kernel cannot take chunks like `logits` (a fake tensor will do), or None."""
    if logits.device.type != "cuda" and not interpreting():
        return f"logits are on {logits.device}, not a CUDA device"
    if logits.dtype not in _DTYPES:
        return f"logits are {logits.dtype}: the Triton kernel takes float32, bfloat16 and float16"
    return None


def rows(logits, target, row_loss, ignore_index: int, label_smoothing: float, scale, write_grad: bool):
    """Each row's loss term into `row_loss` (float32); with `write_grad`, `logits` overwritten with
    `scale` * d loss / d logits. `logits` (n, V) has unit column stride; `scale` is a 0-d float32
    tensor on the logits' device. Out-of-range targets are the caller's check."""
    n, V = logits.shape
    if n == 0:
        return
    block = min(_MAX_BLOCK, triton.next_power_of_2(V))
    kernel = kernel_module("tensorsmith.kernels.linear_cross_entropy_triton", interpreting())._rows_kernel
    with torch.cuda.device(logits.device) if logits.is_cuda else contextlib.nullcontext():
        kernel[(n,)](logits, logits.stride(0), target, row_loss, scale, V, int(ignore_index),
                     float(label_smoothing), WRITE_GRAD=bool(write_grad),
                     SMOOTHING=label_smoothing != 0, BLOCK=block,
                     num_warps=8 if block >= 2048 else 4)
