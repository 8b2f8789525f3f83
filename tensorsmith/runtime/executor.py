"""Run a compiled graph: check the arguments, execute, and hand back outputs in FX order.

Execution is a `runner(tensors) -> outputs`: generated code (runtime/compiled.py), or the reference
interpreter where code generation is off. A graph with symbolic sizes reads their values from the
arguments on each call (sizes.py) and runs as `runner(tensors, sizes)`.
"""
from __future__ import annotations

import torch

from ..errors import InputError
from ..ir.interpret import Interpreter
from ..ir.sizes import SymbolicUnsupported, evaluate, is_symbolic, size_symbols
from ..ir.types import TensorType, device_name
from .numerics import guard_for
from .sizes import SizeBinding


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


def host_scalar(value, expected: TensorType, read_by_kernels: bool) -> tuple[object, bool]:
    """(value, whether it was accepted as a host scalar). A 0-d CPU tensor where the graph expects a
    0-d tensor on a GPU: PyTorch lets such a tensor stand for a scalar on any device, and CUDA's
    fused attention kernels return their RNG seed and offset so (fake tensors place them on the GPU).
    Moved there only if a generated kernel reads it."""
    if isinstance(value, torch.Tensor) and value.dim() == 0 and value.device.type == "cpu" \
            and expected.rank == 0 and expected.device != "cpu" \
            and value.dtype == expected.dtype.torch_dtype:
        return value.to(expected.device) if read_by_kernels else value, True
    return value, False


_VIEW_OPS = {"reshape", "transpose", "broadcast_in_dim", "slice"}


def _dense(size, strides) -> bool:
    """Whether `strides` lay a tensor of `size` out without gaps or overlaps (in any dim order)."""
    expected = 1
    for n, s in sorted(((n, s) for n, s in zip(size, strides) if n != 1), key=lambda p: p[1]):
        if s != expected:
            return False
        expected *= n
    return True


def _copy_with_strides(tensor: torch.Tensor, strides) -> torch.Tensor:
    """A copy of `tensor` laid out as eager's output was where that layout is dense, else
    contiguous: one copy, not a clone followed by a `contiguous()` that copies again."""
    if _dense(tensor.shape, strides):
        return tensor.new_empty_strided(tensor.shape, strides).copy_(tensor)
    return tensor.clone(memory_format=torch.contiguous_format)


