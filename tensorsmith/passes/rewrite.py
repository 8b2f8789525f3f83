"""Shared machinery of rewriting passes: substitute values, and run rules to a fixed point.

A rule looks at one node and returns None (no match), an existing node that computes the same value,
or a new node (built with `new_node`, possibly on other new nodes) to insert in its place. Replaced
nodes are left for DCE, and no rule looks at them again: nothing reads them any more, and a rule
matching one anew would only add a dead copy of its replacement each round, so the pass would never
reach its fixed point. Replacements are applied in one walk per round (each node's operands looked
up as it is reached), so a pass stays linear in the graph's size.
"""
from __future__ import annotations

from typing import Callable

from ..ir.graph import Graph, Node
from ..ir.ops import infer_type
from ..ir.sizes import SymbolicUnsupported


def new_node(op: str, inputs, attrs: dict, like: Node) -> Node:
    """A node not yet in any graph, with its type inferred and `like`'s source line."""
    inputs = list(inputs)
    return Node(op, inputs, dict(attrs), infer_type(op, [i.type for i in inputs], attrs), like.source)


def scalar_constant(node: Node):
    """The value of a constant node that holds one value for every element, else None."""
    if node.op == "constant" and not isinstance(node.attrs["value"], list):
        return node.attrs["value"]
    return None


def constant_like(value, node: Node) -> Node:
    """A new constant node of `node`'s type holding `value` in every element."""
    t = node.type
    return new_node("constant", [], {"value": value, "shape": list(t.shape), "dtype": t.dtype,
                                     "device": t.device}, node)


def substitute(node: Node, mapping: dict[Node, Node]) -> None:
    """Point `node`'s operands at their replacements."""
    if mapping:
        node.inputs = [mapping.get(i, i) for i in node.inputs]


def substitute_outputs(graph: Graph, mapping: dict[Node, Node]) -> None:
    graph.outputs = [mapping.get(o, o) for o in graph.outputs]


Rule = Callable[[Node], "Node | None"]


def _insert_before_last(node: Node, result: list[Node], present: set[Node]) -> None:
    """Put `node`, and the new nodes it is built on, right before the node it replaces (the last
    one of `result`), operands first."""
    if node in present:
        return
    for operand in node.inputs:
        _insert_before_last(operand, result, present)
    result.insert(len(result) - 1, node)
    present.add(node)


def apply_rules(graph: Graph, rules: list[Rule], max_rounds: int = 10) -> bool:
    """Apply `rules` to every node, in order, until nothing changes."""
    changed_any = False
    replaced: set[Node] = set()  # dead since an earlier round: no rule needs to see them again
    for _ in range(max_rounds):
        mapping: dict[Node, Node] = {}
        result: list[Node] = []
        present = set(graph.params)
        for node in graph.nodes:
            substitute(node, mapping)
            result.append(node)
            present.add(node)
            if node in replaced:
                continue
            for rule in rules:
                try:
                    replacement = rule(node)
                except SymbolicUnsupported:  # whether it applies depends on symbolic sizes: it does not
                    continue
                if replacement is None or replacement is node:
                    continue
                if replacement.type != node.type:
                    raise AssertionError(f"rule {rule.__name__} changed the type of {node}")
                _insert_before_last(replacement, result, present)
                mapping[node] = replacement
                break
        replaced.update(mapping)
        substitute_outputs(graph, mapping)
        graph.nodes = result
        changed_any |= bool(mapping)
        if not mapping:
            break
    return changed_any
