"""Graph -> schedule -> C++ -> built module -> CompiledGraph, timed and recorded per stage."""
from __future__ import annotations

import importlib.util
import os
import time
from concurrent.futures import ThreadPoolExecutor

from torch._subclasses.fake_tensor import unset_fake_temporarily

from .. import config, events
from ..codegen.cpp.build import build_module
from .cache import cache_root
from ..codegen.cpp.emit import emit_module
from ..codegen.schedule import KernelStep
from ..frontend.report import GraphRecord
from ..log import log
from ..passes.fuse import schedule
from .compiled import CompiledGraph
from .numerics import guard_for

_BUILDS = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="tensorsmith-build")


def graph_device(graph) -> str | None:
    """The one device all of the graph's values live on, or None when they are on several."""
    types = [p.type for p in graph.params] + [n.type for n in graph.nodes]
    devices = {t.device for t in types if hasattr(t, "device")}
    return devices.pop() if len(devices) == 1 else ("cpu" if not devices else None)


def backend_for(graph) -> str | None:
    """The code generator for this graph's device and `config.executor`: "cpp", "triton", or None
    (the reference interpreter: executor "interpreter", values on several devices, or a CUDA graph
    where Triton is not installed)."""
    device = graph_device(graph)
    if config.executor == "interpreter" or device is None:
        return None
    if device == "cpu":
        return {"cpp": "cpp", "triton": "triton"}.get(config.executor)
    return "triton" if device.startswith("cuda") and importlib.util.find_spec("triton") else None


def generate_code(graph, record=None):
    """Compile `graph` to C++ kernels and library calls (Triton kernels for a CUDA graph: see
    triton_codegen.py); stats go to `record` (a GraphRecord)."""
    if backend_for(graph) == "triton":
        from .triton_codegen import generate_triton_code  # imports Triton only where used
        return generate_triton_code(graph, record)
    record = record or GraphRecord(graph.name, graph.name)
    start = time.perf_counter()
    plan = schedule(graph)
    kernels = [step.kernel for step in plan.steps if isinstance(step, KernelStep)]
    dtypes = {name: b.type.dtype for name, b in plan.buffers.items() if hasattr(b.type, "dtype")}
    numerics = guard_for(graph, record.graph_id)  # checks are part of the code: fixed at compile time
    source = emit_module(kernels, dtypes, check_numerics=numerics is not None)
    if config.dump_dir:
        with open(os.path.join(config.dump_dir, f"{record.graph_id}.kernels.cpp"), "w") as f:
            f.write(source)
    cache_root()  # refuse an unsafe cache now, while the graph can still run through ATen
    # The system compiler runs in the background (tracing the backward graph goes on meanwhile);
    # the first call waits for it.
    library = _BUILDS.submit(build_module, source)
    library.add_done_callback(events.on_built(record))
    with unset_fake_temporarily():  # the arena and constants are real memory
        compiled = CompiledGraph(plan, library, record, numerics)
    record.kernels = len(kernels)
    record.library_calls = len(plan.steps) - len(kernels)
    record.peak_bytes = compiled.plan.peak_bytes
    log(1, f"{record.graph_id}: {len(kernels)} kernels, {record.library_calls} library calls, "
           f"arena {compiled.plan.arena_bytes / 2**20:.2f} MiB (unplanned "
           f"{compiled.plan.unplanned_bytes / 2**20:.2f} MiB), "
           f"scheduled in {(time.perf_counter() - start) * 1e3:.0f} ms")
    return compiled
