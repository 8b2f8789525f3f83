"""Dead code elimination: drop nodes no output depends on.

Random ops count as dead too when unused: dropping one does not change any output's distribution.
"""
from __future__ import annotations

from ..ir.graph import Graph


def run(graph: Graph) -> bool:
    live = set(graph.outputs)
    for node in reversed(graph.nodes):
        if node in live:
            live.update(node.inputs)
    kept = [n for n in graph.nodes if n in live]
    changed = len(kept) != len(graph.nodes)
    graph.nodes = kept
    return changed
