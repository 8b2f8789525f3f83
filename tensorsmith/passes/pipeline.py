"""The passes, in order, in one place: `PIPELINES` names the pass lists a graph runs through.

"optimize" runs on every graph right after import, whatever its backend; then the backend's own
list runs just before its schedule (compile/codegen.py). Each pass is verified (config.verify_each_stage),
dumped (TENSORSMITH_DUMP) and logged (TENSORSMITH_DEBUG=2) after it runs.
"""
from __future__ import annotations

import time

from .. import config
from ..dump import StageDump
from ..ir.graph import Graph
from ..ir.printer import print_graph
from ..ir.verify import verify
from ..log import log
from . import cse, dce, fold, simplify, split_reduction

PIPELINES = {
    "optimize": [("simplify", simplify.run), ("fold", fold.run), ("cse", cse.run), ("dce", dce.run)],
    "cpp": [],  # the C++ kernels parallelize over columns well enough without splitting
    "triton": [("split_reduction", split_reduction.run)],
    "interpreter": [],
}


def run_pipeline(graph: Graph, pipeline: str, dump: StageDump | None = None) -> Graph:
    """Run the passes of PIPELINES[pipeline] on `graph` in place; verify and dump after each."""
    dump = dump or StageDump(graph.name)
    for name, run in PIPELINES[pipeline]:
        start = time.perf_counter()
        changed = run(graph)
        if config.verify_each_stage:
            verify(graph)
        dump(name, lambda: print_graph(graph), "tsir")
        log(2, f"{dump.graph_id}: pass {name} {'changed' if changed else 'unchanged'} "
               f"({(time.perf_counter() - start) * 1e3:.1f} ms)")
    return graph
