"""Runs an ONNX graph node by node with the op table: eagerly, or while being traced to ATen.

Constants are tracked as the graph runs: initializers, results of Shape and Size (a traced graph is
specialized to its input shapes), and results of deterministic ops whose inputs are all constants.
Ops may read the values of constants into Python (`ops.registry.ints`); anything else is a value
of the run, and an op that needs one raises `DataDependent`.
"""
from __future__ import annotations

import torch

from ..errors import OnnxModelError, OnnxUnsupportedError
from .graph import Graph, Node
from .ops import lookup
from .ops.registry import _SCOPE, DataDependent, Scope

# Their results depend only on input shapes, which a traced graph is specialized to.
_SHAPE_OPS = {"Shape", "Size"}


def run_model(graph: Graph, args, tracing: bool, device: torch.device | None = None) -> list:
    """The outputs of `graph` for the positional inputs `args` (tensors in graph input order) on
    `device` (by default the first input's, else the CPU)."""
    if device is None:
        device = next((a.device for a in args if isinstance(a, torch.Tensor)), torch.device("cpu"))
    current = Scope(tracing, run_subgraph=lambda g, bound, outer: _run(g, bound, outer, current),
                    device=device)
    token = _SCOPE.set(current)
    try:
        return _run(graph, dict(zip(graph.inputs, args)), {}, current)
    finally:
        _SCOPE.reset(token)


def _run(graph: Graph, bound: dict, outer: dict, current: Scope) -> list[torch.Tensor]:
    env = dict(outer)
    for name, value in graph.initializers.items():
        current.mark_constant(value)
        env[name] = value
    env.update(bound)
    for node in graph.nodes:
        args = [_input(env, name, node) for name in node.inputs]
        opdef = lookup(node)
        if opdef.data_dependent and current.tracing and not all(map(current.is_constant, args)):
            raise DataDependent(f"{node.where()}: its output's shape depends on input values")
        current.env = env
        try:
            results = opdef.fn(node, *args)
        except (ValueError, TypeError, RuntimeError, IndexError) as e:
            if type(e) not in (ValueError, TypeError, RuntimeError, IndexError):
                raise  # ours, or a subclass whose constructor may take other arguments
            raise type(e)(f"{node.where()}: {e}") from e
        if not isinstance(results, (tuple, list)):
            results = (results,)
        foldable = node.op_type in _SHAPE_OPS or (
            not opdef.random and not _has_subgraph(node) and all(map(current.is_constant, args)))
        for name, value in zip(node.outputs, results):
            if not name:
                continue
            env[name] = value
            if foldable:
                current.mark_constant(value)
        missing = [n for n in node.outputs[len(results):] if n]
        if missing:
            raise OnnxUnsupportedError(f"{node.where()}: outputs {missing} are not produced")
    return [_input(env, name, None) for name in graph.outputs]


def _input(env: dict, name: str, node: Node | None):
    if not name:
        return None
    try:
        return env[name]
    except KeyError:
        where = f"{node.where()} reads" if node else "the graph outputs"
        raise OnnxModelError(f"{where} {name!r}, which no node produces") from None


def _has_subgraph(node: Node) -> bool:
    return any(isinstance(v, Graph) or (isinstance(v, list) and v and isinstance(v[0], Graph))
               for v in node.attrs.values())

