"""Graph -> schedule -> Triton source -> TritonGraph: the code generator for CUDA graphs (and for
CPU graphs under TRITON_INTERPRET=1 with TENSORSMITH_EXECUTOR=triton), timed and recorded."""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch._subclasses.fake_tensor import FakeTensorMode, unset_fake_temporarily

from .. import config
from ..codegen.exprs import half_kernels
from ..codegen.schedule import KernelStep, LibraryStep
from ..codegen.triton.build import compile_and_load, interpreting, load_module
from ..codegen.triton.emit import emit_kernel, emit_module
from ..codegen.triton.launch import argument_dtypes
from ..frontend.report import GraphRecord
from ..ir.aten import from_attr
from ..ir.interpret import Interpreter
from ..kernels import attention_op
from ..log import log
from ..passes import split_reduction
from ..passes.fuse import schedule
from .codegen import graph_device
from .cuda import TritonGraph

_COMPILES = ThreadPoolExecutor(max_workers=max(config.compile_threads, 1),
                               thread_name_prefix="tensorsmith-triton")


def _compile_and_load(kernel, dtypes, device: str, **launch) -> None:
    """compile_and_load on `device`, from a background thread: building the launchers at first
    launch instead (a quarter second each) took ~4 s of GPT-2's first step on the H100 machine."""
    with torch.cuda.device(device):
        compile_and_load(kernel, *dtypes, **launch)


def _precompile(module, kernels, plan, device: str) -> list[Future]:
    """Compile and load each distinct kernel in the background, so the graph's first call finds them
    ready; argument types stand in for the buffers (16-byte aligned, as the arena and PyTorch's
    allocations are)."""
    if interpreting() or config.compile_threads <= 0:
        return []
    futures, seen = [], set()
    for k in kernels:
        if k is None or k.name in seen:
            continue
        seen.add(k.name)
        dtypes = argument_dtypes(plan.buffers, k)
        futures.append(_COMPILES.submit(_compile_and_load, getattr(module, k.name), dtypes, device,
                                        grid=k.grid, num_warps=k.num_warps))
    return futures


_ATTENTION = "tensorsmith.attention.default"


def _precompile_attention(plan, device: str) -> list[Future]:
    """Compile the kernels of the graph's attention library steps (forward and backward) in the
    background too: Triton would compile them at their first launch, on the calling thread, a few
    seconds for GPT-2's four. Fake tensors with the steps' shapes, strides and device stand in. Once
    per distinct layout: GPT-2's 12 layers had compiled the same kernels 12 times at once."""
    if interpreting() or config.compile_threads <= 0 or not str(device).startswith("cuda"):
        return []
    futures, seen = [], set()
    for step in plan.steps:
        if isinstance(step, LibraryStep) and step.node.op == "fallback" and \
                step.node.attrs["target"] == _ATTENTION:
            q, k, v, mask, is_causal, _ = _fake_arguments(plan, step, device)
            layout = (is_causal, *((t.dtype, t.shape, t.stride(), t.storage_offset()) if t is not None else None
                                   for t in (q, k, v, mask)))
            if layout not in seen:  # one per layout: threads compiling the same kernel each compile it
                seen.add(layout)
                futures.append(_COMPILES.submit(attention_op.precompile, q, k, v, mask, is_causal))
    return futures


def _fake_arguments(plan, step: LibraryStep, device: str) -> list:
    """The call arguments of a library step, its tensors fake (shapes, strides, device only)."""
    with unset_fake_temporarily(), FakeTensorMode():
        views = step.views or [[]] * len(step.inputs)
        inputs = [Interpreter().apply_views(torch.empty(plan.buffers[b].type.shape, device=device,
                                                        dtype=plan.buffers[b].type.dtype.torch_dtype), chain)
                  for b, chain in zip(step.inputs, views)]
        return from_attr(step.node.attrs["args"], inputs, lambda dtype: dtype.torch_dtype)


def generate_triton_code(graph, record=None) -> TritonGraph:
    """Compile `graph` to Triton kernels and library calls; stats go to `record`."""
    record = record or GraphRecord(graph.name, graph.name)
    start = time.perf_counter()
    split_reduction.run(graph)  # GPU-only: the C++ kernels parallelize over columns well enough
    with half_kernels(config.half_kernels):
        plan = schedule(graph)
    dtypes = {name: b.type.dtype for name, b in plan.buffers.items() if hasattr(b.type, "dtype")}
    kernels = [emit_kernel(step.kernel, dtypes) for step in plan.steps if isinstance(step, KernelStep)]
    source = emit_module([k for k in kernels if k is not None], interpreted=interpreting())
    if config.dump_dir:
        with open(os.path.join(config.dump_dir, f"{record.graph_id}.kernels.py"), "w") as f:
            f.write(source)
    module, record.cache_hit = load_module(source)
    device = graph_device(graph)
    with unset_fake_temporarily():  # the arena and constants are real memory
        compiling = _precompile(module, kernels, plan, device) + _precompile_attention(plan, device)
        compiled = TritonGraph(plan, kernels, module, record, device, compiling)
    record.kernels = len(kernels)
    record.library_calls = len(plan.steps) - len(kernels)
    record.peak_bytes = compiled.plan.peak_bytes
    distinct = len({k.name for k in kernels if k is not None})
    log(1, f"{record.graph_id}: {len(kernels)} Triton kernels ({distinct} distinct), "
           f"{record.library_calls} library calls, arena {compiled.plan.arena_bytes / 2**20:.2f} MiB, "
           f"generated in {(time.perf_counter() - start) * 1e3:.0f} ms")
    return compiled
