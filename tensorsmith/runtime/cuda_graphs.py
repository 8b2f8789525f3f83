"""Replaying a compiled CUDA graph (runtime/cuda.py's TritonGraph) as a CUDA graph.

A TritonGraph's wrapper launches each Triton kernel through Python: host overhead that dominates
small models. Shapes are static per graph (a new shape is a new graph), so after the wrapper has
run the ordinary way the whole call can be recorded once into a torch.cuda.CUDAGraph and replayed
with one launch.

Eligibility, decided once per graph after its first (verifying) call; the reason for a refusal goes
to the log (level 1) and to `record.cuda_graph` ("not: <why>"; "replayed" once it was):
config.cuda_graphs on; the graph runs its generated code (not the interpreter after a failed
compile); device CUDA and Triton not interpreted; no random op (the IR's `random`, or a fallback
whose ATen op draws random numbers: rand*, *dropout*, bernoulli*, normal, ... , attention with a
dropout that is not a literal 0): a replay would repeat the captured draw; no CPU tensor argument
(the host scalars of attention's RNG state): its value would be baked in. And, measured on the 2nd
call (and the 3rd, if the 2nd found it GPU-bound): not GPU-bound (launching took at least
HOST_BOUND_SHARE of the GPU time the call ran): where the GPU hides the launches already, replay
gains little and its pool costs memory; and at capture, copying the arguments that moved costs at
most COPY_SHARE_MAX of that launch time.

Calls: 1st ordinary (kernels compile, the wrapper is verified); on CUDA a 2nd ordinary one (and a
3rd, see above), timed (launch time against GPU time, on the current stream whose memory the 1st
call cached: timed on a fresh side stream, its first allocations made GPT-2 small look
launch-bound); then one ordinary on a side stream (the warm-up torch.cuda.graph asks for), captured
on that stream after it waited for the current stream (torch.cuda.graph synchronizes the device as
it starts), into the graph's own memory pool; later calls replayed on the current stream, so they
are ordered with the caller's work as the ordinary launches were. While another capture is under way
on the current stream, calls run the ordinary way.

Arguments. Another capture's static outputs (saved activations of a replayed forward, the output
of the graph before under Dynamo's DDP split), and one whose address and strides were the same in
the capturing call as in the call before (weights, optimizer-updated in place), are captured in
place: each replay first checks its address and strides are still those, else runs that call the
ordinary way, and after two such calls in a row captures anew (at most
MAX_CAPTURES times; then the graph stays ordinary and says why). Any other argument gets a static
buffer the replay copies it into, and so, from the next capture on, does an argument that moved
after being captured in place (FSDP2 gathers each block's weights into new memory every step),
unless copying those costs too much (below): then they are taken in place again. A call site's
runner (call_sites.py) takes in place only what a capture returned. A capturing call hands out
its static outputs, the ordinary result copied in, so that a graph captured next in the same step
finds them in place. An index check (`_check()`, which reads a flag on the host) is left out of the
capture and run after each replay.

Outputs and the liveness rule. A replay rewrites the same output memory, so it must never run
while anything outside still references an earlier replay's outputs (the user kept `loss`,
autograd saved an activation, AccumulateGrad made a gradient `param.grad`). StaticOutputs keeps,
per distinct output storage, one private whole-storage tensor (never handed out) and a weak
reference to the storage; each call hands out NEW tensor objects (`set_` on that storage, no
`_base`), so every outside reference, to a handed-out tensor, a view or detach of one, or a
gradient stolen into `.grad`, is a tensor of its own that holds one more use of the storage. The
storage's use count (`torch._C._storage_Use_Count`, as Inductor's cudagraph trees read it) is then
exactly: 1 (the private tensor) + the PyObject PyTorch keeps for a storage whose Python object was
created (PRESERVED, 0 or 1, probed once; StaticOutputs creates that object before it measures, so
it is there from then on) + outside references. The count measured right after capture must equal
1 + PRESERVED (else the graph is not replayed: something unknown holds it); before each replay a
count above that means "held", and that call runs the ordinary way with fresh outputs. Handing out
the private tensor itself would make this blind: outside holders of the same tensor object add no
storage use. Outputs of at most COPY_OUT_BYTES (a loss) are handed out as copies instead, so that
`loss = model(x)` in a loop, which holds the last loss through the next call, does not make every
other call ordinary.

Not covered (nothing in the storage counts them): work the caller queued on another stream that
reads an output it has already dropped (record_stream), and raw pointers kept outside PyTorch.

Memory: the graph's pool keeps its static outputs and the library results (matmul outputs) of the
captured call between calls; static input buffers are ordinary allocations; the shared arena's
tensor at capture stays referenced (if the shared arena grows later, the old one lives on for this
graph). All of it is freed with the TritonGraph (or when it captures anew; outputs still held
outside keep their memory until released).
"""
from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections import Counter

