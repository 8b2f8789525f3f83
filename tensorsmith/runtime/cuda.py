"""A graph compiled to Triton kernels: generated kernels and PyTorch library calls run in schedule
order, on the current CUDA stream, over an arena laid out by the memory plan.

All graphs on a device share one arena, as large as the largest plan: nothing a graph returns lives
in it (outputs are fresh tensors, library results are PyTorch's), so a graph's intermediates are
dead once it returns, and the forward graph's arena need not stay allocated through the backward.
Calls of graphs on one device are serialized by the arena's lock, and kernels on one stream run in
order, so no two graphs use it at once (graphs run concurrently on several streams are not
supported).

Like the C++ runtime (runtime/compiled.py) the wrapper is straight-line Python generated once per
graph: arena views and bound launchers are baked in, outputs are allocated fresh. Under
TRITON_INTERPRET=1 the same code runs on CPU tensors (how the tests check it without a GPU).

Indices read from data (embedding ids, gather indices) are checked in the kernels: each such
kernel owns one slot of an int32 flag tensor, and the graph raises IndexOutOfRange after its last
step if a slot was set, which needs one synchronization per call of such a graph — except the
forward and backward graphs of training on CUDA, whose flags are read at the end of the next call
(runtime/index_checks.py).

Once shapes proved static (after two ordinary calls) a graph is replayed as a CUDA graph, unless it
has random ops or host arguments or config.cuda_graphs is off (runtime/cuda_graphs/).

A graph with symbolic sizes takes their values after its tensors and passes them to every kernel,
whose grid the wrapper counts from them; its intermediate buffers are allocated on each call
(per_call.py), and it is replayed as a CUDA graph per value of its sizes that comes again
(cuda_graphs/size_buckets.py).

Each distinct kernel is compiled once: in background threads while tracing goes on
(compile/triton.py), else on its first launch. A kernel that fails to compile makes the whole graph
run through the reference interpreter (and says so), unless strict.
"""
from __future__ import annotations

import threading
import time
import weakref

import torch

from .. import config
from ..codegen.schedule import KernelStep, LibraryStep, Schedule
from ..codegen.triton.build import interpreting
from ..codegen.triton.emit import TritonKernel
from ..codegen.triton.launch import KernelLaunch, argument_dtypes
from ..errors import IndexOutOfRange, is_triton_compile_error
from ..ir.interpret import Interpreter, _constant
from ..ir.sizes import evaluate
from ..log import log
from . import index_checks
from .in_place import in_place_steps
from .library_call import library_call, returned
from .cuda_graphs.attach import attach as attach_cuda_graph
from .cuda_graphs.eligibility import graph_name
from .memory import MemoryPlan, plan_memory
from . import lifetime
from .per_call import empty, frees, last_reads

LIVE: weakref.WeakSet[TritonGraph] = weakref.WeakSet()  # for reports (bench/gpu.py --profile)


class _SharedArena:
    """The intermediates' memory of every graph on one device; grows to the largest plan."""

    def __init__(self, device: torch.device):
        self.device = device
        self.tensor = torch.empty(0, dtype=torch.uint8, device=device)
        self.lock = threading.RLock()

    def reserve(self, nbytes: int) -> None:
        with self.lock:
            if self.tensor.numel() < nbytes:
                self.tensor = torch.empty(0, dtype=torch.uint8, device=self.device)  # free first
                self.tensor = torch.empty(nbytes, dtype=torch.uint8, device=self.device)


# Held weakly: the graphs on a device hold its arena, so it is freed with the last of them (after
# torch._dynamo.reset(), or when the compiled model goes) instead of living as long as the process.
_ARENAS: weakref.WeakValueDictionary[torch.device, _SharedArena] = weakref.WeakValueDictionary()
_ARENAS_LOCK = threading.Lock()


def shared_arena(device: torch.device) -> _SharedArena:
    with _ARENAS_LOCK:
        arena = _ARENAS.get(device)
        if arena is None:
            arena = _ARENAS[device] = _SharedArena(device)
        return arena


