"""The IR graph: typed nodes in topological order, parameters, and outputs.

A node is one operation (`op`, a name in `ir.ops.OPS`) applied to earlier nodes (`inputs`), with
constant attributes (`attrs`) and a result `type`. Parameters are nodes with op "param".
`source` records the user's source line the node came from, for error messages.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .types import TensorType, TupleType


@dataclass(eq=False)
class Node:
    op: str
    inputs: list["Node"]
    attrs: dict[str, Any]
    type: TensorType | TupleType
    source: str | None = None
    name: str | None = None  # parameters keep their name; other nodes are numbered when printed

    def __repr__(self) -> str:
        return f"Node({self.op}, {self.type})"


@dataclass(eq=False)
class Graph:
    """A function: `params` in, `outputs` out, `nodes` (params excluded) in topological order."""

    name: str = "main"
    params: list[Node] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    outputs: list[Node] = field(default_factory=list)
    # Output index -> parameter index: that output is the parameter's new value, which the caller
    # (AOTAutograd) copies into the argument after the call, so a step may write it in place.
    written_back: dict[int, int] = field(default_factory=dict)

    def add_param(self, name: str, type: TensorType, source: str | None = None) -> Node:
        node = Node("param", [], {}, type, source, name)
        self.params.append(node)
        return node

    def add(self, op: str, inputs: Iterable[Node], attrs: dict | None = None,
            type: TensorType | TupleType | None = None, source: str | None = None) -> Node:
        """Append a node; its type is inferred from the op's shape rule unless given."""
        from .ops import infer_type

        inputs = list(inputs)
        attrs = dict(attrs or {})
        if type is None:
            type = infer_type(op, [i.type for i in inputs], attrs)
        node = Node(op, inputs, attrs, type, source)
        self.nodes.append(node)
        return node

    def users(self) -> dict[Node, list[Node]]:
        """Map from each node to the nodes that read it."""
        result: dict[Node, list[Node]] = {n: [] for n in [*self.params, *self.nodes]}
        for node in self.nodes:
            for i in node.inputs:
                result.setdefault(i, []).append(node)
        return result

    def __str__(self) -> str:
        from .printer import print_graph

        return print_graph(self)


def graph_device(graph: Graph) -> str | None:
    """The one device all of the graph's values live on, or None when they are on several."""
    types = [p.type for p in graph.params] + [n.type for n in graph.nodes]
    devices = {t.device for t in types if hasattr(t, "device")}
    return devices.pop() if len(devices) == 1 else ("cpu" if not devices else None)
