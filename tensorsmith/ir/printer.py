"""Stable text form of a graph (the lingua franca of dumps and tests):

    graph @forward(%x: f32[8,16]@cpu, %w: f32[16,32]@cpu) {
      %0 = dot(%x, %w) : f32[8,32]@cpu loc("model.py:12 in forward")
      %1 = reduce(%0) {kind="sum", dims=[1]} : f32[8]@cpu
      return %0, %1
    }

Nodes are numbered in order and attributes print in the op's declared order, so print -> parse ->
print gives identical text. A graph with symbolic sizes declares their ranges after its parameters:
`graph @f(%x: f32[<s0>,16]@cpu) sizes(s0: [2, inf]) {`.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from .attrs import format_value
from .ops import OPS
from .sizes import size_symbols

if TYPE_CHECKING:  # graph.py prints through this module
    from .graph import Graph, Node

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def param_names(graph: Graph) -> list[str]:
    """Printable, unique parameter names: the given name when it is an identifier, else p<i>."""
    names, seen = [], set()
    for i, p in enumerate(graph.params):
        name = p.name if p.name and _IDENTIFIER.match(p.name) and not p.name.isdigit() else f"p{i}"
        if name in seen:
            name = f"p{i}"
        while name in seen:
            name += "_"
        seen.add(name)
        names.append(name)
    return names


def value_names(graph: Graph) -> dict[Node, str]:
    names = {p: f"%{n}" for p, n in zip(graph.params, param_names(graph))}
    for i, node in enumerate(graph.nodes):
        names[node] = f"%{i}"
    return names


def format_attrs(node: Node) -> str:
    opdef = OPS.get(node.op)
    order = list(opdef.attrs) if opdef else []
    keys = [k for k in order if k in node.attrs] + sorted(k for k in node.attrs if k not in order)
    if not keys:
        return ""
    return " {" + ", ".join(f"{k}={format_value(node.attrs[k])}" for k in keys) + "}"


def format_node(node: Node, names: dict[Node, str]) -> str:
    operands = ", ".join(names.get(i, "%<unknown>") for i in node.inputs)
    text = f"{names.get(node, '%?')} = {node.op}({operands}){format_attrs(node)} : {node.type}"
    if node.source:
        text += f" loc({json.dumps(node.source)})"
    return text


def format_ranges(graph: Graph) -> str:
    """` sizes(s0: [2, inf], ...)` for the symbols in the graph's types and attributes, else ""."""
    ranges = size_symbols(graph)
    if not ranges:
        return ""
    return " sizes(" + ", ".join(f"{name}: [{low}, {format_value(high)}]"
                                 for name, (low, high) in sorted(ranges.items())) + ")"


def print_graph(graph: Graph) -> str:
    names = value_names(graph)
    params = ", ".join(f"{names[p]}: {p.type}" for p in graph.params)
    lines = [f"graph @{graph.name}({params}){format_ranges(graph)} {{"]
    lines += ["  " + format_node(node, names) for node in graph.nodes]
    lines.append(" ".join(["  return", ", ".join(names.get(o, "%<unknown>") for o in graph.outputs)]).rstrip())
    lines.append("}")
    return "\n".join(lines) + "\n"
