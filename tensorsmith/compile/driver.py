"""From one AOTAutograd FX graph to a callable, top to bottom: import (frontend/importer.py) ->
the passes every backend runs -> the backend's passes, schedule, emitted source, built module and
runner (codegen.py) -> the executor that checks arguments and assembles outputs.

A graph with symbolic shapes (Dynamo's automatic dynamic shapes) is compiled once with its sizes
symbolic where every stage takes them (ir/sizes.py); where one does not, per concrete shape where
specialize.py decides it pays. Failures fall back (fallback.py).
"""
from __future__ import annotations

import time

import torch

from .. import config, events, monitor
from ..dump import StageDump
from ..frontend.importer import import_graph
from ..ir.printer import print_graph
from ..ir.sizes import SymbolicUnsupported
from ..ir.types import device_name
from ..log import log
from ..passes.pipeline import run_pipeline
from ..records import GraphRecord, new_record
from ..runtime import lifetime
from ..runtime.executor import GraphExecutor
from .backends import SYMBOLIC_BACKENDS, backend_for_device
from .codegen import generate_code
from .fallback import FallsBackAtRunTime, guarded
from .specialize import Specializing, is_symbolic


def build(gm: torch.fx.GraphModule, args, record: GraphRecord, saved_from: int | None = None,
          symbolic: bool = False, written_back: dict[int, int] | None = None) -> GraphExecutor:
    """Compile `gm` for these arguments' shapes (or, `symbolic`, for every value of their symbolic
    sizes): the whole pipeline, each stage dumped on request. `written_back` maps an FX output to
    the FX argument AOTAutograd copies it into after the call (a mutated input)."""
    start = time.perf_counter()
    dump = StageDump(record.graph_id)
    imported = import_graph(gm, args, name=record.kind, symbolic=symbolic)
    positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
    imported.graph.written_back = _graph_written_back(imported, positions, written_back or {})
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
    return GraphExecutor(imported, positions, runner, saved_from)


def _graph_written_back(imported, positions: list[int], written_back: dict[int, int]) -> dict[int, int]:
    """`written_back` in the graph's terms: output index -> parameter index, for outputs that are
    computed tensors of the argument's type."""
    result = {}
    for output, argument in written_back.items():
        kind, index = imported.outputs[output]
        if kind != "tensor" or argument not in positions:
            continue
        param = positions.index(argument)
        try:
            if imported.graph.outputs[index].type == imported.graph.params[param].type:
                result[index] = param
        except SymbolicUnsupported:  # shapes not provably equal: written back by copying
            continue
    return result


def _written_back(kind: str, gm: torch.fx.GraphModule) -> dict[int, int]:
    """For an inference graph, FX output -> FX argument for the inputs it mutates: AOTAutograd
    returns their new values first and copies each into its input after the call (read while it
    compiles the graph; empty where that is not known). Only data mutations count."""
    meta = _aot_metadata()
    if kind != "inference" or meta is None:
        return {}
    try:
        mutated = list(meta.mutated_inp_runtime_indices)
        info = meta.input_info
    except AttributeError:
        return {}
    placeholders = sum(1 for n in gm.graph.nodes if n.op == "placeholder")
    if len(info) > placeholders:
        return {}
    return {output: argument for output, argument in enumerate(mutated)
            if info[argument].mutates_data and not info[argument].mutates_metadata}


def _saved_outputs_start(kind: str) -> int | None:
    """For a training forward, the index of its first output that only its backward reads (the
    activations AOTAutograd saves follow the mutated inputs and the model's own outputs); None
    where that is not known. Read while AOTAutograd is compiling the graph."""
    meta = _aot_metadata()
    if kind != "forward" or meta is None:
        return None
    return getattr(meta, "num_forward", None)


def _aot_metadata():
    """AOTAutograd's metadata of the graph it is compiling (`fw_metadata`: mutated inputs, outputs,
    saved activations), or None where there is none or where effect tokens come first among the
    inputs and outputs (its counts then do not index the graph's)."""
    meta = getattr(torch._guards.TracingContext.try_get(), "fw_metadata", None)
    return None if meta is None or getattr(meta, "tokens", None) else meta


def compile_fx_graph(gm: torch.fx.GraphModule, example_inputs, kind: str):
    """The callable that runs `gm` (a forward, backward or inference graph) through tensorsmith."""
    record = new_record(kind)
    saved_from = _saved_outputs_start(kind)
    written_back = _written_back(kind, gm)
    owner = lifetime.current()

    def built(args):
        with lifetime.owned_by(owner):
            return guarded(lambda: build(gm, list(args), record, saved_from, written_back=written_back),
                           gm, record)

    if any(is_symbolic(a) for a in example_inputs):
        runner = _build_symbolic(gm, example_inputs, record, saved_from, written_back) or \
            Specializing(gm, record, built)
        return monitor.watch(events.handed_over(runner, record), record)
    return monitor.watch(events.handed_over(built(example_inputs), record), record)


def _build_symbolic(gm, example_inputs, record: GraphRecord, saved_from: int | None,
                    written_back: dict[int, int]):
    """One compile for every size of a graph with symbolic sizes, or None where a stage needs
    static ones (or fails): the graph is then compiled per concrete shape."""
    if not config.symbolic_sizes:
        return None
    devices = {device_name(a.device) for a in example_inputs if isinstance(a, torch.Tensor)}
    backend = backend_for_device(devices.pop() if len(devices) == 1 else None)
    if backend not in SYMBOLIC_BACKENDS:
        log(1, f"{record.graph_id}: compiled per shape: the {backend} code generator takes static shapes")
        return None
    try:
        executor = build(gm, list(example_inputs), record, saved_from, symbolic=True,
                         written_back=written_back)
    except Exception as e:  # noqa: BLE001  (per-shape compiles follow, each with its own fallback)
        record.specializations, record.nodes = 0, 0
        record.native.clear()
        record.fallbacks.clear()
        log(1, f"{record.graph_id}: compiled per shape, not once for all sizes: {type(e).__name__}: {e}")
        return None
    record.symbolic = True
    return FallsBackAtRunTime(executor, gm, record)
