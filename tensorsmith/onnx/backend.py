"""tensorsmith as an `onnx.backend.base.Backend`: the interface onnx's backend test suite and other
ONNX tools drive (`prepare(model, device)` then `rep.run(inputs)`)."""
from __future__ import annotations

import numpy as np
import onnx
import torch
from onnx.backend.base import Backend, BackendRep

from . import compile as compile_onnx
from .graph import one_node_model
from .program import OnnxProgram

_DEVICES = {"CPU": "cpu", "CUDA": "cuda"}


class TensorsmithRep(BackendRep):
    def __init__(self, program: OnnxProgram):
        self.program = program

    def run(self, inputs, **kwargs) -> tuple:
        if isinstance(inputs, dict):
            return tuple(self.program(**inputs))
        if isinstance(inputs, (np.ndarray, torch.Tensor)):
            inputs = [inputs]
        return tuple(self.program(*inputs))


class TensorsmithBackend(Backend):
    """`compiled=False` in `prepare`'s keywords runs the interpreter only."""

    @classmethod
    def prepare(cls, model, device: str = "CPU", compiled: bool = True, **kwargs) -> TensorsmithRep:
        return TensorsmithRep(compile_onnx(model, _torch_device(device), compiled=compiled))

    @classmethod
    def run_node(cls, node: onnx.NodeProto, inputs, device: str = "CPU", outputs_info=None,
                 **kwargs) -> tuple:
        names = [f"input_{i}" if not n else n for i, n in enumerate(node.input)]
        opset = kwargs.get("opset_version", onnx.defs.onnx_opset_version())
        model = one_node_model(node, names, [onnx.helper.make_opsetid(node.domain, opset)])
        return cls.prepare(model, device).run(list(inputs))

    @classmethod
    def supports_device(cls, device: str) -> bool:
        try:
            name = _torch_device(device)
        except ValueError:
            return False
        return name == "cpu" or (name.startswith("cuda") and torch.cuda.is_available())


def _torch_device(device: str) -> str:
    kind, _, index = str(device).partition(":")
    name = _DEVICES.get(kind.upper())
    if name is None:
        raise ValueError(f"unknown device {device!r}: CPU or CUDA")
    return f"{name}:{index}" if index else name


prepare = TensorsmithBackend.prepare
run_model = TensorsmithBackend.run_model
run_node = TensorsmithBackend.run_node
supports_device = TensorsmithBackend.supports_device
