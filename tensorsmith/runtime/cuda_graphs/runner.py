"""CudaGraphRunner: times, captures and replays one TritonGraph's calls as a CUDA graph.

Calls: 1st ordinary (kernels compile, the wrapper is verified); on CUDA a 2nd ordinary one (and a
3rd, eligibility.py says when), timed (launch time against GPU time, on the current stream whose
memory the 1st call cached); then one ordinary on a side stream (the warm-up torch.cuda.graph asks
for), captured on that stream after it waited for the current stream (torch.cuda.graph synchronizes
the device as it starts), into the graph's own memory pool; later calls replayed on the current
stream, so they are ordered with the caller's work as ordinary launches are. While another capture
is under way on the current stream, calls run the ordinary way. A replay runs only while no output
handed out earlier is still referenced (static_outputs.py: the liveness rule); else that call runs
the ordinary way.

Arguments. Another capture's static outputs (saved activations of a replayed forward, the output
of the graph before under Dynamo's DDP split), and one whose address and strides were the same in
the capturing call as in the call before (weights, optimizer-updated in place), are captured in
place: each replay first checks its address and strides are still those, else runs that call the
ordinary way, and after two such calls in a row captures anew (at most MAX_CAPTURES times; then the
graph stays ordinary and says why). Any other argument gets a static buffer the replay copies it
into, and so, from the next capture on, does an argument that moved after being captured in place
(FSDP2 gathers each block's weights into new memory every step), unless copying those costs too
much (eligibility.py: COPY_SHARE_MAX): then they are taken in place again. Arguments that move
after at least STABLE_REPLAYS replays are taken for new ones that will stay put in turn (the KV
cache of the next generate()): captured anew in place, a renewal that MAX_CAPTURES does not count
(at most one capture per STABLE_REPLAYS replays). A call site's runner
(call_sites.py) takes in place only what a capture returned. A capturing call hands out its static
outputs, the ordinary result copied in, so that a graph captured next in the same step finds them
in place. An index check (`_check()`, which reads a flag on the host) is left out of the capture
and run after each replay.

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
from collections import Counter

import torch

from ...log import log
from ..in_place import outputs_written
from .eligibility import copy_refusal, gpu_bound_refusal, graph_name, launch_bound, launch_share, refuse
from .static_outputs import StaticOutputs, captured_output

# Captures per graph (argument addresses that keep changing), and captures put off by the copy rule
# (eligibility.py): then the graph stays ordinary.
MAX_CAPTURES = 3
# Replays after which arguments that move are taken for new ones that will stay put in turn (the
# KV cache of the next generate()): captured anew in place, without counting towards MAX_CAPTURES.
STABLE_REPLAYS = 16

_SIDE_STREAMS: dict[torch.device, torch.cuda.Stream] = {}
_SIDE_LOCK = threading.Lock()


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


def _layout(tensors) -> list[tuple]:
    return [(t.data_ptr(), t.stride()) for t in tensors]


class CudaGraphRunner:
    """`runner(tensors) -> outputs` for one TritonGraph: times its 1st call through here (on CUDA),
    captures on the next, replays after. Counters: `replays`, `captures`, `ordinary` (calls run the
    ordinary way since, by reason)."""

    def __init__(self, owner, tensors, captured_in_place_only: bool = False):
        self.owner = owner
        # A call site's runner (call_sites.py) takes in place only arguments that are a capture's
        # static outputs, which stay put while it replays; it copies every other one.
        self.captured_in_place_only = captured_in_place_only
        self.last = _layout(tensors)  # addresses and strides of the previous ordinary call
        self.graph = None  # what replays the captured call (torch.cuda.CUDAGraph.replay)
        self.cuda_graph = None  # the torch.cuda.CUDAGraph, freed with this runner
        self.outputs: StaticOutputs | None = None  # the outputs the capture allocated
        self.argument_outputs: dict[int, int] = {}  # output -> argument it is (or a view of)
        self.in_place: list[tuple[int, int, tuple]] = []  # (argument, data_ptr, strides)
        self.copied: list[tuple[int, torch.Tensor]] = []  # (argument, static buffer)
        self.handed_out: list[tuple] = []  # per output, what a replay hands out (_plan_hand_out)
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
        self.renewals = 0  # captures after arguments were replaced (not counted in MAX_CAPTURES)
        self.replays_since_capture = 0
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
        self.replays_since_capture += 1
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
        the ordinary call returns them: of this call's argument. An argument the graph writes in
        place (in_place.py) and the replay copies into a buffer is that buffer, written."""
        fresh = iter(self.outputs.hand_out())
        result = []
        for j, buffer, view in self.handed_out:
            if j is None:
                result.append(next(fresh))
                continue
            argument = tensors[j] if buffer is None else buffer
            result.append(view(argument) if view is not None else argument)
        return result

    def _plan_hand_out(self) -> None:
        """Per output, what `_hand_out` gives: (None, None, None) for a static output, else (the
        argument it is, the static buffer the replay copies that argument into where the graph
        writes it in place, else None, the output's view or None); worked out once per capture."""
        copied = dict(self.copied)
        written = set(self.owner.writes_in_place.values())
        self.handed_out = []
        for i in range(len(self.owner.schedule.outputs)):
            j = self.argument_outputs.get(i)
            if j is None:
                self.handed_out.append((None, None, None))
                continue
            buffer = copied.get(j) if j in written else None
            self.handed_out.append((j, buffer, self.owner.namespace.get(f"out_view{i}")))

    def _device(self):
        return torch.cuda.device(self.owner.device) if self.owner.device.type == "cuda" \
            else contextlib.nullcontext()

    def _capturing_elsewhere(self) -> bool:
        return self.owner.device.type == "cuda" and torch.cuda.is_current_stream_capturing()

    def _misplaced(self, tensors, moved: list[int]):
        self.ordinary["argument moved"] += 1
        self.misplaced += 1
        replaced = self.replays_since_capture >= STABLE_REPLAYS
        if not replaced:
            self.unstable.update(moved)
        log(2, f"{self.name}: arguments {moved} moved since the CUDA graph was captured: ordinary call")
        result = self.owner._run(*tensors)
        if self.misplaced >= 2:  # the new addresses look lasting: capture anew next call
            self._drop()
            if replaced:
                self.renewals += 1
            elif self.captures - self.renewals >= MAX_CAPTURES:
                self._stop(f"argument addresses keep changing ({self.captures} captures)")
        self.last = _layout(tensors)
        return result

    def _stop(self, reason: str) -> None:
        self.stopped = reason
        self._drop()
        refuse(self.owner, reason)

    def _drop(self) -> None:
        self.graph = self.cuda_graph = self.outputs = self.arena = None
        self.in_place, self.copied, self.argument_outputs, self.handed_out = [], [], {}, []

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
        share = launch_share(launch_ms, gpu_ms)
        if self.launch_ms is None or share > launch_share(self.launch_ms, self.gpu_ms):
            self.launch_ms, self.gpu_ms = launch_ms, gpu_ms  # the most launch-bound call counts
        if launch_bound(share):
            self.measured = True
        else:
            gpu_bound = gpu_bound_refusal(self.timed, self.launch_ms, self.gpu_ms)
            if gpu_bound is not None:
                self.measured = True
                self._stop(gpu_bound)
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
            self.replays_since_capture = 0
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
            self.argument_outputs.update(outputs_written(owner.schedule, owner.writes_in_place))
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
            self._plan_hand_out()
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
        return moved, copy_refusal([tensors[i] for i in moved], self.launch_ms)

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