import torch
from torch.multiprocessing.reductions import StorageWeakRef

from .. import config
from ..codegen.triton.build import interpreting
from ..log import log

# Captures per graph (argument addresses that keep changing), and captures put off by the copy rule
# below: then the graph stays ordinary.
MAX_CAPTURES = 3
# Outputs of at most this many bytes (a loss) are handed out as copies: `loss = model(x)` in a loop
# holds the last loss through the next call, which would otherwise run ordinary every other step.
COPY_OUT_BYTES = 1024
# A graph whose launches took less than this share of its GPU time in its timed call is not
# captured: the GPU hides its launches already, so replay saves little, and each graph's pool keeps
# its own peak of matmul results (pools are not shared between graphs), on top of the others'.
# GPT-2 small training on an H100: its backward's launches took 52-88% of its GPU time, run to
# run. Replayed, with its index check no longer read at its end, the step took 55.1-55.4 ms and
# 12.6 GB (61-62 ms while that check synchronized). A 4-layer, 256-token model is launch-bound:
# 11.8 ms with graphs, 23.1 without.
HOST_BOUND_SHARE = 0.3
# Calls timed for that rule; a graph is GPU-bound when each of them was. One timed call was not
# enough under DDP: a backward bucket's graph shares the GPU with the previous bucket's all-reduce,
# and its share (12-27% on 2 H200s) flipped from run to run, and the step time with it (50-62 ms;
# 49.9 and 49.6 ms in two runs with two timed calls).
TIMED_CALLS = 2
# Copying arguments into static buffers is GPU work each replay adds: refused when it would take
# more than this share of the launch time replay saves (at COPY_BYTES_PER_MS, read + write, a
# conservative H100 figure). Measured: GPT-2 small's backward (share ~0.6) would copy 177 saved
# activations, 4.7 ms against ~25 ms of launches, and replaying it made the step 66 ms instead of
# 60 and 7 GB larger; the 4-layer model's (37 arguments, ~2% of its launch time) halved its step.
COPY_SHARE_MAX = 0.1
COPY_BYTES_PER_MS = 2.5e9

# ATen ops (the middle part of "aten.<name>.<overload>", underscores stripped) that draw random
# numbers, besides any name with one of _RANDOM_WORDS in it.
_RANDOM_WORDS = ("rand", "dropout", "bernoulli")
_RANDOM_OPS = frozenset({"normal", "uniform", "exponential", "multinomial", "poisson", "geometric",
                         "cauchy", "log_normal", "rrelu", "rrelu_with_noise", "standard_gamma",
                         "sample_dirichlet", "binomial", "fused_dropout"})


# -- eligibility ---------------------------------------------------------------------------------
def random_node(graph):
    """The first node of `graph` that draws random numbers (or may), or None."""
    for node in graph.nodes:
        if node.op == "random":
            return node
        if node.op == "fallback" and _random_fallback(node):
            return node
    return None


def _random_fallback(node) -> bool:
    target = str(node.attrs.get("target", ""))
    parts = target.split(".")
    name = (parts[1] if len(parts) >= 3 else target).lower()
    if any(w in name for w in _RANDOM_WORDS) or name.strip("_").removesuffix("_functional") in _RANDOM_OPS:
        return True
    if "attention" in name:
        rate = _argument(node, target, "dropout_p")
        return rate is not _ABSENT and rate != 0  # unknown (a tensor, unreadable): random
    return False


_ABSENT = object()


def _argument(node, target: str, name: str):
    """The literal value of argument `name` of a fallback node, _ABSENT if its op has no such
    argument, None if it cannot be read."""
    if name in node.attrs.get("kwargs", {}):
        return node.attrs["kwargs"][name]
    try:
        from ..ir.aten import resolve_target
        schema = resolve_target(target)._schema
    except Exception:  # noqa: BLE001 - an op we cannot look up: assume the worst
        return None
    for i, argument in enumerate(schema.arguments):
        if argument.name == name:
            args = node.attrs.get("args", [])
            if i < len(args):
                return args[i]
            return argument.default_value if argument.has_default_value() else None
    return _ABSENT


