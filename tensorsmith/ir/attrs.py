"""Attribute values: what they may be, how they print, and how kinds are checked.

Values are ints (or symbolic sizes, ir/sizes.py, printed `<12*s0>`), floats, bools, None,
strings, DTypes, lists, string-keyed dicts, `Operand(i)` (a fallback op's i-th tensor operand,
printed `$i`) and `TorchEnum` (a device, layout or memory format passed to a fallback op, printed
`device("cpu")`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .sizes import Sym
from .types import DType, format_size


@dataclass(frozen=True)
class Operand:
    index: int


@dataclass(frozen=True)
class TorchEnum:
    kind: str  # "device", "layout" or "memory_format"
    value: str


def format_value(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Sym)):
        return format_size(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(float(value))  # 'inf', '-inf', or the shortest text that round-trips
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, DType):
        return value.name
    if isinstance(value, Operand):
        return f"${value.index}"
    if isinstance(value, TorchEnum):
        return f"{value.kind}({json.dumps(value.value)})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {format_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot print attribute value {value!r} of type {type(value).__name__}")


def is_value(value) -> bool:
    """Whether `value` is an attribute value (see above) that prints and parses back as itself."""
    if value is None or isinstance(value, (bool, int, float, str, DType, Operand, TorchEnum, Sym)):
        return True
    if isinstance(value, list):
        return all(is_value(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_value(v) for k, v in value.items())
    return False


def _is_int(v) -> bool:
    """An int, or a symbolic size (an int whose value is known at run time)."""
    return isinstance(v, Sym) or isinstance(v, int) and not isinstance(v, bool)


KIND_CHECKS = {
    "int": _is_int,
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "dtype": lambda v: isinstance(v, DType),
    "ints": lambda v: isinstance(v, list) and all(_is_int(x) for x in v),
    "scalar": lambda v: isinstance(v, (int, float, Sym)),
    "any": lambda v: True,
}


def check_kind(value, kind: str) -> bool:
    """Whether `value` is of attribute kind `kind` (a key of KIND_CHECKS)."""
    return KIND_CHECKS[kind](value)
