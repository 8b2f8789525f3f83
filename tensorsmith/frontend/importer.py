"""Import a functional ATen FX graph (from AOTAutograd) into the IR.

Each call_function node goes through its registered lowering; an op without one, or a lowering
that declines, becomes a `fallback` node that calls the ATen op, so any graph imports. A graph with
symbolic sizes is imported either with its sizes symbolic (`symbolic=True`: the IR's sizes are
Dynamo's, frontend/symbolic.py, and fallback types come from the traced values) or specialized to
concrete inputs, its sizes evaluated to ints.
A lowering whose result type disagrees with the type PyTorch traced is discarded for a fallback:
never wrong, sometimes slow.
"""
from __future__ import annotations

import math
import operator
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch._subclasses.fake_tensor import FakeTensorMode, unset_fake_temporarily

from ..errors import GraphUnsupportedError, TensorsmithError, TypeInferenceError, UnsupportedError
from ..ir.aten import LIBRARY_KERNELS, target_name, to_attr
from ..ir.attrs import format_value
from ..ir.graph import Graph, Node
from ..ir.sizes import Sym
from ..ir.types import TensorType, TupleType, device_name, dtype_from_torch
from ..records import Fallback
from . import lowering  # noqa: F401  (registers the lowerings)
from .lowering.registry import LOWERINGS, LoweringContext
from .source import source_line
from .symbolic import size_of, type_of

_INT_FUNCTIONS = (operator.add, operator.sub, operator.mul, operator.floordiv, operator.truediv,
                  operator.mod, operator.neg, operator.pow, operator.eq, operator.ne, operator.lt,
                  operator.le, operator.gt, operator.ge, math.ceil, math.floor, math.sqrt,
                  torch.sym_max, torch.sym_min, torch.sym_float, torch.sym_int, torch.sym_not)
_SIZE_OPS = {torch.ops.aten.sym_size.int: lambda t, d: t.shape[d],
             torch.ops.aten.sym_numel.default: lambda t: t.numel}


@dataclass
class ImportReport:
    """What the importer did with each op: lowered natively, or fell back (and why)."""

    native: Counter = field(default_factory=Counter)
    fallbacks: list[Fallback] = field(default_factory=list)


@dataclass
class Imported:
    graph: Graph
    # Per FX output: ("tensor", index into graph.outputs), ("view", index) for an output that is a
    # view of an input in eager (it must stay one: AOTAutograd rebuilds it from the input's memory),
    # or ("value", python value).
    outputs: list
    report: ImportReport
    output_strides: list = field(default_factory=list)  # eager's strides of each output, if static
    size_args: dict = field(default_factory=dict)  # argument position -> the symbolic size it passes


_aten = torch.ops.aten
# ATen ops whose result shares memory with their first argument.
_FX_VIEWS = {_aten.view.default, _aten.expand.default, _aten.permute.default, _aten.t.default,
             _aten.transpose.int, _aten.slice.Tensor, _aten.select.int, _aten.unsqueeze.default,
             _aten.squeeze.default, _aten.squeeze.dim, _aten.squeeze.dims, _aten.alias.default,
             _aten.as_strided.default, _aten.split_with_sizes.default, _aten.split.Tensor,
             _aten.unbind.int}
# Checks with no result that graphs carry (one_hot's range check): nothing to compute.
_ASSERTIONS = {_aten._assert_async.msg, _aten._assert_async.default, _aten._assert_scalar.default,
               _aten._assert_tensor_metadata.default}


def _static_strides(fx_value):
    """The strides eager gives an FX output, when they are plain ints."""
    meta = fx_value.meta.get("val") if isinstance(fx_value, torch.fx.Node) else None
    if isinstance(meta, torch.Tensor) and all(isinstance(s, int) for s in meta.stride()):
        return tuple(meta.stride())
    return None


