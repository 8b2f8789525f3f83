"""A library call's per-call input views in one step. A static chain of reshapes, transposes and
slices applied to a contiguous tensor is one (size, stride, offset) of its storage, worked out once
here on a meta tensor; a call whose input is contiguous gets that view directly, in one call where
the chain makes one PyTorch call per view (as Inductor's generated code does), and any other input
goes through the chain as PyTorch applies it (a reshape may then copy).
"""
from __future__ import annotations

import torch

from ..ir.graph import Node
from ..ir.interpret import Interpreter
from ..ir.sizes import is_symbolic

_CHAIN_OPS = ("reshape", "transpose", "slice")


def as_strided_from(tensor, size, stride, offset: int):
    """The tensor's storage seen as (size, stride) from `offset` elements past the tensor's start."""
    return tensor.as_strided(size, stride, tensor.storage_offset() + offset)


# as_strided_from without view tracking (what Inductor's wrappers call), where this torch has it.
_REINTERPRET = getattr(getattr(getattr(torch._C, "_dynamo", None), "guards", None),
                       "_reinterpret_tensor", None) or as_strided_from


def bind(chain: list[Node], interpreter: Interpreter):
    """`interpreter.bind_views(chain)`, with a direct view for contiguous inputs where the chain is
    static."""
    slow = interpreter.bind_views(chain)
    source = chain[0].inputs[0].type
    if any(v.op not in _CHAIN_OPS for v in chain) or is_symbolic([source.shape, *(v.attrs for v in chain)]):
        return slow
    meta = slow(torch.empty(source.shape, dtype=source.dtype.torch_dtype, device="meta"))
    size, stride, offset = tuple(meta.shape), tuple(meta.stride()), meta.storage_offset()
    reinterpret = _REINTERPRET

    def apply(tensor):
        if tensor.is_contiguous():
            return reinterpret(tensor, size, stride, offset)
        return slow(tensor)
    return apply
