"""From one AOTAutograd FX graph to a callable: import, run the pass pipeline, build the executor.

Graphs with symbolic shapes (Dynamo's automatic dynamic shapes) are specialized: imported anew for
each concrete input signature met at run time, and cached by it.
"""
from __future__ import annotations

import time
import warnings

import torch

from .. import config, events
from ..errors import FallbackWarning, InputError, NumericsError, TensorsmithError, UnsupportedError
from ..log import log
from ..passes.pipeline import run_pipeline
from ..runtime.codegen import backend_for, generate_code
from ..runtime.compiled import IndexOutOfRange
from ..runtime.executor import GraphExecutor
from .importer import import_graph
from .report import GraphRecord, new_record


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


def _build(gm: torch.fx.GraphModule, args, record: GraphRecord,
           saved_from: int | None = None) -> GraphExecutor:
    start = time.perf_counter()
    imported = import_graph(gm, args, name=record.kind)
    graph = run_pipeline(imported.graph, record.graph_id)
    if record.specializations == 0:  # later shapes import the same ops again
        record.nodes = len(graph.nodes)
        record.native.update(imported.report.native)
        record.fallbacks.extend(imported.report.fallbacks)
    record.specializations += 1
    positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    runner = generate_code(graph, record) if _generates_code(graph) else None
    fallbacks = ", ".join(sorted({f.target for f in imported.report.fallbacks})) or "none"
    log(1, f"{record.graph_id}: {len(graph.nodes)} nodes, {sum(imported.report.native.values())} "
           f"native ops, fallbacks: {fallbacks} ({(time.perf_counter() - start) * 1e3:.0f} ms)")
    events.graph_compiled(record, time.perf_counter() - start, args)
    return GraphExecutor(imported, positions, runner, saved_from)


def _generates_code(graph) -> bool:
    return backend_for(graph) is not None


class _Specializing:
    """Imports a symbolic graph once per concrete argument signature."""

    def __init__(self, gm, record: GraphRecord, saved_from: int | None):
        self.gm, self.record, self.saved_from = gm, record, saved_from
        self.cache: dict[tuple, GraphExecutor] = {}

    def __call__(self, *args):
        key = _signature(args)
        executor = self.cache.get(key)
        if executor is None:
            shapes = [list(a.shape) for a in args if isinstance(a, torch.Tensor)]
            log(1, f"{self.record.graph_id}: input shapes changed; compiling a specialization "
                   f"(number {len(self.cache) + 1}) for {shapes}")
            if self.cache:
                events.recompiling(self.record, "input shapes changed", args)
            executor = self.cache[key] = _guarded(lambda: _build(self.gm, args, self.record, self.saved_from),
                                                  self.gm, self.record)
        return executor(*args)


def _guarded(build, gm, record: GraphRecord):
    """Build, or, if the compiler fails on this graph, run it through ATen and say why."""
    try:
        return _FallsBackAtRunTime(build(), gm, record)
    except UnsupportedError as e:  # a limit of the compiler, not a bug: fall back even when strict
        reason = f"unsupported: {e}"
    except TensorsmithError as e:
        if config.strict:
            raise
        reason = f"{type(e).__name__}: {e}"
    except Exception as e:  # a compiler bug must not take the user's model down
        if config.strict:
            raise
        reason = f"internal error {type(e).__name__}: {e}"
    return fall_back(gm, record, reason)


# What a compiled call may raise to the user: their error, as eager would raise it (a bad argument,
# an index out of range, a numerics check they asked for), or the device's memory running out. A
# library step that fails otherwise (ExecutionError) may be our doing: it falls back.
_USERS_ERRORS = (InputError, IndexOutOfRange, NumericsError, torch.OutOfMemoryError)


class _FallsBackAtRunTime:
    """Runs a built graph; an internal error in a call (anything but `_USERS_ERRORS`) makes that
    call and every later one run the graph through ATen. Graphs are functional (AOTAutograd applies
    mutations after the call), so running the call again through ATen is exact."""

    def __init__(self, executor: GraphExecutor, gm, record: GraphRecord):
        self.executor, self.gm, self.record = executor, gm, record

    def __call__(self, *args):
        if self.executor is None:
            return self.gm(*args)
        try:
            return self.executor(*args)
        except _USERS_ERRORS:
            raise
        except Exception as e:
            if config.strict:
                raise
            self.executor = None
            fall_back(self.gm, self.record, f"internal error while running, {type(e).__name__}: {e}")
            return self.gm(*args)


_WARNED: set[str] = set()


def fall_back(gm, record: GraphRecord, reason: str):
    """Record, report and warn (once per kind of reason) that `gm` runs through ATen; returns it."""
    record.whole_graph_fallback = reason.splitlines()[0] if reason else "no reason given"
    events.graph_fallback(record)
    log(1, f"{record.graph_id}: running through ATen: {record.whole_graph_fallback}")
    kind = record.whole_graph_fallback.split(":")[0]
    if kind not in _WARNED:
        _WARNED.add(kind)
        warnings.warn(FallbackWarning(
            f"tensorsmith: graph {record.graph_id} runs through ATen without tensorsmith's kernels "
            f"(same numbers, not faster): {record.whole_graph_fallback[:300]}. Later graphs falling "
            f"back for this kind of reason are not warned about: tensorsmith.explain() lists them, "
            f"TENSORSMITH_DEBUG=1 logs each."), stacklevel=2)
    return gm


def compile_fx_graph(gm: torch.fx.GraphModule, example_inputs, kind: str):
    """The callable that runs `gm` (a forward, backward or inference graph) through tensorsmith."""
    record = new_record(kind)
    saved_from = _saved_outputs_start(kind)
    if any(_is_symbolic(a) for a in example_inputs):
        return events.handed_over(_Specializing(gm, record, saved_from), record)
    return events.handed_over(_guarded(lambda: _build(gm, list(example_inputs), record, saved_from),
                                       gm, record), record)
