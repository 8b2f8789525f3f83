"""`tensorsmith::attention`: the op fused attention becomes (frontend/attention.py), and its backward.

One custom op with a registered backward, so that AOTAutograd differentiates it as a whole: the
forward graph saves q, k, v, the output and the log-sum-exp, and the backward graph calls
`tensorsmith::attention_backward`, which recomputes the probabilities tile by tile. Both run as
library steps (ir/aten.py LIBRARY_KERNELS) and dispatch by device at run time: our Triton kernels on
CUDA (kernels/flash_triton.py), our C++ kernels on the CPU (kernels/flash_cpp.py), and the
definition itself (kernels/attention_reference.py) for what neither takes (float64 reference runs).

q, k, v are (B, H, L, D); mask is None or broadcastable to (B, H, Lq, Lk), bool (True = attend) or
floating (added to the scores). The mask is not differentiated: a learned bias is never rewritten
into this op, and asking for its gradient raises instead of silently returning none.
"""
from __future__ import annotations

import functools
import importlib.util
from types import ModuleType

import torch
from torch import Tensor

from . import attention_reference


@functools.cache
def _module(name: str) -> ModuleType | None:
    """A kernel module, or None where its compiler is missing (Triton not installed)."""
    if name == "flash_triton" and importlib.util.find_spec("triton") is None:
        return None
    return importlib.import_module(f"{__package__}.{name}")


def kernels_for(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> ModuleType | None:
    """The module whose kernels take these inputs (fake tensors will do), or None."""
    name = {"cuda": "flash_triton", "cpu": "flash_cpp"}.get(q.device.type)
    module = _module(name) if name else None
    if module is None or module.unsupported(q, k, v, mask) is not None:
        return None
    return module


def _full_mask(mask: Tensor | None, q: Tensor, k: Tensor) -> Tensor | None:
    """The mask as a (B, H, Lq, Lk) view (stride 0 where it broadcasts), as the kernels take it."""
    if mask is None:
        return None
    return mask.expand(*q.shape[:-1], k.shape[-2])


def precompile(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool) -> None:
    """Compile, without running anything, the kernels a call with inputs like these (fake tensors
    do) would launch, forward and backward, where the kernel module can (Triton: at graph compile
    time in the background, instead of at the first step on the calling thread)."""
    mask = _full_mask(mask, q, k)
    module = kernels_for(q, k, v, mask)
    if module is not None and hasattr(module, "precompile"):
        module.precompile(q, k, v, mask, is_causal)


def _run(q, k, v, mask):
    return kernels_for(q, k, v, mask) or attention_reference


def attention_impl(q, k, v, mask, is_causal, scale):
    """The op's computation, which the runtime calls directly (runtime/compiled.py): a call through
    the dispatcher adds the custom op's autograd and alias checks, ~30 us of host time each."""
    mask = _full_mask(mask, q, k)
    return _run(q, k, v, mask).forward(q, k, v, mask, is_causal, scale)


def attention_backward_impl(grad_out, q, k, v, out, lse, mask, is_causal, scale):
    """attention_backward's computation, called directly likewise."""
    mask = _full_mask(mask, q, k)
    return _run(q, k, v, mask).backward(grad_out, q, k, v, out, lse, mask, is_causal, scale)


# The ops' qualified names (ir/aten.py's target strings) -> their computations.
DIRECT = {"tensorsmith.attention.default": attention_impl,
          "tensorsmith.attention_backward.default": attention_backward_impl}


@torch.library.custom_op("tensorsmith::attention", mutates_args=())
def attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None, is_causal: bool,
              scale: float) -> tuple[Tensor, Tensor]:
    """(out, lse): softmax(scale * q @ k^T + mask) @ v and its log-sum-exp per query (float32)."""
    return attention_impl(q, k, v, mask, is_causal, scale)


@attention.register_fake
def _(q, k, v, mask, is_causal, scale):
    lse_dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
    return q.new_empty(q.shape), q.new_empty(q.shape[:-1], dtype=lse_dtype)


@torch.library.custom_op("tensorsmith::attention_backward", mutates_args=())
def attention_backward(grad_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor,
                       mask: Tensor | None, is_causal: bool, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """(dq, dk, dv) of `attention`, recomputing the probabilities from q, k and the saved lse."""
    return attention_backward_impl(grad_out, q, k, v, out, lse, mask, is_causal, scale)


@attention_backward.register_fake
def _(grad_out, q, k, v, out, lse, mask, is_causal, scale):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _setup_context(ctx, inputs, output):
    q, k, v, mask, is_causal, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, out, lse, mask)
    ctx.is_causal, ctx.scale = is_causal, scale


def _backward(ctx, grad_out, _grad_lse):
    q, k, v, out, lse, mask = ctx.saved_tensors
    if ctx.needs_input_grad[3]:
        raise NotImplementedError("tensorsmith::attention does not differentiate its mask (a learned "
                                  "attention bias); such attention must not be rewritten into it")
    if grad_out is None:
        return None, None, None, None, None, None
    dq, dk, dv = attention_backward(grad_out, q, k, v, out, lse, mask, ctx.is_causal, ctx.scale)
    return dq, dk, dv, None, None, None


attention.register_autograd(_backward, setup_context=_setup_context)


def _under_autocast(device_type: str):
    """The op under autocast, as autocast runs scaled_dot_product_attention on both devices: its
    floating-point q, k, v and mask in autocast's dtype (whichever the caller chose), computed with
    autocast off."""
    def kernel(q, k, v, mask, is_causal, scale):
        dtype = torch.get_autocast_dtype(device_type)
        q, k, v, mask = (t.to(dtype) if t is not None and t.is_floating_point() else t for t in (q, k, v, mask))
        with torch.autocast(device_type, enabled=False):
            return attention(q, k, v, mask, is_causal, scale)
    return kernel


_AUTOCAST = torch.library.Library("tensorsmith", "IMPL")
for _device in ("cuda", "cpu"):
    _AUTOCAST.impl("attention", _under_autocast(_device), "Autocast" + _device.upper())