def _views_an_input(fx_node) -> bool:
    """Whether an FX value is, in eager, a view (chain) of a graph input."""
    while isinstance(fx_node, torch.fx.Node) and fx_node.op == "call_function" and (
            fx_node.target in _FX_VIEWS or fx_node.target is operator.getitem):
        fx_node = fx_node.args[0]
    return isinstance(fx_node, torch.fx.Node) and fx_node.op == "placeholder"


def _map(value, fn):
    if isinstance(value, (list, tuple)):
        return type(value)(_map(v, fn) for v in value)
    if isinstance(value, dict):
        return {k: _map(v, fn) for k, v in value.items()}
    return fn(value)


def _fake_of(node: Node, mode: FakeTensorMode):
    t = node.type
    with mode:
        return torch.empty(t.shape, dtype=t.dtype.torch_dtype, device=t.device)


def _type_of_value(value, tensor_type=TensorType.of) -> TensorType | TupleType:
    """The declared type of a fallback's result; None elements of a tuple are left out."""
    if isinstance(value, torch.Tensor):
        return tensor_type(value)
    if isinstance(value, (tuple, list)) and all(v is None or isinstance(v, torch.Tensor) for v in value):
        return TupleType(tuple(tensor_type(v) for v in value if v is not None))
    raise UnsupportedError(f"the op returns {type(value).__name__}, not tensors")


# Fallback result types by call signature: a model's layers repeat the same calls (GPT-2 small: 12
# attention calls per graph, one signature), and each would be another fake-tensor run of the op.
_FALLBACK_TYPES: dict[tuple, tuple] = {}
_FALLBACK_TYPES_MAX = 4096


def _call_signature(target, attr_args, attr_kwargs, operands: list[Node]) -> tuple:
    """Everything a fallback's result type depends on: the op, its arguments as the node records
    them, and its operands' types (their fake tensors are contiguous)."""
    return (target, format_value(attr_args), format_value(attr_kwargs), tuple(o.type for o in operands))


def _matches_meta(result, meta, symbolic: bool = False) -> bool:
    """Whether a lowering's result agrees with PyTorch's traced value: dtype always, shape where
    static or imported symbolic (then it must be the same expression)."""
    if isinstance(result, Node):
        if not isinstance(meta, torch.Tensor) or dtype_from_torch(meta.dtype) != result.type.dtype:
            return False
        if symbolic:
            return type_of(meta).shape == result.type.shape
        if all(isinstance(s, int) for s in meta.shape):
            return tuple(meta.shape) == result.type.shape
        return len(meta.shape) == result.type.rank
    if isinstance(result, (tuple, list)) and isinstance(meta, (tuple, list)):
        return len(result) == len(meta) and all(
            r is None or _matches_meta(r, m, symbolic) for r, m in zip(result, meta))
    return False


def _host_scalars_moved(placeholders, inputs) -> dict:
    """Placeholder -> the device it is imported on, for 0-d CPU inputs of a graph whose other tensor
    inputs are all on one GPU and which the graph only copies to that GPU (a Hugging Face static
    cache's position counter, made on the CPU and moved at the prefill): imported there, the graph
    is on one device and compiles (graphs on several run through the interpreter), and the executor
    moves the argument per call (runtime/executor.py host_scalar)."""
    tensors = [v for v in inputs if isinstance(v, torch.Tensor)]
    devices = {device_name(v.device) for v in tensors if not (v.dim() == 0 and v.device.type == "cpu")}
    if len(devices) != 1 or next(iter(devices)) == "cpu":
        return {}
    device = devices.pop()
    moved = {}
    for fx_node, value in zip(placeholders, inputs):
        if isinstance(value, torch.Tensor) and value.dim() == 0 and value.device.type == "cpu" and \
                fx_node.users and all(_copies_to(user, device) for user in fx_node.users):
            moved[fx_node] = device
    return moved


def _copies_to(fx_node, device: str) -> bool:
    """Whether `fx_node` is a copy of its input to `device` (dtype unchanged or not)."""
    device_arg = fx_node.kwargs.get("device")
    return fx_node.op == "call_function" and fx_node.target is torch.ops.aten._to_copy.default and \
        device_arg is not None and device_name(device_arg) == device


