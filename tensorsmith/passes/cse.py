"""Common subexpression elimination: two nodes with the same op, operands and attributes compute
the same value; later ones are replaced by the first. Random and fallback nodes are never merged
(two draws are two different values; an ATen call may be random too)."""
from __future__ import annotations

from ..ir.attrs import format_value
from ..ir.graph import Graph
from .rewrite import substitute, substitute_outputs

_NEVER_MERGED = {"random", "fallback"}


def run(graph: Graph) -> bool:
    seen: dict[tuple, object] = {}
    mapping: dict = {}
    kept = []
    for node in graph.nodes:
        substitute(node, mapping)
        if node.op in _NEVER_MERGED:
            kept.append(node)
            continue
        key = (node.op, tuple(id(i) for i in node.inputs),
               tuple(sorted((k, format_value(v)) for k, v in node.attrs.items())), str(node.type))
        first = seen.get(key)
        if first is None:
            seen[key] = node
            kept.append(node)
        else:
            mapping[node] = first
    substitute_outputs(graph, mapping)
    graph.nodes = kept
    return bool(mapping)