class GraphExecutor:
    """Callable for one imported graph: takes the FX graph's arguments, returns its outputs.
    `imported` is the importer's result (its graph, outputs and output strides)."""

    def __init__(self, imported, tensor_positions: list[int], runner=None,
                 saved_from: int | None = None):
        self.graph = imported.graph
        self.outputs = imported.outputs
        # Outputs from this index on are activations saved for our own backward (a training forward):
        # no caller sees them, so they may share memory with one another (q, k and v as views of one
        # projection) instead of being copied apart.
        self.saved_from = len(self.outputs) if saved_from is None else saved_from
        self.tensor_positions = tensor_positions  # which FX arguments are graph parameters
        # Which parameters must be row-major (generated kernels read them); the interpreter takes any.
        self.row_major = getattr(runner, "row_major_params", None) or [False] * len(self.graph.params)
        self.output_strides = imported.output_strides
        # Which outputs may share memory with an input or another output (codegen/schedule.py):
        # the only ones _assemble looks at, the others being memory of their own; None where not
        # known (the interpreter): then every output is checked.
        self.shared_outputs = getattr(runner, "shared_outputs", None)
        # Numeric guards (config.check_numerics, read now, at compile time): the generated code's
        # own, else one for the argument checks (and, interpreted, for every node's value).
        self.numerics = getattr(runner, "numerics", None) or guard_for(self.graph)
        size_args = getattr(imported, "size_args", {})
        values = [value for kind, value in self.outputs if kind == "value"]
        symbolic = size_symbols(self.graph) or is_symbolic(values) or is_symbolic(list(size_args.values()))
        self.binding = SizeBinding(self.graph, size_args, values) if symbolic else None
        if self.binding is not None and self.numerics is not None:
            raise SymbolicUnsupported("numeric guards take static shapes")
        if runner is None and self.numerics is not None:
            runner = self.numerics.run_interpreter
        self.runner = runner or (lambda tensors, sizes=None: Interpreter().run(self.graph, tensors, sizes))
        self.views = Interpreter()  # applies view nodes as PyTorch views
        self.input_views: dict = {}  # output node -> (argument position, its views bound) or None
        # Per parameter, what an argument that needs no further look has: one tuple comparison per
        # argument on the way to the first kernel (a training step passes every weight).
        self.expected = [
            (p.type.dtype.torch_dtype, None if is_symbolic(p.type.shape) else torch.Size(p.type.shape),
             torch.device(p.type.device))
            for p in self.graph.params]
        # Parameters whose shapes depend on the sizes, evaluated on each call.
        self.symbolic_params = [i for i, p in enumerate(self.graph.params) if is_symbolic(p.type.shape)]

    def __call__(self, *args):
        sizes, expected_all = self._expected(args)
        tensors = []
        for position, param, row_major, expected in zip(self.tensor_positions, self.graph.params,
                                                        self.row_major, expected_all):
            value = args[position]
            if not (isinstance(value, torch.Tensor) and (value.dtype, value.shape, value.device) == expected):
                param_type = param.type if sizes is None else \
                    param.type.with_shape(evaluate(param.type.shape, sizes))
                value, scalar = host_scalar(value, param_type, row_major)
                if not scalar:
                    check_argument(position, param.name, value, param_type)
            tensors.append(value.contiguous() if row_major else value)
        if self.numerics is not None:
            self.numerics.check_inputs(self.tensor_positions, tensors)
        if sizes is None:
            return self._assemble(self.runner(tensors), tensors, args)
        self.views.sizes = sizes
        return self._assemble(self.runner(tensors, sizes), tensors, args, sizes)

    def _expected(self, args):
        """(the size symbols' values or None, per parameter the (dtype, shape, device) an argument
        must have)."""
        if self.binding is None:
            return None, self.expected
        for position, param in zip(self.tensor_positions, self.graph.params):
            if not isinstance(args[position], torch.Tensor):
                check_argument(position, param.name, args[position], param.type)
        sizes = self.binding.values(args, [args[p] for p in self.tensor_positions])
        expected = list(self.expected)
        for i in self.symbolic_params:
            dtype, _, device = expected[i]
            expected[i] = (dtype, torch.Size(evaluate(self.graph.params[i].type.shape, sizes)), device)
        return sizes, expected

    def _assemble(self, results, inputs, args, sizes=None):
        """Outputs in FX order. A view of an input is rebuilt as that view of the caller's tensor;
        any other output sharing memory with an input or an earlier caller-visible output is copied,
        since the graph promised a fresh tensor there, unless it is an input written in place
        (in_place.py) for the caller to copy back. A size among the outputs (a training forward
        saves them for its backward) gets its value in this call."""
        check = self.shared_outputs
        seen = None
        outputs = []
        for i, ((kind, value), strides) in enumerate(zip(self.outputs, self.output_strides)):
            if kind == "value":
                outputs.append(evaluate(value, sizes) if sizes else value)
                continue
            if kind == "view":
                view = self._input_view(self.graph.outputs[value], args)
                if view is not None:
                    outputs.append(view)
                    continue
            tensor = results[value]
            param = self.graph.written_back.get(value)
            if param is not None and tensor is inputs[param]:
                outputs.append(tensor)  # written in place: the caller's copy back is a no-op
                continue
            if (check is None or value in check) and tensor.numel():
                if seen is None:
                    seen = self._input_storages(inputs, args)
                pointer = tensor.untyped_storage().data_ptr()
                if pointer in seen:
                    tensor = _copy_with_strides(tensor, strides)
                elif i < self.saved_from:
                    seen.add(pointer)
            # Keep a computed view (a transposed activation saved for the backward) when its layout
            # is the one eager produced; otherwise hand out a contiguous tensor, as eager would.
            outputs.append(tensor if tensor.stride() == strides else tensor.contiguous())
        return outputs

    @staticmethod
    def _input_storages(inputs, args) -> set[int]:
        """The storages of the call's tensors, as the graph received them and as the caller passed them."""
        seen = {t.untyped_storage().data_ptr() for t in inputs if t.numel()}
        return seen | {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor) and a.numel()}

    def _input_view(self, node, args):
        """`node` computed as PyTorch views of the caller's input tensor, or None if it is not a
        chain of views of a parameter. The chain is bound once per node (Interpreter.bind_views)."""
        bound = self.input_views.get(node, False)
        if bound is False:
            bound = self.input_views[node] = self._bind_input_view(node)
        if bound is None:
            return None
        position, view = bound
        return view(args[position])

    def _bind_input_view(self, node):
        """(the argument's position, its views as one function) for `node`, or None."""
        chain = []
        while node.op in _VIEW_OPS:
            chain.append(node)
            node = node.inputs[0]
        if node.op != "param":
            return None
        return self.tensor_positions[self.graph.params.index(node)], self.views.bind_views(chain[::-1])