class Importer:
    def __init__(self, gm: torch.fx.GraphModule, name: str, symbolic: bool = False):
        self.gm = gm
        self.symbolic = symbolic
        self.graph = Graph(name=name)
        self.ctx = LoweringContext(self.graph)
        self.report = ImportReport()
        self.fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
        self.env: dict[torch.fx.Node, object] = {}
        self.output_strides: list = []

    def run(self, inputs) -> Imported:
        placeholders = [n for n in self.gm.graph.nodes if n.op == "placeholder"]
        if len(placeholders) != len(inputs):
            raise TensorsmithError(f"graph takes {len(placeholders)} inputs, got {len(inputs)}")
        size_args = {}
        moved = _host_scalars_moved(placeholders, inputs)
        for position, (fx_node, value) in enumerate(zip(placeholders, inputs)):
            self.env[fx_node] = self._placeholder(fx_node, value, moved.get(fx_node))
            if isinstance(self.env[fx_node], Sym):
                size_args[position] = self.env[fx_node]
        outputs = None
        for fx_node in self.gm.graph.nodes:
            if fx_node.op == "call_function":
                self.env[fx_node] = self._call(fx_node)
            elif fx_node.op == "get_attr":
                self.env[fx_node] = self._get_attr(fx_node)
            elif fx_node.op == "output":
                outputs = self._outputs(fx_node.args[0])
            elif fx_node.op != "placeholder":
                raise UnsupportedError(f"FX node kind {fx_node.op} ({fx_node.target})")
        return Imported(self.graph, outputs, self.report, self.output_strides, size_args)

    def _placeholder(self, fx_node, value, device: str | None = None):
        """A graph parameter for a tensor input (on `device` where _host_scalars_moved says so),
        else the size or constant it is."""
        if isinstance(value, torch.Tensor):
            try:
                param_type = type_of(value) if self.symbolic else TensorType.of(value)
                if device is not None:
                    param_type = TensorType(param_type.shape, param_type.dtype, device)
                return self.graph.add_param(fx_node.name, param_type, source_line(fx_node))
            except KeyError:
                raise UnsupportedError(f"input {fx_node.name} has dtype {value.dtype}") from None
        # A size (symbolic, or its concrete value), a bool, or None.
        return size_of(value) if self.symbolic else value

    def _get_attr(self, fx_node):
        value = getattr(self.gm, fx_node.target)
        if not isinstance(value, torch.Tensor):
            return value
        t = TensorType.of(value)
        data = value.detach().cpu().reshape(-1).tolist()
        return self.graph.add("constant", [], {"value": data, "shape": list(t.shape),
                                               "dtype": t.dtype, "device": t.device})

    def _outputs(self, values):
        """AOTAutograd graphs return a tuple; a graph returning one value is read as a 1-tuple."""
        if not isinstance(values, (list, tuple)):
            values = [values]
        result = []
        self.output_strides = [_static_strides(v) for v in values]
        for fx_value in values:
            v = self.env[fx_value] if isinstance(fx_value, torch.fx.Node) else fx_value
            if isinstance(v, Node):
                self.graph.outputs.append(v)
                kind = "view" if _views_an_input(fx_value) else "tensor"
                result.append((kind, len(self.graph.outputs) - 1))
            else:
                result.append(("value", v))
        return result

    def _call(self, fx_node):
        target = fx_node.target
        args = _map(fx_node.args, lambda a: self.env[a] if isinstance(a, torch.fx.Node) else a)
        kwargs = _map(fx_node.kwargs, lambda a: self.env[a] if isinstance(a, torch.fx.Node) else a)
        if target is operator.getitem:
            return args[0][args[1]]
        if target in _SIZE_OPS:
            return _SIZE_OPS[target](args[0].type, *args[1:])
        if target in _INT_FUNCTIONS:
            return target(*args, **kwargs)
        if target in _ASSERTIONS:
            return None
        if not isinstance(target, torch._ops.OpOverload):
            raise UnsupportedError(f"call of {target} in the graph")
        source = source_line(fx_node)
        self.ctx.source, self.ctx.meta, self.ctx.fx_node = source, fx_node.meta.get("val"), fx_node
        if target_name(target) in LIBRARY_KERNELS:  # PyTorch's fused kernel, by design
            self.report.native[target_name(target)] += 1
            return self._fallback(target, args, kwargs, source)
        lower_op = LOWERINGS.get(target)
        reason = "no lowering"
        if lower_op is not None:
            mark = len(self.graph.nodes)
            try:
                result = lower_op(self.ctx, *args, **kwargs)
                if _matches_meta(result, self.ctx.meta, self.symbolic):
                    self.report.native[target_name(target)] += 1
                    return result
                reason = "lowering disagreed with PyTorch's result type"
            except GraphUnsupportedError:
                raise
            except (UnsupportedError, TypeInferenceError) as e:
                reason = str(e)
            del self.graph.nodes[mark:]  # discard what the declined lowering emitted
        self.report.fallbacks.append(Fallback(target_name(target), source, reason))
        return self._fallback(target, args, kwargs, source)

    def _fallback(self, target, args, kwargs, source):
        operands: list[Node] = []

        def operand_index(value) -> int:
            if not isinstance(value, Node):
                raise UnsupportedError(f"argument of type {type(value).__name__} for {target}")
            operands.append(value)
            return len(operands) - 1

        attr_args = to_attr(list(args), operand_index)
        attr_kwargs = {k: to_attr(v, operand_index) for k, v in kwargs.items()}
        signature = _call_signature(target, attr_args, attr_kwargs, operands)
        known = self._meta_type() if self.symbolic else _FALLBACK_TYPES.get(signature)
        if known is None:
            known = self._fake_call(target, args, kwargs)
            if len(_FALLBACK_TYPES) >= _FALLBACK_TYPES_MAX:
                _FALLBACK_TYPES.clear()
            _FALLBACK_TYPES[signature] = known
        result_type, nones = known
        node = self.graph.add("fallback", operands, {"target": target_name(target),
                              "args": attr_args, "kwargs": attr_kwargs},
                              type=result_type, source=source)
        if not isinstance(node.type, TupleType):
            return node
        elements, index = [], 0
        for is_none in nones:
            if is_none:
                elements.append(None)
            else:
                elements.append(self.graph.add("get", [node], {"index": index}, source=source))
                index += 1
        return tuple(elements)

    def _meta_type(self) -> tuple:
        """A fallback's result type and Nones as PyTorch traced them, symbolic sizes included."""
        meta = self.ctx.meta
        result_type = _type_of_value(meta, type_of)
        nones = tuple(v is None for v in meta) if isinstance(result_type, TupleType) else ()
        return result_type, nones

    def _fake_call(self, target, args, kwargs) -> tuple:
        """The type of `target`'s result on fake tensors of the arguments' types, and which elements
        of a tuple result are None."""
        fake_args = _map(args, lambda v: _fake_of(v, self.fake_mode) if isinstance(v, Node) else v)
        fake_kwargs = _map(kwargs, lambda v: _fake_of(v, self.fake_mode) if isinstance(v, Node) else v)
        with self.fake_mode:
            fake_result = target(*fake_args, **fake_kwargs)
        result_type = _type_of_value(fake_result)
        nones = tuple(v is None for v in fake_result) if isinstance(result_type, TupleType) else ()
        return result_type, nones


def import_graph(gm: torch.fx.GraphModule, inputs, name: str = "main",
                 symbolic: bool = False) -> Imported:
    """Import `gm` specialized to `inputs` (tensors and concrete ints, one per placeholder), or
    with `symbolic` sizes, from `inputs` whose sizes are Dynamo's SymInts.

    AOTAutograd may call the compiler under its fake mode; constants are real data, so leave it."""
    with unset_fake_temporarily():
        return Importer(gm, name, symbolic).run(list(inputs))