def refusal(schedule, device: torch.device, interpreted: bool | None = None) -> str | None:
    """Why a graph with this schedule on `device` is never replayed as a CUDA graph, or None."""
    if not config.cuda_graphs:
        return "off (config.cuda_graphs, TENSORSMITH_CUDA_GRAPHS=0)"
    node = random_node(schedule.graph)
    if node is not None:
        what = node.attrs.get("target") if node.op == "fallback" else f"random {node.attrs.get('dist')}"
        return f"random op {what}{f' at {node.source}' if node.source else ''} (a replay repeats its draw)"
    if device.type != "cuda":
        return f"device is {device.type}"
    if interpreting() if interpreted is None else interpreted:
        return "Triton is interpreted (TRITON_INTERPRET=1)"
    return None


def argument_refusal(tensors) -> str | None:
    """Why these arguments cannot be captured (a CPU tensor: a host scalar whose value would be
    baked into the graph), or None."""
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor):
            return f"argument {i} is a {type(t).__name__}"
        if t.device.type == "cpu":
            return f"argument {i} is a CPU tensor (a host scalar: its value would be captured)"
    return None


def attach(owner, tensors):
    """After `owner`'s first ordinary call with `tensors`: its CUDA-graph runner (a CallSites, one
    runner per call site, runtime/call_sites.py), or None (the reason logged and recorded)."""
    reason = refusal(owner.schedule, owner.device)
    if reason is None and owner._run is not owner.namespace.get("run"):
        reason = "the graph runs through the interpreter"
    if reason is None:
        reason = argument_refusal(tensors)
    if reason is not None:
        _refuse(owner, reason)
        return None
    if not config.cuda_graph_call_sites:
        return CudaGraphRunner(owner, tensors)
    from .call_sites import CallSites  # it builds on this module's runner
    return CallSites(owner, tensors)


def graph_name(owner) -> str:
    """How logs name a TritonGraph: its record's id, else its IR graph's name."""
    return getattr(owner.record, "graph_id", owner.schedule.graph.name)


def _refuse(owner, reason: str) -> None:
    record = owner.record
    if record is not None:
        record.cuda_graph = f"not: {reason}"
    log(1, f"{graph_name(owner)}: no CUDA graph: {reason}")


# -- outputs and their liveness ------------------------------------------------------------------
def use_count(ref: StorageWeakRef) -> int:
    """How many strong references the storage behind `ref` has (0 once freed)."""
    return torch._C._storage_Use_Count(ref.cdata)


def _probe_preserved() -> int:
    """The uses a storage's own PyObject adds once created (PyTorch keeps it alive with the
    storage): 1 where it is preserved, 0 where it dies with its last Python reference."""
    t = torch.empty(1)
    ref = StorageWeakRef(t.untyped_storage())  # creates the storage's PyObject, then drops ours
    return use_count(ref) - 1


PRESERVED = _probe_preserved()


