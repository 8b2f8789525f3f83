"""ONNX models into tensorsmith: `tensorsmith.onnx.compile("model.onnx", device="cpu")`.

The model file is loaded safely (`load`), its graph converted to plain Python (`graph`), and each
input signature traced through the op table (`interpret`, `ops/`) into an ATen graph that the
tensorsmith backend compiles like any PyTorch model's (`program`).
"""
from __future__ import annotations

import os

import torch

from .graph import convert_graph, opsets_of
from .load import load_model
from .program import OnnxProgram


def compile(model, device: str | torch.device = "cpu", compiled: bool = True,
            base_dir: str | None = None) -> OnnxProgram:
    """A callable running the ONNX model `model` (a path, bytes or an onnx.ModelProto) on `device`,
    compiled by tensorsmith per input signature (`compiled=False`: the interpreter, eagerly).
    `base_dir`: where the external data of a model given as bytes or a ModelProto lies."""
    proto = load_model(model, base_dir=base_dir)
    source = os.path.basename(model) if isinstance(model, (str, os.PathLike)) else "<model>"
    graph = convert_graph(proto.graph, opsets_of(proto))
    return OnnxProgram(graph, device, compiled=compiled, source=source)


__all__ = ["OnnxProgram", "compile", "load_model"]
