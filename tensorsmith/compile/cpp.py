"""The C++ backend's steps: schedule -> C++/OpenMP source -> module built by g++ in the background
-> CompiledGraph (runtime/compiled.py)."""
from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

from .. import events
from ..cache import cache_root
from ..codegen.cpp.build import build_module
from ..codegen.cpp.emit import emit_module
from ..codegen.schedule import KernelStep, Schedule
from ..ir.graph import Graph
from ..passes.fuse import schedule as fuse
from ..records import GraphRecord
from ..runtime.compiled import CompiledGraph
from ..runtime.numerics import guard_for
from .emitted import Emitted

_BUILDS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="tensorsmith-build")


def schedule(graph: Graph) -> Schedule:
    return fuse(graph)


def emit(plan: Schedule, graph: Graph, record: GraphRecord) -> Emitted:
    """One C++ module of all kernels; with numeric guards on, the kernels check their stores
    (decided now: the checks are part of the code)."""
    kernels = [step.kernel for step in plan.steps if isinstance(step, KernelStep)]
    dtypes = {name: b.type.dtype for name, b in plan.buffers.items() if hasattr(b.type, "dtype")}
    numerics = guard_for(graph, record.graph_id)
    source = emit_module(kernels, dtypes, check_numerics=numerics is not None,
                         sizes=plan.size_names)
    return Emitted(source, "cpp", kernels, numerics)


def build(code: Emitted, record: GraphRecord) -> Future:
    """g++ in the background (tracing the backward graph goes on meanwhile); the first call waits.
    An unsafe cache is refused now, while the graph can still run through ATen."""
    cache_root()
    library = _BUILDS.submit(build_module, code.source)
    library.add_done_callback(events.on_built(record))
    return library


def runner(plan: Schedule, code: Emitted, library: Future, graph: Graph, record: GraphRecord):
    return CompiledGraph(plan, library, record, code.numerics)
