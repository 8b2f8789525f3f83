"""`tensorsmith::linear_cross_entropy`: a language model's last projection and its loss in one op
(frontend/linear_cross_entropy.py rewrites models into it), computed over chunks of rows so that
the N x V logits and their gradient never exist at once.

    loss = cross_entropy(x @ weight.T (+ bias), target, ignore_index, label_smoothing, reduction)

x is (N, D), weight (V, D), bias (V,) or None, target (N,) int64; reduction "mean" or "sum".
The logits are computed in x's dtype (as eager's linear), the loss in float32 (float64 for float64
inputs), as eager's cross-entropy on logits cast up to float32.

Two ops. `linear_cross_entropy_with_grads` -> (loss, grad_x, grad_weight, grad_bias) is the
training form: per chunk, logits = x_chunk @ W.T (a library product), one kernel turns them into
their loss terms and overwrites them with d loss / d logits, and the products grad @ W and
grad.T @ x_chunk consume that chunk before the next one exists. Its autograd formula scales the
saved gradients by the incoming grad of the loss, so AOTAutograd saves D-sized tensors only.
`linear_cross_entropy` -> loss is the inference form (no gradient work); its backward, should one
be asked for, recomputes through the training form. grad_bias is empty (0,) without a bias.

The per-chunk kernel (`rows`) is chosen by device and dtype at run time: Triton on CUDA
(linear_cross_entropy_triton.py), C++ on the CPU (linear_cross_entropy_cpp.py), plain torch ops
(linear_cross_entropy_reference.py) for what neither takes.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import warnings
from types import ModuleType

import torch
from torch import Tensor

from ..errors import FallbackWarning, is_triton_compile_error
from . import linear_cross_entropy_reference

REDUCTIONS = ("mean", "sum")
_MAX_CHUNK_BYTES = 256 * 2**20  # one chunk's logits at most
_MIN_CHUNKS = 4  # small problems still run in a few chunks, so their peak is a fraction of N x V


@functools.cache
def _module(name: str) -> ModuleType | None:
    """A kernel module, or None where its compiler is missing (Triton not installed)."""
    if name.endswith("triton") and importlib.util.find_spec("triton") is None:
        return None
    return importlib.import_module(f"{__package__}.{name}")


def kernel_for(logits: Tensor) -> ModuleType:
    """The module whose `rows` takes chunks like `logits` (a fake tensor will do)."""
    name = {"cuda": "linear_cross_entropy_triton", "cpu": "linear_cross_entropy_cpp"}.get(logits.device.type)
    module = _module(name) if name else None
    if module is None or module.unsupported(logits) is not None:
        return linear_cross_entropy_reference
    return module


def chunk_rows(n: int, v: int, itemsize: int) -> int:
    """Rows per chunk: a power of two, the chunk's logits at most _MAX_CHUNK_BYTES and at most
    about 1/_MIN_CHUNKS of all of them."""
    fit = max(1, _MAX_CHUNK_BYTES // max(1, v * itemsize))
    share = max(1, -(-n // _MIN_CHUNKS))
    return min(1 << (fit.bit_length() - 1), 1 << (share - 1).bit_length())


def loss_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_targets(target: Tensor, v: int, ignore_index: int) -> None:
    """Out-of-range targets fail as eager's do: an error on the CPU, a device assert on CUDA."""
    bad = ((target < 0) | (target >= v)) & (target != ignore_index)
    if target.is_cuda:
        torch._assert_async(~bad.any(), "linear_cross_entropy: target out of bounds")
    elif bool(bad.any()):
        raise IndexError(f"Target {int(target[bad][0])} is out of bounds.")


