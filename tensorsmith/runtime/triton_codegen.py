"""Graph -> schedule -> Triton source -> TritonGraph: the code generator for CUDA graphs (and for
CPU graphs under TRITON_INTERPRET=1 with TENSORSMITH_EXECUTOR=triton), timed and recorded."""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from .. import config
from ..codegen.exprs import half_kernels
from ..codegen.schedule import KernelStep
from ..codegen.triton.build import interpreting, load_module
from ..codegen.triton.emit import emit_kernel, emit_module
from ..frontend.report import GraphRecord
from ..log import log
from ..passes.fuse import schedule
from .codegen import graph_device
from .cuda import TritonGraph

_COMPILES = ThreadPoolExecutor(max_workers=max(config.compile_threads, 1),
                               thread_name_prefix="tensorsmith-triton")


def _precompile(module, kernels, plan) -> list[Future]:
    """Compile each distinct kernel in the background (Triton's warmup: no launch), so the graph's
    first call finds them built; argument types stand in for the buffers (16-byte aligned, as the
    arena and PyTorch's allocations are)."""
    if interpreting() or config.compile_threads <= 0:
        return []
    futures, seen = [], set()
    for k in kernels:
        if k is None or k.name in seen:
            continue
        seen.add(k.name)
        dtypes = [plan.buffers[b].type.dtype.torch_dtype for b in k.args] + [torch.int32]
        futures.append(_COMPILES.submit(getattr(module, k.name).warmup, *dtypes, grid=k.grid,
                                        num_warps=k.num_warps))
    return futures


def generate_triton_code(graph, record=None) -> TritonGraph:
    """Compile `graph` to Triton kernels and library calls; stats go to `record`."""
    record = record or GraphRecord(graph.name, graph.name)
    start = time.perf_counter()
    with half_kernels(config.half_kernels):
        plan = schedule(graph)
    dtypes = {name: b.type.dtype for name, b in plan.buffers.items() if hasattr(b.type, "dtype")}
    kernels = [emit_kernel(step.kernel, dtypes) for step in plan.steps if isinstance(step, KernelStep)]
    source = emit_module([k for k in kernels if k is not None], interpreted=interpreting())
    if config.dump_dir:
        with open(os.path.join(config.dump_dir, f"{record.graph_id}.kernels.py"), "w") as f:
            f.write(source)
    module, record.cache_hit = load_module(source)
    with unset_fake_temporarily():  # the arena and constants are real memory
        compiled = TritonGraph(plan, kernels, module, record, graph_device(graph),
                               _precompile(module, kernels, plan))
    record.kernels = len(kernels)
    record.library_calls = len(plan.steps) - len(kernels)
    record.peak_bytes = compiled.plan.peak_bytes
    distinct = len({k.name for k in kernels if k is not None})
    log(1, f"{record.graph_id}: {len(kernels)} Triton kernels ({distinct} distinct), "
           f"{record.library_calls} library calls, arena {compiled.plan.arena_bytes / 2**20:.2f} MiB, "
           f"generated in {(time.perf_counter() - start) * 1e3:.0f} ms")
    return compiled
