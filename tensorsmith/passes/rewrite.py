"""Shared machinery of rewriting passes: replace a node's uses, and run rules to a fixed point.

A rule looks at one node and returns None (no match), an existing node that computes the same value,
or a new node (built with `new_node`) to insert in its place. Replaced nodes are left for DCE.
"""
from __future__ import annotations

from typing import Callable

from ..ir.graph import Graph, Node
from ..ir.ops import infer_type


def new_node(op: str, inputs, attrs: dict, like: Node) -> Node:
    """A node not yet in any graph, with its type inferred and `like`'s source line."""
    inputs = list(inputs)
    return Node(op, inputs, dict(attrs), infer_type(op, [i.type for i in inputs], attrs), like.source)


def replace_uses(graph: Graph, old: Node, new: Node) -> None:
    for node in graph.nodes:
        node.inputs = [new if i is old else i for i in node.inputs]
    graph.outputs = [new if o is old else o for o in graph.outputs]


Rule = Callable[[Node], "Node | None"]


def apply_rules(graph: Graph, rules: list[Rule], max_rounds: int = 10) -> bool:
    """Apply `rules` to every node, in order, until nothing changes."""
    changed_any = False
    for _ in range(max_rounds):
        changed = False
        result: list[Node] = []
        for node in list(graph.nodes):
            result.append(node)
            for rule in rules:
                replacement = rule(node)
                if replacement is None or replacement is node:
                    continue
                if replacement.type != node.type:
                    raise AssertionError(f"rule {rule.__name__} changed the type of {node}")
                if replacement not in graph.params and replacement not in result:
                    result.insert(len(result) - 1, replacement)  # right before the node it replaces
                replace_uses(graph, node, replacement)
                changed = True
                break
        graph.nodes = result
        changed_any |= changed
        if not changed:
            break
    return changed_any