def compute(x: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor, ignore_index: int,
            label_smoothing: float, reduction: str, with_grads: bool, rows_per_chunk: int | None = None,
            logits: Tensor | None = None):
    """loss, or (loss, grad_x, grad_weight, grad_bias) with `with_grads`: the ops' computation.
    `logits`: x @ weight.T (+ bias) where the model computed them anyway (it also returns them):
    each chunk is copied from them instead of computed again."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"linear_cross_entropy: reduction {reduction!r} is not one of {REDUCTIONS}")
    n, v = x.shape[0], weight.shape[0]
    acc = loss_dtype(x.dtype)
    row_loss = torch.empty(n, dtype=acc, device=x.device)
    valid = (target != ignore_index).sum()
    scale = (1.0 / valid.to(acc)) if reduction == "mean" else torch.ones((), dtype=acc, device=x.device)
    if with_grads:
        grad_x = torch.empty(x.shape, dtype=x.dtype, device=x.device)
        grad_w = torch.zeros(weight.shape, dtype=acc, device=x.device)
        grad_b = torch.zeros(v if bias is not None else 0, dtype=acc, device=x.device)
    rows = rows_per_chunk or chunk_rows(n, v, x.element_size())
    given = logits
    kernel = None
    for start in range(0, n, rows):
        xc = x[start:start + rows]
        if given is not None:
            logits = given[start:start + rows].clone(memory_format=torch.contiguous_format)
        elif bias is None:
            logits = torch.mm(xc, weight.t())
        else:
            logits = torch.addmm(bias, xc, weight.t())
        if kernel is None:
            kernel = kernel_for(logits)
            if kernel is not _module("linear_cross_entropy_cpp"):  # (the C++ kernel checks its own)
                _check_targets(target, v, ignore_index)
            if kernel is _module("linear_cross_entropy_cpp"):
                scale = float(scale)
        kernel = _rows(kernel, logits, target[start:start + rows], row_loss[start:start + rows],
                       ignore_index, label_smoothing, scale, with_grads)
        if with_grads:  # logits now hold d loss / d logits
            torch.mm(logits, weight, out=grad_x[start:start + rows])
            if grad_w.dtype == logits.dtype:
                grad_w.addmm_(logits.t(), xc)
            else:
                grad_w.add_(torch.mm(logits.t(), xc))
            if bias is not None:
                grad_b.add_(logits.sum(0, dtype=acc))
        del logits
    total = row_loss.sum()
    loss = total / valid.to(acc) if reduction == "mean" else total
    if not with_grads:
        return loss
    return loss, grad_x, grad_w.to(weight.dtype), grad_b.to(x.dtype if bias is None else bias.dtype)


_FAILED: set[str] = set()  # row kernels that failed to compile: the reference serves from then on


def _rows(kernel: ModuleType, logits: Tensor, *args) -> ModuleType:
    """kernel.rows(logits, *args); where a Triton kernel fails to compile (it raises before writing
    anything), the reference's rows instead, from then on, with a FallbackWarning. Returns the
    module that ran."""
    if kernel.__name__ in _FAILED:
        kernel = linear_cross_entropy_reference
    try:
        kernel.rows(logits, *args)
        return kernel
    except Exception as e:
        if kernel is linear_cross_entropy_reference or not is_triton_compile_error(e):
            raise
        _FAILED.add(kernel.__name__)
        warnings.warn(FallbackWarning(f"tensorsmith: the chunked cross-entropy's Triton kernel did not "
                                      f"compile ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                                      f"its rows run as PyTorch ops"), stacklevel=2)
        linear_cross_entropy_reference.rows(logits, *args)
        return linear_cross_entropy_reference


@torch.library.custom_op("tensorsmith::linear_cross_entropy_with_grads", mutates_args=())
def linear_cross_entropy_with_grads(x: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor,
                                    ignore_index: int, label_smoothing: float, reduction: str,
                                    logits: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(loss, grad_x, grad_weight, grad_bias) of the loss itself (a grad_output of 1). `logits`, the
    model's own x @ weight.T (+ bias) where it keeps them, is read, not differentiated: the loss's
    dependence on them is its dependence on x, weight and bias, whose gradients this op gives."""
    return compute(x, weight, bias, target, ignore_index, label_smoothing, reduction, True, logits=logits)


@linear_cross_entropy_with_grads.register_fake
def _(x, weight, bias, target, ignore_index, label_smoothing, reduction, logits=None):
    grad_b = bias.new_empty(bias.shape) if bias is not None else x.new_empty((0,))
    return (x.new_empty((), dtype=loss_dtype(x.dtype)), x.new_empty(x.shape),
            weight.new_empty(weight.shape), grad_b)


def _setup_with_grads(ctx, inputs, output):
    ctx.save_for_backward(*output[1:])
    ctx.has_bias = inputs[2] is not None
    ctx.mark_non_differentiable(*output[1:])


def _backward_with_grads(ctx, grad_loss, *_):
    grad_x, grad_w, grad_b = ctx.saved_tensors
    return (grad_x * grad_loss, grad_w * grad_loss, grad_b * grad_loss if ctx.has_bias else None,
            None, None, None, None, None)


linear_cross_entropy_with_grads.register_autograd(_backward_with_grads, setup_context=_setup_with_grads)


@torch.library.custom_op("tensorsmith::linear_cross_entropy", mutates_args=())
def linear_cross_entropy(x: Tensor, weight: Tensor, bias: Tensor | None, target: Tensor, ignore_index: int,
                         label_smoothing: float, reduction: str, logits: Tensor | None = None) -> Tensor:
    """The loss, without gradient work (inference); `logits` as for the training form."""
    return compute(x, weight, bias, target, ignore_index, label_smoothing, reduction, False, logits=logits)


@linear_cross_entropy.register_fake
def _(x, weight, bias, target, ignore_index, label_smoothing, reduction, logits=None):
    return x.new_empty((), dtype=loss_dtype(x.dtype))


def _setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:4])
    ctx.args = inputs[4:7]
    ctx.has_bias = inputs[2] is not None


def _backward(ctx, grad_loss):
    x, weight, bias, target = ctx.saved_tensors
    _, grad_x, grad_w, grad_b = linear_cross_entropy_with_grads(x, weight, bias, target, *ctx.args)
    return (grad_x * grad_loss, grad_w * grad_loss, grad_b * grad_loss if ctx.has_bias else None,
            None, None, None, None, None)


linear_cross_entropy.register_autograd(_backward, setup_context=_setup)