class StaticOutputs:
    """The outputs of a captured call, in memory every replay rewrites: hands out fresh tensor
    objects over it and tells whether any handed out earlier is still referenced (module docstring:
    the liveness rule)."""

    def __init__(self, outputs: list[torch.Tensor], copy_out_bytes: int | None = None):
        copy_out_bytes = COPY_OUT_BYTES if copy_out_bytes is None else copy_out_bytes
        self.storages: list[torch.Tensor] = []  # one private uint8 tensor per distinct storage
        self.refs: list[StorageWeakRef] = []
        # per output: (storage index or None, dtype, device, size, stride, offset, handed out as a copy)
        self.layout: list[tuple] = []
        index: dict[int, int] = {}
        for t in outputs:
            if t.numel() == 0:  # no memory to share: a fresh empty tensor each call
                self.layout.append((None, t.dtype, t.device, t.size(), t.stride(), 0, False))
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key not in index:
                index[key] = len(self.storages)
                self.storages.append(torch.empty(0, dtype=torch.uint8, device=t.device).set_(storage))
                self.refs.append(StorageWeakRef(storage))
            small = t.numel() * t.element_size() <= copy_out_bytes
            self.layout.append((index[key], t.dtype, t.device, t.size(), t.stride(), t.storage_offset(), small))
        self.expected = 1 + PRESERVED
        self.baseline: list[int] = []
        self.pointers = {s.untyped_storage().data_ptr() for s in self.storages}
        CAPTURED_OUTPUTS.add(self)

    def owns(self, pointer: int) -> bool:
        """Whether the storage at `pointer` is one of these outputs' (runtime/call_sites.py)."""
        return pointer in self.pointers

    def seal(self) -> str | None:
        """Record the use counts, once the captured call's own output tensors are gone; a problem
        (a count that is not only ours) or None."""
        self.baseline = [use_count(r) for r in self.refs]
        odd = [c for c in self.baseline if c != self.expected]
        if odd:
            return (f"an output's storage has {odd[0]} references right after capture, "
                    f"expected {self.expected}")
        return None

    def held(self) -> bool:
        """Whether any output handed out earlier (or anything made from one) is still referenced."""
        return any(use_count(r) > c for r, c in zip(self.refs, self.baseline))

    def hand_out(self) -> list[torch.Tensor]:
        result = []
        for entry in self.layout:
            t = self._view(entry)
            result.append(t.clone() if entry[-1] and entry[0] is not None else t)
        return result

    def fill(self, values: list[torch.Tensor]) -> None:
        """Write `values` (one per output, as an ordinary call returned them) into the memory. An
        output that broadcasts a buffer (a stride-0 dim: an expanded mask or rotary table) is
        written through one element of each such dim, since its other elements are the same memory."""
        for entry, value in zip(self.layout, values):
            if entry[0] is not None:
                target, value = _one_per_broadcast_dim(self._view(entry), value)
                target.copy_(value)

    def _view(self, entry: tuple) -> torch.Tensor:
        i, dtype, device, size, stride, offset, _ = entry
        if i is None:
            return torch.empty_strided(size, stride, dtype=dtype, device=device)
        return torch.empty(0, dtype=dtype, device=device).set_(self.storages[i].untyped_storage(), offset,
                                                               size, stride)


def _one_per_broadcast_dim(target: torch.Tensor, value: torch.Tensor):
    """`target` and `value` narrowed to one element along each dim `target` broadcasts (stride 0)."""
    for dim, (size, stride) in enumerate(zip(target.size(), target.stride())):
        if stride == 0 and size > 1:
            target, value = target.narrow(dim, 0, 1), value.narrow(dim, 0, 1)
    return target, value


# -- the runner ----------------------------------------------------------------------------------
_SIDE_STREAMS: dict[torch.device, torch.cuda.Stream] = {}
_SIDE_LOCK = threading.Lock()


# The static outputs of every live capture: the arguments a call-site runner may take in place.
CAPTURED_OUTPUTS: weakref.WeakSet[StaticOutputs] = weakref.WeakSet()


def captured_output(t: torch.Tensor) -> bool:
    """Whether `t` lives in the static outputs of a capture (a replayed graph's output)."""
    pointer = t.untyped_storage().data_ptr()
    return any(outputs.owns(pointer) for outputs in list(CAPTURED_OUTPUTS))


def _side_stream(device: torch.device):
    with _SIDE_LOCK:
        if device not in _SIDE_STREAMS:
            _SIDE_STREAMS[device] = torch.cuda.Stream(device=device)
        return _SIDE_STREAMS[device]


def _no_check():
    return None


@contextlib.contextmanager
def _unchecked(owner):
    """The wrapper's index check (a host read of a device flag, so a synchronization) and its
    reading of earlier calls' deferred checks left out meanwhile: while timing launches, warming up
    or capturing; callers read the deferred ones before and check afterwards."""
    owner._settle()
    namespace = owner.namespace
    check, settle = namespace["_check"], namespace["_settle"]
    namespace["_check"] = namespace["_settle"] = _no_check
    try:
        yield
    finally:
        namespace["_check"], namespace["_settle"] = check, settle


def _launch_share(launch_ms: float, gpu_ms: float) -> float:
    """How much of a call's GPU time its launches took (HOST_BOUND_SHARE's measure)."""
    return launch_ms / max(gpu_ms, 1e-3)


def _layout(tensors) -> list[tuple]:
    return [(t.data_ptr(), t.stride()) for t in tensors]


