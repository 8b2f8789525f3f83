"""What the compiler did: graphs, graph breaks and recompiles from Dynamo; fallbacks from
tensorsmith's own record (tensorsmith.records.RECORDS).

Dynamo's counters are process-wide, so the first call of each backend (where compilation happens)
is measured alone, and every later call is checked for new graphs: a graph compiled after the first
call is a recompile, the kind that silently eats a benchmark's time.
"""
from __future__ import annotations

from torch._dynamo.utils import counters

from .. import records


def graphs_compiled() -> int:
    return counters["stats"]["unique_graphs"]


class FirstCall:
    """Counts around one backend's first call."""

    def __init__(self):
        counters.clear()
        self.records_start = len(records.RECORDS)

    def result(self) -> dict:
        # Recompiles are not read from Dynamo's recompile reasons: with several backends on one
        # model, the second backend's first compile is a "recompile" of the same code object.
        return {"graphs": graphs_compiled(),
                "graph_breaks": sum(counters["graph_break"].values()),
                "recompiles": 0}


def tensorsmith_fallbacks(records_start: int) -> dict:
    """Fallback ops, whole-graph fallbacks and re-specializations in the records since a point."""
    graphs = records.RECORDS[records_start:]
    details = [f"{target} x{n} at {source or '<unknown source>'}: {reason}"
               for (target, source, reason), n in records.fallback_summary(graphs).most_common()]
    details += [f"graph {r.graph_id} through ATen: {r.whole_graph_fallback}"
                for r in graphs if r.whole_graph_fallback]
    return {"fallback_ops": sum(len(r.fallbacks) for r in graphs),
            "fallback_graphs": sum(1 for r in graphs if r.whole_graph_fallback),
            "respecializations": sum(max(0, r.specializations - 1) for r in graphs),
            "details": details}
