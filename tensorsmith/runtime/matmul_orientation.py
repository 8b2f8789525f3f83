"""Which way round a matrix product runs on CUDA: a @ b, or (b^T @ a^T)^T, measured once per
signature.

cuBLAS picks its kernel by the operands' shapes and layouts, and for the same product one
orientation can be much faster than the other: the transposed one for some shapes, the one as
written for others; no simple rule of shapes predicts it. So the first call of each signature
(shapes, strides, dtype, device, TF32 setting) times both, the copy included (a library step hands
out row-major results), and later calls take the faster; the transposed one only when it wins by
MARGIN, so that timing noise does not pick it. The choices are kept on disk with the compile cache
(choices.py), so a warm start times nothing. Nothing is timed while a CUDA graph is being
captured (the replay would repeat the timing launches): a signature first met there runs as written.

The two orientations sum the same products in another order: results agree to rounding, as any two
cuBLAS kernels do.
"""
from __future__ import annotations

import functools

import torch

from ..choices import Choices
from . import cpu_matmul

MARGIN = 0.95  # the transposed product must take at most this share of the straight one's time
_REPEATS = 5
_CHOICE = Choices("matmul_orientation")  # signature -> run transposed


@functools.cache
def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _signature(a: torch.Tensor, b: torch.Tensor) -> tuple:
    return (tuple(a.shape), a.stride(), tuple(b.shape), b.stride(), a.dtype, b.dtype, a.device,
            _device_name(a.device), torch.backends.cuda.matmul.allow_tf32)


def _straight(a, b):
    return torch.matmul(a, b)


def _transposed(a, b):
    return torch.matmul(b.mT, a.mT).mT.contiguous()


def _time(fn, a, b) -> float:
    """Milliseconds per call of fn(a, b) on the current stream, after one warm-up call."""
    fn(a, b)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(_REPEATS):
        fn(a, b)
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / _REPEATS


def _choose(a, b) -> bool:
    if a.is_cuda and torch.cuda.is_current_stream_capturing():
        return False  # not remembered: measured at the next call outside a capture
    straight, transposed = _time(_straight, a, b), _time(_transposed, a, b)
    choice = transposed <= MARGIN * straight
    _CHOICE[_signature(a, b)] = choice
    return choice


def _eligible(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.is_cuda and a.dim() == 2 and b.dim() == 2 and a.dtype.is_floating_point


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, row-major; on CUDA, 2-D floating operands run in the orientation measured faster;
    on the CPU, 2-D float32 ones through the library measured faster (cpu_matmul.py)."""
    if cpu_matmul.eligible(a, b):
        return cpu_matmul.matmul(a, b)
    if not _eligible(a, b):
        return _straight(a, b)
    choice = _CHOICE.get(_signature(a, b))
    if choice is None:
        choice = _choose(a, b)
    return _transposed(a, b) if choice else _straight(a, b)
