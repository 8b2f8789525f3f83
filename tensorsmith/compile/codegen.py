"""Code for an optimized graph on its backend (backends.py): the backend's passes, its schedule,
the source it emits, the module built from it, and the runner over that module."""
from __future__ import annotations

import time

from torch._subclasses.fake_tensor import unset_fake_temporarily

from ..codegen.printer import print_schedule
from ..dump import StageDump
from ..ir.graph import Graph
from ..ir.printer import print_graph
from ..ir.sizes import SymbolicUnsupported, size_symbols
from ..log import log
from ..passes.pipeline import run_pipeline
from ..records import GraphRecord
from .backends import SYMBOLIC_BACKENDS, backend_for, steps_of


def generate_code(graph: Graph, record: GraphRecord | None = None, dump: StageDump | None = None):
    """The runner for `graph` (a CompiledGraph or TritonGraph), or None where the interpreter runs
    it; stats go to `record`, stages to `dump`."""
    record = record or GraphRecord(graph.name, graph.name)
    dump = dump or StageDump(record.graph_id)
    start = time.perf_counter()
    backend = backend_for(graph)
    if backend not in SYMBOLIC_BACKENDS and size_symbols(graph):
        raise SymbolicUnsupported(f"the {backend} code generator takes static shapes")
    run_pipeline(graph, backend, dump)
    log(3, lambda: print_graph(graph))
    steps = steps_of(backend)
    if steps is None:
        return None
    plan = steps.schedule(graph)
    dump("schedule", lambda: print_schedule(plan))
    log(3, lambda: print_schedule(plan))
    code = steps.emit(plan, graph, record)
    dump("kernels", lambda: code.source, code.suffix)
    log(4, f"{record.graph_id}: generated {backend} source\n{code.source}")
    module = steps.build(code, record)
    with unset_fake_temporarily():  # the arena and constants are real memory
        runner = steps.runner(plan, code, module, graph, record)
    record.kernels = len(code.kernels)
    record.library_calls = len(plan.steps) - len(code.kernels)
    record.peak_bytes = runner.plan.peak_bytes
    distinct = len({k.name for k in code.kernels if k is not None})
    log(1, f"{record.graph_id}: {backend}: {len(code.kernels)} kernels ({distinct} distinct), "
           f"{record.library_calls} library calls, arena {runner.plan.arena_bytes / 2**20:.2f} MiB "
           f"(unplanned {runner.plan.unplanned_bytes / 2**20:.2f} MiB), "
           f"generated in {(time.perf_counter() - start) * 1e3:.0f} ms")
    return runner
