"""The Triton backend's steps: schedule -> Triton source -> module -> TritonGraph (runtime/cuda.py),
for CUDA graphs (and CPU graphs under TRITON_INTERPRET=1 with TENSORSMITH_EXECUTOR=triton)."""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import torch
from torch._subclasses.fake_tensor import FakeTensorMode, unset_fake_temporarily

from .. import config
from ..codegen.exprs import half_kernels
from ..codegen.schedule import KernelStep, LibraryStep, Schedule
from ..codegen.triton.build import compile_and_load, interpreting, load_module
from ..codegen.triton.emit import emit_kernel, emit_module
from ..codegen.triton.launch import argument_dtypes, static_grid
from ..ir.aten import from_attr
from ..ir.graph import Graph, graph_device
from ..ir.interpret import Interpreter
from ..kernels import attention_op
from ..passes.fuse import schedule as fuse
from ..records import GraphRecord
from ..runtime.cuda import TritonGraph
from .emitted import Emitted

_COMPILES = ThreadPoolExecutor(max_workers=max(config.compile_threads, 1),
                               thread_name_prefix="tensorsmith-triton")


def _compile_and_load(kernel, dtypes, device: str, **launch) -> None:
    """compile_and_load on `device`, from a background thread: at first launch instead, building
    each launcher (a C compiler run) would hold up the graph's first call."""
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
                                        grid=static_grid(k.grid) or (1, 1, 1), num_warps=k.num_warps))
    return futures


_ATTENTION = "tensorsmith.attention.default"


def _precompile_attention(plan, device: str) -> list[Future]:
    """Compile the kernels of the graph's attention library steps (forward and backward) in the
    background too: Triton would compile them at their first launch, on the calling thread. Fake
    tensors with the steps' shapes, strides and device stand in. Once per distinct layout: identical
    layers would otherwise each compile the same kernels at once."""
    if interpreting() or config.compile_threads <= 0 or not str(device).startswith("cuda") or \
            plan.size_names:  # symbolic shapes: compiled at first launch, for the shapes it brings
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


def schedule(graph: Graph) -> Schedule:
    """Fusion admits half-precision nodes here where config.half_kernels says so (the Triton
    emitter rounds each op as eager does)."""
    with half_kernels(_half_kernels_for(graph)):
        return fuse(graph)


def _half_kernels_for(graph: Graph) -> bool:
    """config.half_kernels for this graph: "inference" admits them in all but training graphs
    (the importer names a graph by its kind)."""
    if config.half_kernels == "inference":
        return graph.name not in ("forward", "backward")
    return bool(config.half_kernels)


def emit(plan: Schedule, graph: Graph, record: GraphRecord) -> Emitted:
    """One Triton kernel per kernel step (None for a step with no point to compute), all in one
    module source."""
    dtypes = {name: b.type.dtype for name, b in plan.buffers.items() if hasattr(b.type, "dtype")}
    kernels = [emit_kernel(step.kernel, dtypes, plan.size_names) for step in plan.steps
               if isinstance(step, KernelStep)]
    source = emit_module([k for k in kernels if k is not None], interpreted=interpreting())
    return Emitted(source, "py", kernels)


def build(code: Emitted, record: GraphRecord):
    module, record.cache_hit = load_module(code.source)
    return module


def runner(plan: Schedule, code: Emitted, module, graph: Graph, record: GraphRecord) -> TritonGraph:
    """The TritonGraph, its kernels (and attention's) compiling in the background meanwhile."""
    device = graph_device(graph)
    compiling = _precompile(module, code.kernels, plan, device) + _precompile_attention(plan, device)
    return TritonGraph(plan, code.kernels, module, record, device, compiling)
