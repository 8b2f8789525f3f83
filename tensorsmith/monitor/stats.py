"""Per compiled graph: its calls and the host time inside them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class GraphStats:
    calls: int = 0
    seconds: float = 0.0  # host wall time inside the compiled graph's calls, inclusive


STATS: dict[str, GraphStats] = {}  # graph_id -> stats (graphs called since the last reset)


def time_in_compiled_graphs() -> float:
    return sum(s.seconds for s in STATS.values())
