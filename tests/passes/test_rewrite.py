"""The rule machinery: a rewriting pass reaches its fixed point instead of running out of rounds."""
from __future__ import annotations

from ir.ir_builders import text

from tensorsmith.ir import parse_graph
from tensorsmith.passes.rewrite import apply_rules, new_node

NESTED_RESHAPES = """
    graph @f(%x: f32[2,3,4]@cpu) {
      %0 = reshape(%x) {shape=[6,4]} : f32[6,4]@cpu
      %1 = reshape(%0) {shape=[24]} : f32[24]@cpu
      %2 = exp(%1) : f32[24]@cpu
      return %2
    }
"""


def _merge_reshapes(node):
    if node.op == "reshape" and node.inputs[0].op == "reshape":
        return new_node("reshape", [node.inputs[0].inputs[0]], {"shape": node.attrs["shape"]}, node)
    return None


def test_replaced_nodes_are_not_rewritten_again():
    """A replaced node stays in the graph for DCE, but is dead: matching it again each round would
    add a dead copy of its replacement per round and never let the pass stop early."""
    graph = parse_graph(text(NESTED_RESHAPES))
    seen = []

    def rule(node):
        seen.append(node)
        return _merge_reshapes(node)

    assert apply_rules(graph, [rule])
    assert len(graph.nodes) == 4  # the three nodes and one merged reshape
    merged = graph.nodes[1]  # inserted before the node it replaces
    assert merged.inputs == graph.params and graph.nodes[3].inputs == [merged]
    assert len(seen) == 3 + 3  # round one sees the three nodes, round two the live ones
