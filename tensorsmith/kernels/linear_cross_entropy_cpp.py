"""Cross-entropy rows of one logits chunk on the CPU, float32 and float64: a C++ kernel
(linear_cross_entropy.cpp, OpenMP over rows) built once per process through the compile cache and
called with ctypes. The chunk contract is the one in linear_cross_entropy_op.py (`rows`)."""
from __future__ import annotations

import ctypes
import functools
import os

import torch

from ..codegen.cpp.build import build_module

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "linear_cross_entropy.cpp")
_DTYPES = (torch.float32, torch.float64)

_p = ctypes.c_void_p
_i64 = ctypes.c_int64


@functools.cache
def _library() -> ctypes.CDLL:
    with open(_SOURCE) as f:
        source = f.read()
    lib, _ = build_module(source)
    for name in ("ts_lce_rows_f32", "ts_lce_rows_f64"):
        fn = getattr(lib, name)
        fn.restype = _i64
        fn.argtypes = [_p, _p, _p, _i64, _i64, _i64, ctypes.c_double, ctypes.c_double, ctypes.c_int,
                       ctypes.c_int]
    return lib


def unsupported(logits: torch.Tensor) -> str | None:
    """Why this kernel cannot take chunks like `logits` (a fake tensor will do), or None."""
    if logits.device.type != "cpu":
        return f"logits are on {logits.device}, not the CPU"
    if logits.dtype not in _DTYPES:
        return f"logits are {logits.dtype}: the C++ kernel takes float32 and float64"
    return None


def rows(logits, target, row_loss, ignore_index: int, label_smoothing: float, scale, write_grad: bool):
    """Each row's loss term into `row_loss`; with `write_grad`, `logits` overwritten with
    `scale` * d loss / d logits. `logits` is contiguous (n, V); `target` (n,) int64."""
    n, V = logits.shape
    if n == 0:
        return
    target = target.contiguous()
    fn = _library().ts_lce_rows_f64 if logits.dtype == torch.float64 else _library().ts_lce_rows_f32
    bad = fn(logits.data_ptr(), target.data_ptr(), row_loss.data_ptr(), n, V, int(ignore_index),
             float(label_smoothing), float(scale), int(bool(write_grad)), torch.get_num_threads())
    if bad:
        raise IndexError(f"Target {int(target[bad - 1])} is out of bounds.")
