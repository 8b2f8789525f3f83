"""From one AOTAutograd FX graph to a callable, top to bottom: import (frontend/importer.py) ->
the passes every backend runs -> the backend's passes, schedule, emitted source, built module and
runner (codegen.py) -> the executor that checks arguments and assembles outputs.

Graphs with symbolic shapes (Dynamo's automatic dynamic shapes) are specialized: imported anew for
each concrete input signature met at run time, and cached by it. Failures fall back (fallback.py).
"""
from __future__ import annotations

import time

import torch

from .. import events
from ..dump import StageDump
from ..frontend.importer import import_graph
from ..ir.printer import print_graph
from ..log import log
from ..passes.pipeline import run_pipeline
from ..records import GraphRecord, new_record
from ..runtime.executor import GraphExecutor
from .codegen import generate_code
from .fallback import guarded


def build(gm: torch.fx.GraphModule, args, record: GraphRecord, saved_from: int | None = None) -> GraphExecutor:
    """Compile `gm` for these arguments' shapes: the whole pipeline, each stage dumped on request."""
    start = time.perf_counter()
    dump = StageDump(record.graph_id)
    imported = import_graph(gm, args, name=record.kind)
    dump("import", lambda: print_graph(imported.graph), "tsir")
    graph = run_pipeline(imported.graph, "optimize", dump)
    if record.specializations == 0:  # later shapes import the same ops again
        record.nodes = len(graph.nodes)
        record.native.update(imported.report.native)
        record.fallbacks.extend(imported.report.fallbacks)
    record.specializations += 1
    runner = generate_code(graph, record, dump)
    fallbacks = ", ".join(sorted({f.target for f in imported.report.fallbacks})) or "none"
    log(1, f"{record.graph_id}: {len(graph.nodes)} nodes, {sum(imported.report.native.values())} "
           f"native ops, fallbacks: {fallbacks} ({(time.perf_counter() - start) * 1e3:.0f} ms)")
    events.graph_compiled(record, time.perf_counter() - start, args)
    positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    return GraphExecutor(imported, positions, runner, saved_from)


def _is_symbolic(value) -> bool:
    if isinstance(value, torch.SymInt):
        return True
    if isinstance(value, torch.Tensor):
        return any(isinstance(s, torch.SymInt) for s in value.shape)
    return False


def _signature(args) -> tuple:
    return tuple((tuple(a.shape), a.dtype, a.device) if isinstance(a, torch.Tensor) else a
                 for a in args)


def _saved_outputs_start(kind: str) -> int | None:
    """For a training forward, the index of its first output that only its backward reads (the
    activations AOTAutograd saves follow the mutated inputs and the model's own outputs); None
    where that is not known. Read while AOTAutograd is compiling the graph."""
    context = torch._guards.TracingContext.try_get()
    meta = getattr(context, "fw_metadata", None)
    if kind != "forward" or meta is None or getattr(meta, "tokens", None):
        return None  # effect tokens come first and are not counted in num_forward
    return getattr(meta, "num_forward", None)


class _Specializing:
    """Imports a symbolic graph once per concrete argument signature."""

    def __init__(self, gm, record: GraphRecord, saved_from: int | None):
        self.gm, self.record, self.saved_from = gm, record, saved_from
        self.cache: dict[tuple, object] = {}

    def __call__(self, *args):
        key = _signature(args)
        executor = self.cache.get(key)
        if executor is None:
            shapes = [list(a.shape) for a in args if isinstance(a, torch.Tensor)]
            log(1, f"{self.record.graph_id}: input shapes changed; compiling a specialization "
                   f"(number {len(self.cache) + 1}) for {shapes}")
            if self.cache:
                events.recompiling(self.record, "input shapes changed", args)
            executor = self.cache[key] = guarded(lambda: build(self.gm, args, self.record, self.saved_from),
                                                 self.gm, self.record)
        return executor(*args)


def compile_fx_graph(gm: torch.fx.GraphModule, example_inputs, kind: str):
    """The callable that runs `gm` (a forward, backward or inference graph) through tensorsmith."""
    record = new_record(kind)
    saved_from = _saved_outputs_start(kind)
    if any(_is_symbolic(a) for a in example_inputs):
        return events.handed_over(_Specializing(gm, record, saved_from), record)
    return events.handed_over(guarded(lambda: build(gm, list(example_inputs), record, saved_from),
                                      gm, record), record)
