"""The lowering registry: one small function per ATen op, registered with `@lower(aten.op, ...)`.

A lowering receives a LoweringContext and the op's arguments, with tensors already IR nodes and
symbolic sizes already ints, and returns an IR node (or a tuple of them). It raises
UnsupportedError for argument combinations it does not handle; the importer then emits a fallback.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND, elementwise_dtypes

from ...errors import UnsupportedError
from ...ir.graph import Graph, Node
from ...ir.sizes import Sym, is_symbolic, provably
from ...ir.types import BOOL, DType, dtype_from_torch

LOWERINGS: dict[torch._ops.OpOverload, Callable] = {}


def lower(*ops):
    def register(fn):
        for op in ops:
            LOWERINGS[op] = fn
        return fn
    return register


def unsupported(message: str):
    raise UnsupportedError(message)


def broadcast_shapes(*shapes) -> tuple:
    if shapes and provably(lambda: all(s == shapes[0] for s in shapes[1:])):  # most: no broadcast
        return tuple(shapes[0])
    if is_symbolic(shapes):
        return _broadcast_symbolic(shapes)
    try:
        return tuple(torch.broadcast_shapes(*shapes))
    except RuntimeError as e:
        raise UnsupportedError(str(e)) from None


def _broadcast_symbolic(shapes) -> tuple:
    """Broadcasting where sizes may be symbolic: a size broadcasts only where it is 1 for every
    value of its symbols (an undecided question raises SymbolicUnsupported)."""
    rank = max(len(s) for s in shapes)
    result = []
    for d in range(rank):
        sizes = [s[len(s) - rank + d] for s in shapes if len(s) - rank + d >= 0]
        size = next((n for n in sizes if n != 1), 1)
        if any(n != 1 and n != size for n in sizes):
            raise UnsupportedError(f"shapes {[list(s) for s in shapes]} do not broadcast")
        result.append(size)
    return tuple(result)


def _dummy(value):
    """A tiny stand-in with the same promotion category as `value`, for torch.result_type."""
    if isinstance(value, Node):
        shape = () if value.type.rank == 0 else (1,)
        return torch.empty(shape, dtype=value.type.dtype.torch_dtype)
    if isinstance(value, Sym):  # a size: promotes as the Python int it stands for
        return 0
    return value


# result_dtype's answers: promotion depends only on each operand's dtype and whether it is a
# zero-dim tensor, or on a scalar's Python type, and on the default dtype; asking PyTorch costs a
# dummy tensor per operand, for every elementwise op imported.
_PROMOTIONS: dict[tuple, DType] = {}
_SCALAR_TYPES = (bool, int, float, complex)


def _promotion_key(values) -> tuple | None:
    """What type promotion over `values` depends on, or None when a value is of an unusual kind."""
    key = [torch.get_default_dtype()]
    for v in values:
        if isinstance(v, Node):
            key.append((v.type.dtype, v.type.rank == 0))
        elif type(v) in _SCALAR_TYPES:
            key.append(type(v))
        elif isinstance(v, Sym):
            key.append(int)
        else:
            return None
    return tuple(key)


def _wrap_integer(value: int, dtype: DType) -> int:
    """`value` cast to an integer type the way ATen casts a Python number operand (two's
    complement wraparound): uint8 tensor + 300 adds 44, and uint8 tensor == 256 compares with 0."""
    info = torch.iinfo(dtype.torch_dtype)
    return (value - info.min) % (info.max - info.min + 1) + info.min


class LoweringContext:
    """What a lowering may use: the graph under construction and helpers that emit common patterns."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.source: str | None = None  # the user's source line of the FX node being lowered
        self.meta = None  # the FX node's fake value (its dtype is exact; shapes may be symbolic)
        self.fx_node = None  # the FX node being lowered (for the eager layout of its arguments)

    def add(self, op: str, inputs, attrs: dict | None = None, type=None) -> Node:
        return self.graph.add(op, inputs, attrs, type, source=self.source)

    # -- types ---------------------------------------------------------------------------------
    def result_dtype(self, *values) -> DType:
        """PyTorch's default type promotion over tensors (IR nodes) and Python scalars."""
        values = [v for v in values if v is not None]
        key = _promotion_key(values)
        result = _PROMOTIONS.get(key) if key is not None else None
        if result is None:
            _, promoted = elementwise_dtypes(*[_dummy(v) for v in values],
                                             type_promotion_kind=ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT)
            result = dtype_from_torch(promoted)
            if key is not None:
                _PROMOTIONS[key] = result
        return result

    def device_of(self, *values) -> str:
        for v in values:
            if isinstance(v, Node):
                return v.type.device
        if self.meta is not None and isinstance(self.meta, torch.Tensor):
            return str(self.meta.device)
        return "cpu"

    @property
    def out_dtype(self) -> DType:
        if not isinstance(self.meta, torch.Tensor):
            unsupported("the op's result type is unknown")
        return dtype_from_torch(self.meta.dtype)

    # -- building blocks ----------------------------------------------------------------------
    def constant(self, value, dtype: DType, device: str, shape=()) -> Node:
        """A constant of `dtype`; a symbolic size stays symbolic (kernels compute it from the sizes
        of each call, converted to `dtype`), except where that would need a wrap or a bool."""
        if isinstance(value, Sym):
            if dtype.is_bool or (dtype.is_integer and dtype.torch_dtype != torch.int64):
                unsupported(f"the size {value} as {dtype}")
            return self.add("constant", [], {"value": value, "shape": list(shape), "dtype": dtype,
                                             "device": device})
        if dtype.is_bool:
            value = bool(value)
        elif dtype.is_integer:
            if isinstance(value, float) and not value.is_integer():
                unsupported(f"scalar {value} does not fit integer type {dtype}")
            value = _wrap_integer(int(value), dtype)
        else:
            value = float(value)
        return self.add("constant", [], {"value": value, "shape": list(shape), "dtype": dtype,
                                         "device": device})

    def convert(self, x: Node, dtype: DType) -> Node:
        return x if x.type.dtype == dtype else self.add("convert", [x], {"dtype": dtype})

    def broadcast_to(self, x: Node, shape) -> Node:
        """Numpy-style broadcast of `x` to `shape` (trailing dimensions aligned)."""
        shape = list(shape)
        if list(x.type.shape) == shape:
            return x
        offset = len(shape) - x.type.rank
        if offset < 0:
            unsupported(f"cannot broadcast {x.type} to {shape}")
        return self.add("broadcast_in_dim", [x], {"shape": shape,
                                                  "dims": list(range(offset, len(shape)))})

    def reshape(self, x: Node, shape) -> Node:
        shape = list(shape)
        return x if list(x.type.shape) == shape else self.add("reshape", [x], {"shape": shape})

    def operands(self, *values, dtype: DType | None = None) -> list[Node]:
        """Tensors and scalars promoted to one dtype (the promoted one unless given) and broadcast
        to one shape, ready for an elementwise op."""
        dtype = dtype or self.result_dtype(*values)
        device = self.device_of(*values)
        shape = broadcast_shapes(*[v.type.shape for v in values if isinstance(v, Node)])
        result = []
        for v in values:
            node = self.convert(v, dtype) if isinstance(v, Node) else self.constant(v, dtype, device)
            result.append(self.broadcast_to(node, shape))
        return result

    def elementwise(self, op: str, *values, dtype: DType | None = None, attrs=None) -> Node:
        return self.add(op, self.operands(*values, dtype=dtype), attrs)

    def compare(self, direction: str, a, b) -> Node:
        return self.add("compare", self.operands(a, b), {"dir": direction})

    def select(self, pred: Node, on_true, on_false, dtype: DType | None = None) -> Node:
        a, b = self.operands(on_true, on_false, dtype=dtype)
        shape = broadcast_shapes(pred.type.shape, a.type.shape)
        pred = self.broadcast_to(self.convert(pred, BOOL), shape)
        return self.add("select", [pred, self.broadcast_to(a, shape), self.broadcast_to(b, shape)])

    def reduce(self, x: Node, kind: str, dims, keepdim: bool = False) -> Node:
        dims = sorted({d % x.type.rank for d in dims}) if x.type.rank else []
        out = self.add("reduce", [x], {"kind": kind, "dims": dims})
        if keepdim:
            out = self.reshape(out, [1 if i in dims else s for i, s in enumerate(x.type.shape)])
        return out


def normalize_dim(dim: int, rank: int) -> int:
    if not -max(rank, 1) <= dim < max(rank, 1):
        unsupported(f"dimension {dim} out of range for rank {rank}")
    return dim % max(rank, 1)
