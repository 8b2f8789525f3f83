"""Types of IR values: element types, tensor types (shape, dtype, device) and tuples.

Types are immutable and print as stable text, e.g. ``f32[8,128]@cpu``, ``(f32[4]@cpu, i64[4]@cpu)``,
or with a symbolic size (ir/sizes.py) ``f32[<s0>,768]@cpu``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .sizes import Sym


@dataclass(frozen=True)
class DType:
    """An element type; `name` is its spelling in IR text."""

    name: str
    torch_dtype: torch.dtype

    @property
    def is_float(self) -> bool:
        return self.torch_dtype.is_floating_point

    @property
    def is_complex(self) -> bool:
        return self.torch_dtype.is_complex

    @property
    def is_bool(self) -> bool:
        return self.torch_dtype == torch.bool

    @property
    def is_integer(self) -> bool:
        return not (self.is_float or self.is_complex or self.is_bool)

    def __repr__(self) -> str:
        return self.name


F16 = DType("f16", torch.float16)
BF16 = DType("bf16", torch.bfloat16)
F32 = DType("f32", torch.float32)
F64 = DType("f64", torch.float64)
I8 = DType("i8", torch.int8)
I16 = DType("i16", torch.int16)
I32 = DType("i32", torch.int32)
I64 = DType("i64", torch.int64)
U8 = DType("u8", torch.uint8)
BOOL = DType("bool", torch.bool)
C64 = DType("c64", torch.complex64)
C128 = DType("c128", torch.complex128)

ALL_DTYPES = (F16, BF16, F32, F64, I8, I16, I32, I64, U8, BOOL, C64, C128)
DTYPES_BY_NAME = {d.name: d for d in ALL_DTYPES}
_DTYPES_BY_TORCH = {d.torch_dtype: d for d in ALL_DTYPES}


def dtype_from_torch(dtype: torch.dtype) -> DType:
    """The IR element type of a torch dtype; raises KeyError for ones the IR cannot express."""
    return _DTYPES_BY_TORCH[dtype]


@dataclass(frozen=True)
class TensorType:
    """A dense tensor of `shape` (ints, or symbolic sizes: ir/sizes.py), element type `dtype`, on
    `device` (e.g. "cpu", "cuda:0")."""

    shape: tuple
    dtype: DType
    device: str = "cpu"

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(s if isinstance(s, Sym) else int(s) for s in self.shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(shape), self.dtype, self.device)

    def with_dtype(self, dtype: DType) -> "TensorType":
        return TensorType(self.shape, dtype, self.device)

    @staticmethod
    def of(tensor: torch.Tensor) -> "TensorType":
        return TensorType(tuple(tensor.shape), dtype_from_torch(tensor.dtype), device_name(tensor.device))

    def __str__(self) -> str:
        return f"{self.dtype.name}[{','.join(map(format_size, self.shape))}]@{self.device}"


@dataclass(frozen=True)
class TupleType:
    """The type of a node with several results (a fallback op returning a tuple)."""

    elements: tuple[TensorType, ...]

    def __str__(self) -> str:
        return "(" + ", ".join(map(str, self.elements)) + ")"


def format_size(size) -> str:
    """A size as IR text: an int, or a symbolic size in angle brackets (``<12*s0>``)."""
    return f"<{size}>" if isinstance(size, Sym) else str(size)


def device_name(device: torch.device | str) -> str:
    """Canonical device spelling: "cpu", "cuda:0"."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        return "cuda:0"
    return str(device)