class CudaGraphRunner:
    """`runner(tensors) -> outputs` for one TritonGraph: times its 1st call through here (on CUDA),
    captures on the next, replays after. Counters: `replays`, `captures`, `ordinary` (calls run the
    ordinary way since, by reason)."""

    def __init__(self, owner, tensors, captured_in_place_only: bool = False):
        self.owner = owner
        # A call site's runner (runtime/call_sites.py) takes in place only arguments that are a
        # capture's static outputs, which stay put while it replays; it copies every other one.
        # FSDP2 gathers weights into memory that sometimes lands where it was the step before
        # and sometimes not, so "unchanged since the last call" kept failing after capture there.
        self.captured_in_place_only = captured_in_place_only
        self.last = _layout(tensors)  # addresses and strides of the previous ordinary call
        self.graph = None  # what replays the captured call (torch.cuda.CUDAGraph.replay)
        self.cuda_graph = None  # the torch.cuda.CUDAGraph, freed with this runner
        self.outputs: StaticOutputs | None = None  # the outputs the capture allocated
        self.argument_outputs: dict[int, int] = {}  # output -> argument it is (or a view of)
        self.in_place: list[tuple[int, int, tuple]] = []  # (argument, data_ptr, strides)
        self.copied: list[tuple[int, torch.Tensor]] = []  # (argument, static buffer)
        self.arena = None  # the arena tensor the capture ran over
        self.stopped: str | None = None
        self.replays = self.captures = 0
        self.launch_ms: float | None = None  # host time of launching the call, measured on CUDA
        self.gpu_ms: float | None = None  # and the GPU time it ran
        self.measured = owner.device.type != "cuda"  # off CUDA there is nothing to time
        self.timed = 0  # calls timed so far
        self.misplaced = 0  # calls in a row whose in-place arguments moved
        # Arguments that moved after a capture took them in place (FSDP2 gathers a block's weights
        # anew each step): later captures copy them, where copying is cheap enough.
        self.unstable: set[int] = set()
        self.copy_refusals = 0  # captures put off because the moved arguments cost too much to copy
        self.ordinary: Counter = Counter()

    @property
    def name(self) -> str:
        return graph_name(self.owner)

    def __call__(self, tensors):
        owner = self.owner
        if self.stopped is not None or self._capturing_elsewhere():
            return owner._run(*tensors)
        if self.graph is None:
            return self._capture(tensors) if self.measured else self._measure(tensors)
        moved = [i for i, pointer, stride in self.in_place
                 if tensors[i].data_ptr() != pointer or tensors[i].stride() != stride]
        if moved:
            return self._misplaced(tensors, moved)
        if self.outputs.held():
            if not self.ordinary["outputs held"]:
                log(1, f"{self.name}: an output of the last CUDA graph replay is still referenced: "
                       f"running the ordinary way while it is")
            self.ordinary["outputs held"] += 1
            return owner._run(*tensors)
        self.misplaced = 0
        with torch.no_grad(), self._device():
            if owner.settles:  # the replay runs library steps that read index data
                owner._settle()
            for i, buffer in self.copied:
                buffer.copy_(tensors[i])
            self.graph()
            if owner.checks:
                owner._check_flags()
            outputs = self._hand_out(tensors)
        if not self.replays and owner.record is not None:
            owner.record.cuda_graph = "replayed"
        self.replays += 1
        return outputs

    def _hand_out(self, tensors) -> list[torch.Tensor]:
        """The static outputs as fresh tensors, and outputs that are arguments (or views of one) as
        the ordinary call returns them: of this call's argument."""
        fresh = iter(self.outputs.hand_out())
        result = []
        for i in range(len(self.owner.schedule.outputs)):
            j = self.argument_outputs.get(i)
            if j is None:
                result.append(next(fresh))
                continue
            view = self.owner.namespace.get(f"out_view{i}")
            result.append(view(tensors[j]) if view is not None else tensors[j])
        return result

    def _device(self):
        return torch.cuda.device(self.owner.device) if self.owner.device.type == "cuda" \
            else contextlib.nullcontext()

    def _capturing_elsewhere(self) -> bool:
        return self.owner.device.type == "cuda" and torch.cuda.is_current_stream_capturing()

    def _misplaced(self, tensors, moved: list[int]):
        self.ordinary["argument moved"] += 1
        self.misplaced += 1
        self.unstable.update(moved)
        log(2, f"{self.name}: arguments {moved} moved since the CUDA graph was captured: ordinary call")
        result = self.owner._run(*tensors)
        if self.misplaced >= 2:  # the new addresses look lasting: capture anew next call
            self._drop()
            if self.captures >= MAX_CAPTURES:
                self._stop(f"argument addresses keep changing ({self.captures} captures)")
        self.last = _layout(tensors)
        return result

    def _stop(self, reason: str) -> None:
        self.stopped = reason
        self._drop()
        _refuse(self.owner, reason)

    def _drop(self) -> None:
        self.graph = self.cuda_graph = self.outputs = self.arena = None
        self.in_place, self.copied, self.argument_outputs = [], [], {}

    def _measure(self, tensors):
        """One of the runner's first TIMED_CALLS calls, the ordinary way on the current stream
        (whose memory the 1st call cached): the time launching took, against the GPU time. The
        graph is GPU-bound, and stops here, when every timed call found it so."""
        owner = self.owner
        self.last = _layout(tensors)
        self.timed += 1
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with self._device(), _unchecked(owner):
            start.record()
            began = time.perf_counter()
            result = owner._run(*tensors)
            launch_ms = (time.perf_counter() - began) * 1e3
            end.record()
        if owner.checks:
            owner._check_flags()
        end.synchronize()
        gpu_ms = start.elapsed_time(end)
        share = _launch_share(launch_ms, gpu_ms)
        if self.launch_ms is None or share > _launch_share(self.launch_ms, self.gpu_ms):
            self.launch_ms, self.gpu_ms = launch_ms, gpu_ms  # the most launch-bound call counts
        if share >= HOST_BOUND_SHARE:
            self.measured = True
        elif self.timed >= TIMED_CALLS:
            self.measured = True
            most = _launch_share(self.launch_ms, self.gpu_ms)
            self._stop(f"GPU-bound: launching took at most {most:.0%} of the GPU time in "
                       f"{self.timed} timed calls (replay would save little and keep its outputs' memory)")
        return result

    def _capture(self, tensors):
        """This call ordinary on the side stream (its result returned), then the capture."""
        owner = self.owner
        layout = _layout(tensors)
        self.misplaced = 0
        with self._device():
            result = self._warm_up(tensors)
        with torch.no_grad(), self._device():
            same = [i for i, (now, before) in enumerate(zip(layout, self.last)) if now == before]
            self.last = layout
            in_place = self._in_place(tensors, same)
            moved, too_costly = self._copies(tensors, in_place)
            if too_costly and set(same) - set(in_place) and not self.captured_in_place_only:
                in_place = sorted(set(same) | set(in_place))  # then in place while they stay put
                moved, too_costly = self._copies(tensors, in_place)
            if too_costly:  # addresses may settle (a forward captured meanwhile): try again later
                self.copy_refusals += 1
                log(2, f"{self.name}: not captured this call: {too_costly}")
                # A call site's backward waits one step longer: for its forward's capture and
                # then for that capture's outputs to stay put.
                if self.copy_refusals >= MAX_CAPTURES * (2 if self.captured_in_place_only else 1):
                    self._stop(too_costly)
                return result
            static = list(tensors)
            copied = []
            for i in moved:
                # valid values, should anything read them
                static[i] = torch.empty_like(tensors[i]).copy_(tensors[i])
                copied.append((i, static[i]))
            self.captures += 1
            try:
                with _unchecked(owner):
                    self.graph, outputs = self._capture_graph(static)
            except Exception as e:  # noqa: BLE001 - not capturable: the graph stays ordinary
                self._stop(f"capture failed: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                return result
            finally:
                owner.flags.zero_()  # nothing the capture did may count as an index error
            params = owner.schedule.params
            self.argument_outputs = {i: params.index(name) for i, name in enumerate(owner.schedule.outputs)
                                     if name in params}
            outputs = [t for i, t in enumerate(outputs) if i not in self.argument_outputs]
            problem = self._foreign_output(outputs, static)
            self.outputs = StaticOutputs(outputs)
            del outputs
            problem = problem or self.outputs.seal()
            if problem:
                self._stop(problem)
                return result
            self.in_place = [(i, layout[i][0], layout[i][1]) for i in in_place]
            self.copied = copied
            self.arena = owner.arena
            timed = f"; launching took {self.launch_ms:.1f} ms, the GPU {self.gpu_ms:.1f} ms" \
                if self.launch_ms is not None and self.gpu_ms is not None else ""
            copied_mib = sum(b.numel() * b.element_size() for _, b in copied) / 2**20
            log(1, f"{self.name}: captured as a CUDA graph ({len(in_place)} arguments in place, "
                   f"{len(copied)} copied, {copied_mib:.1f} MiB a replay{timed})")
            return self._adopt(result, tensors)

    def _adopt(self, result, tensors) -> list[torch.Tensor]:
        """The capturing call's outputs, computed the ordinary way, moved into the static outputs and
        handed out as a replay's are. A graph captured next in the same step (the next block under
        Dynamo's DDP split, the backward) then finds them where every replay will put them, and
        takes them in place instead of copying them at each replay."""
        self.outputs.fill([t for i, t in enumerate(result) if i not in self.argument_outputs])
        return self._hand_out(tensors)

    def _in_place(self, tensors, same: list[int]) -> list[int]:
        """The arguments a capture takes in place: another capture's static outputs, which stay put
        while it replays even when this call is the first to see them there (graphs captured in the
        same step, one after the other, each take the one before's outputs); for a single runner also
        those `same` as the last call's and never seen to move after a capture."""
        return [i for i, t in enumerate(tensors) if captured_output(t) or
                (not self.captured_in_place_only and i in same and i not in self.unstable)]

    def _copies(self, tensors, in_place: list[int]) -> tuple[list[int], str | None]:
        """The arguments a capture taking `in_place` in place would copy at each replay, and why
        that costs too much (None when it does not)."""
        moved = [i for i in range(len(tensors)) if i not in in_place]
        return moved, self._copies_cost_too_much([tensors[i] for i in moved])

    def _copies_cost_too_much(self, moved: list[torch.Tensor]) -> str | None:
        """A reason when copying these arguments each replay would cost more GPU time than a share of
        the launch time replay saves (None off CUDA, where nothing was timed)."""
        if self.launch_ms is None:
            return None
        nbytes = sum(t.numel() * t.element_size() for t in moved)
        copy_ms = 2 * nbytes / COPY_BYTES_PER_MS
        if copy_ms <= COPY_SHARE_MAX * self.launch_ms:
            return None
        return (f"copying {len(moved)} moved arguments ({nbytes / 2**20:.0f} MiB) each replay would take "
                f"about {copy_ms:.1f} ms, against {self.launch_ms:.1f} ms of launches it saves")

    def _warm_up(self, tensors):
        """This call the ordinary way on the side stream (the warm-up torch.cuda.graph asks for; index
        check after it)."""
        owner = self.owner
        if owner.device.type != "cuda":
            return owner._run(*tensors)
        current, side = torch.cuda.current_stream(), _side_stream(owner.device)
        side.wait_stream(current)
        with torch.cuda.stream(side), _unchecked(owner):
            result = owner._run(*tensors)
        current.wait_stream(side)
        for t in result:  # made on the side stream, used on the current one
            if isinstance(t, torch.Tensor) and t.is_cuda:
                t.record_stream(current)
        if owner.checks:
            owner._check_flags()
        return result

    def _capture_graph(self, static):
        """(replay, outputs): the wrapper over `static` captured (its index check is off meanwhile)
        on the side stream, into a memory pool of its own."""
        owner = self.owner
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=torch.cuda.graph_pool_handle(), stream=_side_stream(owner.device),
                              capture_error_mode="thread_local"):
            outputs = owner._run(*static)
        self.cuda_graph = graph
        return graph.replay, outputs

    def _foreign_output(self, outputs, static) -> str | None:
        """A reason if an output (other than an argument returned) lives in memory the capture did
        not allocate (an argument, the arena, a constant): a replay would hand it out as its own."""
        known = {t.untyped_storage().data_ptr() for t in static if t.numel()}
        known |= {v.untyped_storage().data_ptr() for v in self.owner.namespace.values()
                  if isinstance(v, torch.Tensor) and v.numel()}
        for i, t in enumerate(outputs):
            if t.numel() and t.untyped_storage().data_ptr() in known:
                return "an output shares memory with an argument, the arena or a constant"
        return None
