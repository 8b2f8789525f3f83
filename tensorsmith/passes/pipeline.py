"""The pass pipeline, in order, in one place; each stage is verified and dumped on request."""
from __future__ import annotations

import os
import time

from .. import config
from ..ir.graph import Graph
from ..ir.printer import print_graph
from ..ir.verify import verify
from . import cse, dce, fold, simplify
from ..log import log

PASSES = [("simplify", simplify.run), ("fold", fold.run), ("cse", cse.run), ("dce", dce.run)]


def dump(graph: Graph, graph_id: str, index: int, stage: str) -> None:
    if not config.dump_dir:
        return
    os.makedirs(config.dump_dir, exist_ok=True)
    path = os.path.join(config.dump_dir, f"{graph_id}.{index:02d}_{stage}.tsir")
    with open(path, "w") as f:
        f.write(print_graph(graph))


def run_pipeline(graph: Graph, graph_id: str) -> Graph:
    """Run every pass on `graph` in place; verify and dump after each stage."""
    dump(graph, graph_id, 0, "import")
    for index, (name, run) in enumerate(PASSES, start=1):
        start = time.perf_counter()
        changed = run(graph)
        if config.verify_each_stage:
            verify(graph)
        dump(graph, graph_id, index, name)
        log(2, f"{graph_id}: pass {name} {'changed' if changed else 'unchanged'} "
               f"({(time.perf_counter() - start) * 1e3:.1f} ms)")
    if config.debug >= 3:
        print(print_graph(graph))
    return graph
