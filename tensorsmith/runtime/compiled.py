"""A graph compiled to generated kernels: a generated Python wrapper calls the kernels (ctypes) and
library ops in schedule order, over a persistent arena laid out by the memory plan.

The wrapper is straight-line Python generated once per graph (no per-call interpretation of a
node list): arena pointers are baked in, outputs are allocated fresh, library calls are bound
closures. A graph with symbolic sizes takes their values after its tensors, passes them to every
kernel, and allocates its intermediate buffers on each call.
"""
from __future__ import annotations

import ctypes
import threading
from concurrent.futures import Future

import torch

from .. import config
from ..codegen.cpp.emit import ERROR_INDEX, ERROR_NONFINITE
from ..codegen.schedule import KernelStep, LibraryStep, Schedule
from ..errors import BuildError, IndexOutOfRange
from ..log import log
from ..ir.interpret import Interpreter, _constant
from . import lifetime
from .in_place import in_place_steps
from .library_call import library_call, returned, views_bound_once
from .memory import MemoryPlan, plan_memory
from .numerics import NumericsGuard
from .per_call import empty, frees, last_reads


class CompiledGraph:
    """Runs a schedule: `compiled(tensors) -> list of output tensors`."""

    def __init__(self, schedule: Schedule, library: Future, record,
                 numerics: NumericsGuard | None = None):
        self.schedule = schedule
        self.numerics = numerics  # set when the kernels were emitted with numeric checks
        self.record = record
        self.plan: MemoryPlan = plan_memory(schedule)
        self.arena = torch.empty(0, dtype=torch.uint8)  # allocated by _load, freed by release
        self.lock = threading.Lock()
        self.namespace: dict = {"torch": torch, "_raise": self._raise_index_error,
                                "_status": self._kernel_status}
        self.library = library  # a Future of (ctypes.CDLL, cache hit)
        # Kernels index row-major memory; parameters only library calls read may have any strides.
        read_by_kernels = {b for st in schedule.steps if isinstance(st, KernelStep) for b in st.kernel.inputs}
        self.row_major_params = [p in read_by_kernels for p in schedule.params]
        self.shared_outputs = schedule.shared_outputs()  # read by the executor
        self.source = None
        self._run = None
        self.size_names = list(schedule.size_names)
        self.sizes: dict = {}  # this call's values of the size symbols, read by library calls
        self.arena_views: list[str] = []  # the wrapper's names of library inputs viewed once in the arena
        lifetime.adopt(self)

    def release(self) -> None:
        """Free the arena (the model is gone, lifetime.py); a later call allocates it anew."""
        with self.lock:
            self._run = None
            for name in [*self.plan.offsets, *self.arena_views]:
                self.namespace.pop(name, None)
            self.arena = torch.empty(0, dtype=torch.uint8)

    def __call__(self, tensors, sizes: dict | None = None):
        with self.lock:
            if self._run is None:
                self._run = self._load()
            if not sizes:
                return self._run(*tensors)
            self.sizes.update(sizes)
            return self._run(*tensors, *(sizes[n] for n in self.size_names))

    def _load(self):
        """Wait for the module, then allocate the arena and generate the wrapper; if the compiler
        failed, run the graph through the interpreter (and say so), unless strict."""
        try:
            library, self.record.cache_hit = self.library.result()
        except BuildError as e:
            if config.strict:
                raise
            self.record.whole_graph_fallback = str(e).splitlines()[0]
            log(1, f"{self.record.graph_id}: running through the interpreter: {e}")
            graph = self.schedule.graph
            if self.numerics is not None:
                return lambda *tensors: self.numerics.run_interpreter(list(tensors))
            count = len(graph.params)
            return lambda *args: Interpreter().run(graph, list(args[:count]), dict(self.sizes))
        self.arena = torch.empty(self.plan.arena_bytes, dtype=torch.uint8)
        self.source = self._generate(library)
        exec(compile(self.source, f"<tensorsmith wrapper {self.schedule.graph.name}>", "exec"),
             self.namespace)
        return self.namespace["run"]

    def _view(self, name: str) -> torch.Tensor:
        buffer = self.schedule.buffers[name]
        dtype = buffer.type.dtype.torch_dtype
        offset = self.plan.offsets[name]
        raw = self.arena[offset:offset + buffer.type.numel * dtype.itemsize]
        return raw.view(dtype).view(buffer.type.shape)

    def _raise_index_error(self, kernel_name: str, sources: list):
        where = "; ".join(s for s in sources if s) or None
        raise IndexOutOfRange("an index read from data is out of range", f"generated {kernel_name}",
                              where)

    def _kernel_status(self, code: int, step: int, inputs: list, outputs: list):
        """A kernel returned nonzero (with numeric guards on): an index out of range, or NaN/Inf
        among the values it stored."""
        kernel = self.schedule.steps[step].kernel
        if code & ERROR_INDEX:
            self._raise_index_error(kernel.name, kernel.sources)
        if code & ERROR_NONFINITE and self.numerics is not None:
            self.numerics.kernel(self.schedule, kernel, inputs, outputs)

    def _generate(self, library) -> str:
        s, ns = self.schedule, self.namespace
        arguments = [*s.params, *self.size_names]
        lines = [f"def run({', '.join(arguments) + (',' if len(arguments) == 1 else '')}):"]
        per_call = set(self.plan.per_call)
        last_read = last_reads(s)
        in_place = in_place_steps(s)
        for name, node in s.constants.items():
            a = node.attrs
            ns[name] = _constant(a["value"], a["shape"], a["dtype"].torch_dtype, a["device"]).contiguous()
        outputs = set(s.outputs)
        for name in self.plan.offsets:
            ns[name] = self._view(name)
        self.arena_views = []
        fixed = {} if self.size_names else {name: ns[name] for name in self.plan.offsets}  # never per call
        for i, step in enumerate(s.steps):
            if isinstance(step, LibraryStep):
                bound, names, views = (step, step.inputs, {}) if i in in_place else views_bound_once(step, i, fixed)
                ns.update(views)
                self.arena_views += views
                ns[f"lib{i}"] = library_call(bound, self.numerics, self.sizes if self.size_names else None,
                                              i in in_place)
                lines.append(f"    {step.output} = lib{i}({', '.join(names)})")
                lines += frees(step.inputs, i, per_call, last_read)
                continue
            kernel = step.kernel
            function = getattr(library, kernel.name)
            function.restype = ctypes.c_int
            function.argtypes = [ctypes.c_void_p] * (len(kernel.outputs) + len(kernel.inputs)) + \
                [ctypes.c_int64] * len(self.size_names)
            ns[kernel.name] = function
            ns[f"{kernel.name}_sources"] = kernel.sources
            for b in kernel.outputs:
                if b in outputs or b in per_call:
                    lines.append(f"    {b} = {empty(s.buffers[b].type)}")
            args = ", ".join([f"{b}.data_ptr()" for b in [*kernel.outputs, *kernel.inputs]] + self.size_names)
            if self.numerics is None:
                lines.append(f"    if {kernel.name}({args}):")
                lines.append(f"        _raise('{kernel.name}', {kernel.name}_sources)")
            else:
                lines.append(f"    _code = {kernel.name}({args})")
                lines.append("    if _code:")
                lines.append(f"        _status(_code, {i}, [{', '.join(kernel.inputs)}], "
                             f"[{', '.join(kernel.outputs)}])")
            lines += frees(kernel.inputs, i, per_call, last_read)
        lines.append(f"    return [{', '.join(returned(s, ns, self.sizes))}]")
        return "\n".join(lines) + "\n"
