"""Run a compiled graph: check the arguments, execute, and hand back outputs in FX order.

Execution is a `runner(tensors) -> outputs`: generated code (runtime/compiled.py), or the reference
interpreter where code generation is off.
"""
from __future__ import annotations

import torch

from ..errors import InputError
from ..frontend.importer import Imported
from ..ir.interpret import Interpreter
from ..ir.types import TensorType, device_name


def check_argument(position: int, name: str, value, expected: TensorType) -> None:
    """Raise InputError naming the argument when `value` is not the tensor the graph was built for."""
    if not isinstance(value, torch.Tensor):
        raise InputError(f"argument {position} ({name}) must be a tensor {expected}, "
                         f"got {type(value).__name__}")
    problems = []
    if value.dtype != expected.dtype.torch_dtype:
        problems.append(f"dtype {value.dtype} (expected {expected.dtype.torch_dtype})")
    if device_name(value.device) != expected.device:
        problems.append(f"device {value.device} (expected {expected.device})")
    if tuple(value.shape) != expected.shape:
        problems.append(f"shape {list(value.shape)} (expected {list(expected.shape)})")
    if problems:
        raise InputError(f"argument {position} ({name}) has " + ", ".join(problems))


_VIEW_OPS = {"reshape", "transpose", "broadcast_in_dim", "slice"}


class GraphExecutor:
    """Callable for one imported graph: takes the FX graph's arguments, returns its outputs."""

    def __init__(self, imported: Imported, tensor_positions: list[int], runner=None):
        self.graph = imported.graph
        self.outputs = imported.outputs
        self.tensor_positions = tensor_positions  # which FX arguments are graph parameters
        self.contiguous_inputs = runner is not None  # generated code indexes row-major memory
        self.runner = runner or (lambda tensors: Interpreter().run(self.graph, tensors))
        self.views = Interpreter()  # applies view nodes as PyTorch views

    def __call__(self, *args):
        tensors = []
        for position, param in zip(self.tensor_positions, self.graph.params):
            check_argument(position, param.name, args[position], param.type)
            tensors.append(args[position].contiguous() if self.contiguous_inputs else args[position])
        results = self.runner(tensors)
        return self._assemble(results, tensors, args)

    def _assemble(self, results, inputs, args):
        """Outputs in FX order. A view of an input is rebuilt as that view of the caller's tensor;
        any other output sharing memory with an input or an earlier output is copied, since the
        graph promised a fresh tensor there."""
        seen = {t.untyped_storage().data_ptr() for t in inputs if t.numel()}
        seen |= {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor) and a.numel()}
        outputs = []
        for kind, value in self.outputs:
            if kind == "value":
                outputs.append(value)
                continue
            if kind == "view":
                view = self._input_view(self.graph.outputs[value], args)
                if view is not None:
                    outputs.append(view)
                    continue
            tensor = results[value]
            if tensor.numel():
                pointer = tensor.untyped_storage().data_ptr()
                if pointer in seen:
                    tensor = tensor.clone()
                    pointer = tensor.untyped_storage().data_ptr()
                seen.add(pointer)
            outputs.append(tensor.contiguous())
        return outputs

    def _input_view(self, node, args):
        """`node` computed as PyTorch views of the caller's input tensor, or None if it is not a
        chain of views of a parameter."""
        chain = []
        while node.op in _VIEW_OPS:
            chain.append(node)
            node = node.inputs[0]
        if node.op != "param":
            return None
        tensor = args[self.tensor_positions[self.graph.params.index(node)]]
        for view in reversed(chain):
            tensor = self.views.eval(view, [tensor])
        return tensor
