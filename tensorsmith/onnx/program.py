"""A loaded ONNX model as a callable: compiled by tensorsmith once per input signature.

Each input signature (shapes, dtypes) is traced to an ATen graph by running the interpreter under
`make_fx`, then compiled by the same backend as `torch.compile(..., backend="tensorsmith")`. A model
whose inputs have symbolic dimensions follows the policy of graphs with symbolic sizes
(compile/specialize.py): a signature compiles on its `config.specialize_after`-th call, at most
`config.max_specializations` of them, and other calls run eagerly. What cannot be traced for a
signature (a value-dependent shape, an op run by onnx's reference implementation on run-time
values) runs eagerly through the interpreter instead: exact, not faster, reported once with the
reason.
"""
from __future__ import annotations

import warnings

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from .. import config
from ..compile.backend import tensorsmith_backend
from ..compile.specialize import CallCounts
from ..errors import FallbackWarning, InputError
from .dtypes import to_numpy, to_torch
from .graph import Graph, move_to
from .interpret import run_model
from .ops.registry import DataDependent

# ATen ops whose output shapes depend on input values: a graph specialized to input shapes must
# not contain them.
_VALUE_SHAPED = {"aten.nonzero.default", "aten.masked_select.default", "aten._unique2.default",
                 "aten.unique_dim.default", "aten.unique_consecutive.default",
                 "aten.repeat_interleave.Tensor"}


class OnnxProgram:
    """`program(*inputs)` or `program(name=value, ...)`: the model's outputs, as a list in graph
    output order (numpy arrays for numpy inputs, else torch tensors)."""

    def __init__(self, graph: Graph, device: str | torch.device = "cpu", compiled: bool = True,
                 source: str = "<model>"):
        self.graph = graph
        self.device = torch.device(device)
        move_to(graph, self.device)
        self.compiled = compiled
        self.source = source
        self._runners: dict[tuple, object] = {}
        self._calls = CallCounts()  # of signatures not compiled yet
        self.symbolic = any(_has_symbolic_dims(t) for t in graph.input_types.values())
        self.eager_reasons: dict[tuple, str] = {}  # signature -> why it runs eagerly

    @property
    def input_names(self) -> list[str]:
        return list(self.graph.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.graph.outputs)

    def __call__(self, *args, **named):
        values = self._bind(args, named)
        as_numpy = not values or not all(isinstance(v, torch.Tensor) for v in values)
        outputs = self.run([to_torch(v, self.device) for v in values])
        return [to_numpy(o) for o in outputs] if as_numpy else outputs

    def run(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """The outputs for torch tensor inputs already on the program's device."""
        signature = tuple((tuple(t.shape), t.dtype) for t in inputs)
        runner = self._runners.get(signature)
        with torch.no_grad():
            if runner is None:
                runner = self._runner_for(signature, inputs)
            return list(runner(inputs))

    def _runner_for(self, signature, inputs):
        """A new signature's runner: built now, or eager for this call until the signature has
        come `config.specialize_after` times (inputs with symbolic dimensions only)."""
        if self.symbolic and self.compiled and self._calls.seen(signature) < config.specialize_after:
            return self._eager
        runner = self._runners[signature] = self._build(signature, inputs)
        return runner

    def _bind(self, args, named) -> list:
        names = self.graph.inputs
        if len(args) > len(names):
            raise InputError(f"{self.source}: the model takes {len(names)} inputs {names}, "
                             f"got {len(args)}")
        bound = dict(zip(names, args))
        for name, value in named.items():
            if name not in names:
                raise InputError(f"{self.source}: the model has no input {name!r}; its inputs "
                                 f"are {names}")
            if name in bound:
                raise InputError(f"{self.source}: input {name!r} given twice")
            bound[name] = value
        missing = [n for n in names if n not in bound]
        if missing:
            raise InputError(f"{self.source}: inputs {missing} are missing")
        return [bound[n] for n in names]

    def _build(self, signature, inputs):
        if not self.compiled:
            return self._eager
        compiled = sum(signature not in self.eager_reasons for signature in self._runners)
        if compiled >= config.max_specializations:
            return self._eager_because(signature, f"{config.max_specializations} input shapes "
                                       "are compiled already (TENSORSMITH_MAX_SPECIALIZATIONS)")
        try:
            gm = trace(self.graph, inputs, self.device)
        except DataDependent as e:
            return self._eager_because(signature, str(e))
        compiled = tensorsmith_backend(gm, list(inputs))
        return lambda tensors: compiled(*tensors)

    def _eager(self, inputs):
        return run_model(self.graph, inputs, tracing=False, device=self.device)

    def _eager_because(self, signature, reason: str):
        if not self.eager_reasons:
            warnings.warn(FallbackWarning(
                f"tensorsmith.onnx: {self.source} runs eagerly through the interpreter for input "
                f"shapes {[s for s, _ in signature]} (same numbers, not faster): {reason}"),
                stacklevel=4)
        self.eager_reasons[signature] = reason
        return self._eager


def _has_symbolic_dims(kind) -> bool:
    if kind.WhichOneof("value") != "tensor_type" or not kind.tensor_type.HasField("shape"):
        return kind.WhichOneof("value") == "tensor_type"
    return any(not d.HasField("dim_value") for d in kind.tensor_type.shape.dim)


def trace(graph: Graph, inputs: list[torch.Tensor], device: torch.device) -> torch.fx.GraphModule:
    """The ATen graph of `graph` specialized to the shapes of `inputs`; `DataDependent` if it
    cannot be (a value read at run time, an output shape that depends on values)."""
    def forward(*tensors):
        return run_model(graph, list(tensors), tracing=True, device=device)
    try:
        gm = make_fx(forward, tracing_mode="real")(*inputs)
    except RuntimeError as e:
        if "get value out of a tracing tensor" in str(e):
            raise DataDependent("a value computed at run time decides a shape or a branch") from e
        raise
    for node in gm.graph.nodes:
        if node.op == "call_function" and str(node.target) in _VALUE_SHAPED:
            raise DataDependent(f"{node.target} has an output shape that depends on values")
    return gm
