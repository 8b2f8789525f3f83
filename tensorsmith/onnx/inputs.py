"""Inputs for an ONNX model from the command line: `name=file.npy` files, `name=2x128` shapes for
symbolic dimensions, and random values of the declared types for the rest."""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import InputError
from .dtypes import torch_dtype
from .graph import Graph


def parse_assignments(items: list[str] | None, what: str) -> dict[str, str]:
    """["a=x", "b=y"] -> {"a": "x", "b": "y"}, naming the bad item."""
    result = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise InputError(f"{what} {item!r}: expected NAME=VALUE")
        result[name] = value
    return result


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().split("x")) if text else ()
    except ValueError:
        raise InputError(f"shape {text!r}: expected sizes joined by x, e.g. 1x3x224x224") from None
    if any(d < 0 for d in dims):
        raise InputError(f"shape {text!r}: sizes must not be negative")
    return dims


def example_inputs(graph: Graph, files: dict[str, str] | None = None,
                   shapes: dict[str, str] | None = None, dim_default: int = 1,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """One array per graph input: loaded from `files` (.npy, never pickles), else random with the
    declared type and shape, symbolic dimensions from `shapes` or `dim_default`. Integer inputs get
    values in [0, 2) when their name says mask, else in [0, 100): small enough for a vocabulary."""
    files, shapes = files or {}, shapes or {}
    unknown = (set(files) | set(shapes)) - set(graph.inputs)
    if unknown:
        raise InputError(f"the model has no inputs {sorted(unknown)}; its inputs are {graph.inputs}")
    rng = np.random.default_rng(seed)
    arrays = {}
    for name in graph.inputs:
        if name in files:
            arrays[name] = np.load(files[name], allow_pickle=False)
            continue
        dtype, dims = _declared(graph, name)
        if name in shapes:
            dims = parse_shape(shapes[name])
        elif any(d is None for d in dims):
            dims = tuple(dim_default if d is None else d for d in dims)
        arrays[name] = _random(rng, dtype, dims, name)
    return arrays


def _declared(graph: Graph, name: str) -> tuple[np.dtype, tuple]:
    kind = graph.input_types.get(name)
    if kind is None or kind.WhichOneof("value") != "tensor_type":
        raise InputError(f"input {name!r} is not a tensor; give it with --input {name}=FILE.npy")
    tensor = kind.tensor_type
    torch_dtype(tensor.elem_type)  # a clear error for types torch cannot hold
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim)
    return np.dtype(dtype), dims


def _random(rng, dtype: np.dtype, dims: tuple, name: str) -> np.ndarray:
    if dtype == np.bool_:
        return rng.integers(0, 2, dims).astype(bool)
    if dtype.kind in "iu":
        high = 2 if "mask" in name.lower() else 100
        return rng.integers(0, high, dims).astype(dtype)
    return rng.standard_normal(dims).astype(dtype)