class IndexErrorReport:
    """What raising a graph's index error takes: the names and model lines of its checked kernels,
    and its id. A deferred check (index_checks.py) holds this, not the graph: one still pending after
    a run's last call would keep the graph's arena and CUDA-graph memory allocated until the next
    compiled call on the device."""

    def __init__(self, checked: list[TritonKernel], graph_name: str):
        self.checked = [(k.name, tuple(k.sources)) for k in checked]
        self.graph_name = graph_name

    def raise_index_error(self, flags: list[int], deferred: bool = False):
        bad = [(name, sources) for (name, sources), flag in zip(self.checked, flags) if flag]
        where = "; ".join(s for _, sources in bad for s in sources if s) or None
        when = f" (in the last call of {self.graph_name}, read after the next call)" if deferred else ""
        raise IndexOutOfRange(f"an index read from data is out of range{when}",
                              f"generated {bad[0][0] if bad else 'kernel'}", where)


class TritonGraph:
    """Runs a schedule whose kernels are Triton functions: `graph(tensors) -> list of outputs`."""

    def __init__(self, schedule: Schedule, kernels: list[TritonKernel | None], module, record,
                 device: str, compiling: list | None = None):
        self.schedule, self.kernels, self.module, self.record = schedule, kernels, module, record
        self.compiling = compiling or []  # Futures of kernels compiling in the background
        self.device = torch.device(device)
        self.plan: MemoryPlan = plan_memory(schedule)
        self.shared = self._shared_arena()
        self.arena = None  # the shared arena's tensor the namespace's views are of
        checked = [k for k in kernels if k is not None and k.checks_indices]
        self.flags = torch.zeros(max(len(checked), 1), dtype=torch.int32, device=self.device)
        read_by_kernels = {b for st in schedule.steps if isinstance(st, KernelStep) for b in st.kernel.inputs}
        self.row_major_params = [p in read_by_kernels for p in schedule.params]
        self.shared_outputs = schedule.shared_outputs()  # read by the executor
        self.namespace: dict = {"torch": torch, "_check": self._check_flags, "_settle": self._settle}
        self._earlier = 0
        self.size_names = list(schedule.size_names)
        self.sizes: dict = {}  # this call's values of the size symbols, read by library calls
        self.source = self._generate()
        self.index_report = IndexErrorReport(self._checked, graph_name(self))
        exec(compile(self.source, f"<tensorsmith triton wrapper {schedule.graph.name}>", "exec"),  # noqa: S102
             self.namespace)
        self._run = self.namespace["run"]
        self._verified = False
        self.cuda_graph = None  # from cuda_graphs/attach.py after the first call, if eligible
        LIVE.add(self)
        lifetime.adopt(self)

    def _shared_arena(self) -> _SharedArena:
        """The device's shared arena, grown to this graph's plan."""
        shared = shared_arena(self.device)
        shared.reserve(self.plan.arena_bytes)
        return shared

    def release(self) -> None:
        """Let go of the shared arena and drop the CUDA-graph captures (the model is gone,
        lifetime.py); a later call binds the arena anew and goes through the first call's path."""
        if self.shared is None:
            return
        with self.shared.lock:
            self.cuda_graph = None
            self._verified = False
            for name in self.plan.offsets:
                self.namespace.pop(name, None)
            self.arena = None
        self.shared = None

    def __call__(self, tensors, sizes: dict | None = None):
        self._earlier = index_checks.pending(self.device)  # deferred checks of earlier calls
        values = ()
        if sizes:
            self.sizes.update(sizes)
            values = tuple(sizes[n] for n in self.size_names)
        result = self._call(tensors, values)
        self._settle()  # after this call's launches, so the GPU has work while the host waits
        return result

    def _settle(self):
        """Read the deferred index checks of earlier calls (raising for a bad one): at the end of a
        call, or before a library step reads index data (PyTorch's index kernels assert on the
        device, which would poison the CUDA context, where the checked kernels only set a flag)."""
        if self._earlier:
            earlier, self._earlier = self._earlier, 0
            index_checks.resolve(self.device, earlier)

    def _call(self, tensors, values: tuple = ()):
        if self.shared is None:  # released: the arena is bound anew below
            self.shared = self._shared_arena()
        with self.shared.lock:
            if self.arena is not self.shared.tensor:  # first call, or the arena grew since
                self._bind_arena()
            if self._verified:
                if self.cuda_graph is not None:  # captures on the next call, then replays
                    return self.cuda_graph(tensors, values) if self.size_names else self.cuda_graph(tensors)
                return self._run(*tensors, *values)
            began = time.perf_counter()
            for future in self.compiling:  # a failed one fails again, with its message, below
                future.exception()
            waited = time.perf_counter() - began
            try:  # the first call compiles every kernel not compiled in the background
                result = self._run(*tensors, *values)
            except IndexOutOfRange:
                raise
            except Exception as e:
                if config.strict or not is_triton_compile_error(e):
                    raise
                self.record.whole_graph_fallback = f"Triton: {str(e).splitlines()[0] if str(e) else e!r}"
                log(1, f"{self.record.graph_id}: running through the interpreter: {e}")
                graph = self.schedule.graph
                count = len(graph.params)
                self._run = lambda *ts: Interpreter().run(graph, list(ts[:count]), dict(self.sizes))
                return self._run(*tensors, *values)
            self._verified = True
            self._bind_launches()
            log(1, f"{self.record.graph_id}: first call waited {waited * 1e3:.0f} ms for kernels compiling "
                   f"in the background, then ran in {(time.perf_counter() - began - waited) * 1e3:.0f} ms")
            self.cuda_graph = attach_cuda_graph(self, tensors)
            return result

    def _bind_launches(self) -> None:
        """After the first call compiled every kernel: launch them directly (codegen/triton/launch.py)."""
        if self.device.type != "cuda" or interpreting():
            return
        try:
            bound = sum(launch.bind(dtypes, self.device) for launch, dtypes in self.launches)
        except Exception as e:  # noqa: BLE001 - the JIT path stays: slower, same results
            log(1, f"{self.record.graph_id}: kernels launch through Triton's JIT: {e}")
            return
        log(2, f"{self.record.graph_id}: {bound} of {len(self.launches)} kernels launch directly")

    def kernel_bytes(self) -> dict[str, int]:
        """Bytes of the buffers each generated kernel reads and writes (for bandwidth reports)."""
        result = {}
        for k in self.kernels:
            if k is not None:
                types = [self.schedule.buffers[b].type for b in k.args]  # at the last call's sizes
                result[k.name] = sum(evaluate(t.numel, self.sizes) * t.dtype.torch_dtype.itemsize for t in types)
        return result

    def kernel_sources(self) -> dict[str, str]:
        """The model source line each generated kernel computes first (for profile reports)."""
        return {k.name: next((s for s in k.sources if s), "") for k in self.kernels if k is not None}

    def _bind_arena(self):
        """Point the wrapper's buffer names at views of the shared arena's current tensor."""
        self.arena = self.shared.tensor
        for name, offset in self.plan.offsets.items():
            buffer = self.schedule.buffers[name]
            dtype = buffer.type.dtype.torch_dtype
            raw = self.arena[offset:offset + buffer.type.numel * dtype.itemsize]
            self.namespace[name] = raw.view(dtype).view(buffer.type.shape)

    def _check_flags(self):
        if self.defers_checks:
            index_checks.defer(self.index_report, self.flags)
            return
        if not self.flags.any().item():
            return
        flags = self.flags.tolist()
        self.flags.zero_()
        self.index_report.raise_index_error(flags)

    def _generate(self) -> str:
        s, ns = self.schedule, self.namespace
        arguments = [*s.params, *self.size_names]
        lines = [f"def run({', '.join(arguments) + (',' if len(arguments) == 1 else '')}):"]
        self.per_call, self.last_read = set(self.plan.per_call), last_reads(s)
        self.writes_in_place = in_place_steps(s)  # library steps writing a parameter (read by cuda_graphs/runner.py)
        for name, node in s.constants.items():
            a = node.attrs
            ns[name] = _constant(a["value"], a["shape"], a["dtype"].torch_dtype, self.device).contiguous()
        kernels = iter(self.kernels)
        self._checked = []
        self.launches: list[tuple[KernelLaunch, list]] = []  # and their argument dtypes
        dead_after = _library_results_dead_after(s)
        self.settles = False  # the wrapper reads earlier calls' deferred index checks before a step
        for i, step in enumerate(s.steps):
            if isinstance(step, LibraryStep):
                if not self.settles and any(_is_index(s.buffers[b].type) for b in step.inputs):
                    lines.append("    _settle()")
                    self.settles = True
                ns[f"lib{i}"] = library_call(step, None, self.sizes if self.size_names else None,
                                              i in self.writes_in_place)
                lines.append(f"    {step.output} = lib{i}({', '.join(step.inputs)})")
                lines += frees(step.inputs, i, self.per_call, self.last_read)
            else:
                self._kernel_lines(i, step, next(kernels), lines)
            if dead_after.get(i):  # free library results (matmul outputs) once nothing reads them
                lines.append(f"    del {', '.join(dead_after[i])}")
        self.checks = bool(self._checked and config.check_indices)  # the wrapper calls _check()
        self.defers_checks = self.checks and index_checks.defers(getattr(self.record, "kind", None), self.device)
        if self.checks:
            lines.append("    _check()")
        lines.append(f"    return [{', '.join(returned(s, ns, self.sizes))}]")
        body = "\n".join(lines) + "\n"
        if self.device.type == "cuda":  # launch on the graph's device, whatever the current one
            ns["_device"] = self.device
            body = body.replace("def run(", "def _run(", 1) + \
                "def run(*args):\n    with torch.cuda.device(_device):\n        return _run(*args)\n"
        return body


    def _kernel_lines(self, i: int, step: KernelStep, kernel: TritonKernel | None, lines: list[str]):
        s, ns = self.schedule, self.namespace
        for b in step.kernel.outputs:
            if b in s.outputs or b in self.per_call:
                lines.append(f"    {b} = {empty(s.buffers[b].type, self.device)}")
        if kernel is None:  # nothing to compute (an empty outer domain)
            lines += frees(step.kernel.inputs, i, self.per_call, self.last_read)
            return
        flag = f"flag{i}"
        if kernel.checks_indices:
            ns[flag] = self.flags[len(self._checked):len(self._checked) + 1]
            self._checked.append(kernel)
        else:
            ns[flag] = self.flags
        static = self.plan.offsets.keys() | s.constants.keys()  # aligned by construction
        checked = tuple(j for j, b in enumerate(kernel.args) if b not in static)
        launch = ns[f"launch{i}"] = KernelLaunch(getattr(self.module, kernel.name), kernel.grid,
                                                 kernel.num_warps, checked)
        self.launches.append((launch, argument_dtypes(s.buffers, kernel)))
        arguments = ", ".join([*kernel.args, *kernel.sizes, flag])
        if launch.grid is None:  # counted from this call's sizes
            lines.append(f"    launch{i}.over(({''.join(f'{g}, ' for g in kernel.grid)}), {arguments})")
        else:
            lines.append(f"    launch{i}({arguments})")
        lines += frees(step.kernel.inputs, i, self.per_call, self.last_read)


def _is_index(t) -> bool:
    return hasattr(t, "dtype") and t.dtype.is_integer


def _library_results_dead_after(s: Schedule) -> dict[int, list[str]]:
    """For each step, the library results (not graph outputs) that no later step reads."""
    last: dict[str, int] = {}
    for i, step in enumerate(s.steps):
        if isinstance(step, LibraryStep) and step.output not in s.outputs:
            last.setdefault(step.output, i)
        for b in (step.inputs if isinstance(step, LibraryStep) else step.kernel.inputs):
            if b in last:
                last[b] = i
    dead: dict[int, list[str]] = {}
    for b, i in last.items():
        dead.setdefault(i, []).append(b)
    return dead
