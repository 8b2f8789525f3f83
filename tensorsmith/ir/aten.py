"""The bridge between ATen calls and fallback nodes: naming ops and (de)serializing arguments."""
from __future__ import annotations

from typing import Callable

import torch

from .attrs import Operand, TorchEnum
from .sizes import Sym
from .types import DType, dtype_from_torch


def target_name(op: torch._ops.OpOverload) -> str:
    """The stable name of an ATen overload, e.g. "aten.cumsum.default"."""
    return f"{op.namespace}.{op._schema.name.split('::')[-1]}.{op._overloadname}"


# Fused kernels PyTorch already has, which a graph calls as library steps by design (attention kept
# whole, see frontend/attention.py; a convolution's gradients, cuDNN's or oneDNN's, as its forward
# is). They take strided inputs as they are.
LIBRARY_KERNELS = frozenset(f"aten.{name}.default" for name in (
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward",
    "convolution_backward",
    "topk",  # a selection, not a loop nest: ATen's, as Inductor also calls it (MoE routers)
    )) | {
    "tensorsmith.attention.default", "tensorsmith.attention_backward.default",  # kernels/attention_op.py
    "tensorsmith.linear_cross_entropy.default",  # kernels/linear_cross_entropy_op.py
    "tensorsmith.linear_cross_entropy_with_grads.default"}


# Which argument of a library kernel is an attention bias that PyTorch's memory-efficient kernel
# reads with a unit last stride and 16-element-aligned rows. Eager's SDPA pads and slices the mask to
# that layout before the call; in a graph the pad and slice may simplify away to a plain (or
# broadcast) view, so the step lays the bias out again (`aligned_bias`). Positions of the bias and
# of the key among the arguments.
ALIGNED_BIAS = {"aten._scaled_dot_product_efficient_attention.default": (3, 1),
                "aten._scaled_dot_product_efficient_attention_backward.default": (4, 2)}


def aligned_bias(bias: torch.Tensor, keys: int) -> torch.Tensor:
    """`bias` over `keys` key positions with a unit last stride and rows starting at multiples of
    16 elements (a padded copy sliced back, as eager's SDPA makes it); itself when it already is
    so. A bias broadcast along the keys (last size 1) is expanded first: the kernel takes it whole."""
    if bias.size(-1) == 1 and keys != 1:
        bias = bias.expand(*bias.shape[:-1], keys)
    rows_aligned = all(s % 16 == 0 for s, n in zip(bias.stride()[:-1], bias.shape[:-1]) if n > 1)
    if bias.stride(-1) == 1 and rows_aligned:
        return bias
    last = bias.size(-1)
    padded = bias.new_zeros(*bias.shape[:-1], last + -last % 16)
    padded[..., :last] = bias
    return padded[..., :last]


def may_alias_arguments(name: str) -> bool:
    """Whether the op's schema lets a result alias an argument (a view, as `split`'s results are).
    An op whose schema says otherwise returns new tensors: ATen's functional ops, and custom ops,
    which torch.library forbids to return their inputs."""
    try:
        returns = resolve_target(name)._schema.returns
    except (AttributeError, RuntimeError, ValueError):
        return True
    return any(r.alias_info is not None for r in returns)


def resolve_target(name: str) -> torch._ops.OpOverload:
    namespace, op, overload = name.split(".")
    return getattr(getattr(getattr(torch.ops, namespace), op), overload)


def to_attr(value, tensor_operand: Callable[[object], int]):
    """An ATen argument as an attribute value; tensors become Operand(tensor_operand(value))."""
    if value is None or isinstance(value, (bool, int, float, str, Sym)):
        return value
    if isinstance(value, (list, tuple)):
        return [to_attr(v, tensor_operand) for v in value]
    if isinstance(value, torch.dtype):
        return dtype_from_torch(value)
    if isinstance(value, torch.device):
        return TorchEnum("device", str(value))
    if isinstance(value, torch.layout):
        return TorchEnum("layout", str(value).removeprefix("torch."))
    if isinstance(value, torch.memory_format):
        return TorchEnum("memory_format", str(value).removeprefix("torch."))
    return Operand(tensor_operand(value))


def from_attr(value, operands: list, map_dtype: Callable[[DType], torch.dtype]):
    """The inverse of to_attr, with operand tensors and a dtype mapping (for float64 runs)."""
    if isinstance(value, Operand):
        return operands[value.index]
    if isinstance(value, DType):
        return map_dtype(value)
    if isinstance(value, TorchEnum):
        if value.kind == "device":
            return torch.device(value.value)
        return getattr(torch, value.value)
    if isinstance(value, list):
        return [from_attr(v, operands, map_dtype) for v in value]
    if isinstance(value, dict):
        return {k: from_attr(v, operands, map_dtype) for k, v in value.items()}
    return value
