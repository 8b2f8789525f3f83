"""An ONNX graph as plain Python: nodes with decoded attributes, initializers as torch tensors.

The interpreter and the tracer read only these objects, never protobuf messages, so that the work
of decoding attributes and tensors happens once, when the model is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import onnx
import torch

from ..errors import OnnxModelError
from .dtypes import tensor_from_proto


@dataclass(frozen=True)
class Node:
    """One ONNX node. `inputs` keep "" for an omitted optional input; `opset` is the model's
    version of the node's domain (the op's behaviour depends on it)."""
    op_type: str
    name: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict = field(hash=False)
    opset: int
    proto: onnx.NodeProto | None = field(default=None, compare=False, repr=False)

    def attr(self, name: str, default=None):
        return self.attrs.get(name, default)

    def where(self) -> str:
        """How errors name this node: op type, node name (or its first output)."""
        return f"{self.op_type} node {self.name or self.outputs[0]!r}"


@dataclass
class Graph:
    """A graph or a subgraph (If/Loop/Scan bodies): nodes in topological order, the names of its
    inputs (initializers excluded) and outputs, and its initializers."""
    name: str
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    initializers: dict[str, torch.Tensor]
    input_types: dict[str, onnx.TypeProto] = field(default_factory=dict)


def move_to(graph: Graph, device: torch.device) -> None:
    """Put the graph's tensors on `device`: initializers and tensor attributes (Constant values),
    subgraphs included."""
    for name, value in graph.initializers.items():
        graph.initializers[name] = value.to(device)
    for node in graph.nodes:
        for key, value in node.attrs.items():
            if isinstance(value, torch.Tensor):
                node.attrs[key] = value.to(device)
            elif isinstance(value, Graph):
                move_to(value, device)
            elif isinstance(value, list) and value and isinstance(value[0], (Graph, torch.Tensor)):
                node.attrs[key] = [v.to(device) if isinstance(v, torch.Tensor) else v
                                   for v in value]
                for v in value:
                    if isinstance(v, Graph):
                        move_to(v, device)


def one_node_model(node: onnx.NodeProto, inputs: list[str],
                   opsets: list[onnx.OperatorSetIdProto]) -> onnx.ModelProto:
    """`node` alone as a model reading `inputs` and writing its outputs, types unknown: how a
    single node runs (onnx's reference evaluator, the backend's `run_node`)."""
    def untyped(name):
        return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)
    graph = onnx.helper.make_graph([node], node.op_type or "node", [untyped(n) for n in inputs],
                                   [untyped(n) for n in node.output if n])
    return onnx.helper.make_model(graph, opset_imports=opsets)


def opsets_of(model: onnx.ModelProto) -> dict[str, int]:
    return {("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import}


def convert_graph(graph: onnx.GraphProto, opsets: dict[str, int]) -> Graph:
    initializers = {t.name: tensor_from_proto(t) for t in graph.initializer}
    for sparse in graph.sparse_initializer:
        raise OnnxModelError(f"sparse initializer {sparse.values.name!r} is not supported")
    nodes = [_convert_node(n, opsets) for n in graph.node]
    inputs = [i.name for i in graph.input if i.name not in initializers]
    return Graph(graph.name, nodes, inputs, [o.name for o in graph.output], initializers,
                 {i.name: i.type for i in graph.input if i.name not in initializers})


def _convert_node(node: onnx.NodeProto, opsets: dict[str, int]) -> Node:
    domain = "" if node.domain == "ai.onnx" else node.domain
    attrs = {a.name: _attribute(a, opsets) for a in node.attribute}
    return Node(node.op_type, node.name, domain, tuple(node.input), tuple(node.output), attrs,
                opsets.get(domain, 1), node)


def _attribute(a: onnx.AttributeProto, opsets: dict[str, int]):
    kind = onnx.AttributeProto
    if a.ref_attr_name:
        raise OnnxModelError(f"attribute {a.name!r} refers to a function attribute; functions "
                             "are not supported")
    if a.type == kind.FLOAT:
        return a.f
    if a.type == kind.INT:
        return a.i
    if a.type == kind.STRING:
        return a.s.decode("utf-8", errors="replace")
    if a.type == kind.TENSOR:
        return tensor_from_proto(a.t)
    if a.type == kind.GRAPH:
        return convert_graph(a.g, opsets)
    if a.type == kind.FLOATS:
        return list(a.floats)
    if a.type == kind.INTS:
        return list(a.ints)
    if a.type == kind.STRINGS:
        return [s.decode("utf-8", errors="replace") for s in a.strings]
    if a.type == kind.TENSORS:
        return [tensor_from_proto(t) for t in a.tensors]
    if a.type == kind.GRAPHS:
        return [convert_graph(g, opsets) for g in a.graphs]
    if a.type == kind.TYPE_PROTO:
        return a.tp
    raise OnnxModelError(f"attribute {a.name!r} has an unknown type {a.type}")
