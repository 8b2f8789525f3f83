"""The `dm.<name>` math functions of generated Triton code under TRITON_INTERPRET=1: the
interpreter's tiles hold numpy arrays, computed here by PyTorch's CPU functions (the interpreter
cannot run libdevice, which device_math.py uses on a GPU)."""
from __future__ import annotations

import torch
import triton.language as tl

NAMES = ("exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "erf", "asin", "acos",
         "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "exp2", "floor", "ceil",
         "rint", "trunc", "pow", "atan2", "fmod")
_TORCH = {"rint": torch.round}


def _torch_function(name: str):
    fn = _TORCH.get(name) or getattr(torch, name)

    def apply(*args):
        from triton.runtime.interpreter import TensorHandle

        dtype = args[0].dtype
        result = fn(*(torch.from_numpy(a.handle.data) for a in args)).numpy()
        result = result.astype(args[0].handle.data.dtype)
        ty = tl.block_type(dtype, list(result.shape)) if result.ndim else dtype
        return tl.tensor(TensorHandle(result, dtype), ty)
    apply.__name__ = name
    return apply


for _name in NAMES:
    globals()[_name] = _torch_function(_name)
