"""Live alarms while training or serving: every compiled graph's calls are timed (`STATS`), and
detectors that run once per step, or once per window of `config.alarm_window` steps or calls,
raise an `Alarm` for what costs time or memory: a recompile storm, shape churn, a drifting step
time, growing memory, a numerics incident. Each warns once (`AlarmWarning`), is written to the
event log (event "alarm") and kept in `ALARMS`; `tensorsmith report` summarizes them.

Steps. In training, a step begins with the first forward call after a backward call: its time is
the interval from one such call to the next (the whole step: backward, optimizer, data), and memory
is sampled there, once per step. A graph called several times a step (a block's graph, a mixture of
experts' expert) does not make steps of its own. Without a backward (serving, evaluation), each
call of a forward or inference graph is a step of that graph, timed by the call itself (a server's
intervals between calls include its idle time). A window's step time is its interquartile mean:
slow outliers (a checkpoint) fall outside it, and a step pattern that repeats keeps it steady.

Cost: per call two `perf_counter` reads, counter updates and a flag; per step one memory sample (a
pread of /proc/self/statm, ~1.5 us, or `torch.cuda.memory_allocated` for CUDA outputs) and two
appends; per window a sort of its step times. With `config.alarms` off when a graph compiles, its
callable is not wrapped.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable

import torch

from . import config, events
from .errors import AlarmWarning
from .log import log
from .records import GraphRecord

STEP_KINDS = ("forward", "inference")
_REUSE = 2  # recompile_storm of shapes: compiled shapes that ran fewer calls each on average
_CHURN = 0.5  # shape_churn: more than half of a window's calls ran through ATen
_GROWING = 0.8  # memory_growth: at least 80% of a window's step-to-step changes are increases
_MIN_DRIFT_S = 0.5e-3  # step_drift: less excess a step than this is timer and scheduler noise
_MIB = 1 << 20
_INSIDE = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (events, torch))


@dataclass
class Alarm:
    kind: str  # "recompile_storm" | "shape_churn" | "step_drift" | "memory_growth" | "numerics"
    graph: str  # graph id (records.GraphRecord.graph_id), or "" when not one graph's
    what: str  # one line: what was seen, with the numbers
    effect: str  # the measured effect
    fix: str  # the fix in one line


@dataclass
class GraphStats:
    calls: int = 0
    seconds: float = 0.0  # host wall time inside the compiled graph's calls, inclusive


ALARMS: list[Alarm] = []  # raised in this process, in order
STATS: dict[str, GraphStats] = {}  # graph_id -> stats (graphs called since the last reset)
_RAISED: set[tuple[str, str]] = set()  # (kind, graph) already raised
_STORM_FRAMES: set[int] = set()  # Dynamo frames already alarmed about
_FRAME_SECONDS: dict[int, float] = {}  # Dynamo frame -> seconds of its compiles seen
_WATCHERS: weakref.WeakSet = weakref.WeakSet()  # live ones: reset() restarts them


def watch(fn: Callable, record: GraphRecord) -> Callable:
    """`fn` (the callable that runs one compiled graph) timed and watched; `fn` itself when
    `config.alarms` is off. Called when the graph is compiled (a recompile storm is seen then)."""
    if not config.alarms:
        return fn
    if record.kind in STEP_KINDS:
        _check_frame(record)
    watcher = _Watcher(record)
    _WATCHERS.add(watcher)
    return watcher.wrap(fn)


def time_in_compiled_graphs() -> float:
    return sum(s.seconds for s in STATS.values())


def reset() -> None:
    """Clears ALARMS, STATS and every detector's state (live graphs start a new warm-up)."""
    ALARMS.clear()
    STATS.clear()
    _RAISED.clear()
    _STORM_FRAMES.clear()
    _FRAME_SECONDS.clear()
    _TRAINING.restart()
    for watcher in list(_WATCHERS):
        watcher.restart()


def raise_alarm(alarm: Alarm) -> None:
    """Once per (kind, graph): an AlarmWarning, an "alarm" event, a log line, and ALARMS."""
    key = (alarm.kind, alarm.graph)
    if key in _RAISED:
        return
    _RAISED.add(key)
    ALARMS.append(alarm)
    events.alarm(alarm.kind, alarm.graph, alarm.what, alarm.effect, alarm.fix)
    where = f" ({alarm.graph})" if alarm.graph else ""
    log(1, f"alarm {alarm.kind}{where}: {alarm.what}; {alarm.effect}")
    warnings.warn(AlarmWarning(f"tensorsmith: {alarm.kind}{where}: {alarm.what}. Effect: "
                               f"{alarm.effect}. Fix: {alarm.fix}"), stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The stacklevel of the innermost caller outside tensorsmith and torch (the user's line)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith(_INSIDE)
                                 or "<eval_with_key>" in frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 2


# -- steps: step_drift and memory_growth ---------------------------------------------------------

class _Steps:
    """A series of steps (time, memory after it) in windows; the first window is warm-up
    (compiles, allocator caches, optimizer state). `what` names the steps in messages."""

    def __init__(self, what: str, intervals: bool):
        self.what, self.intervals = what, intervals  # intervals: times include the host's work
        self.restart()

    def restart(self) -> None:
        self.window = _window()  # read at each step: settable any time
        self.windows = 0
        self.times: list[float] = []
        self.memory: list[int] = []
        self.sample: Callable[[], int] | None = None  # chosen at the first step
        self.memory_kind = ""
        self.in_graphs = time_in_compiled_graphs()
        self.baseline: tuple[float, float] | None = None  # fastest window: (time, graphs' s/step)
        self.memory_last = 0
        self.growth: list | None = None  # [memory at its start, steps, increases] while growing

    def add(self, seconds: float | None, outputs, graph: str) -> None:
        if self.sample is None:
            self.sample, self.memory_kind = _memory_sampler(outputs)
        if seconds is not None:
            self.times.append(seconds)
        self.memory.append(self.sample())
        if len(self.memory) >= _window():
            self._end_window(graph)

    def _end_window(self, graph: str) -> None:
        times, memory = self.times, self.memory
        self.times, self.memory = [], []
        self.window = _window()
        in_graphs, self.in_graphs = self.in_graphs, time_in_compiled_graphs()
        self.windows += 1
        if self.windows == 1:
            self.memory_last = memory[-1]
            return
        if len(times) >= 2:
            self._drift(_interquartile_mean(times), (self.in_graphs - in_graphs) / len(memory), graph)
        self._memory(memory, graph)

    def _drift(self, typical: float, graphs_per_step: float, graph: str) -> None:
        if self.baseline is None or typical < self.baseline[0]:
            self.baseline = (typical, graphs_per_step)
            return
        base, base_graphs = self.baseline
        excess = typical - base
        if typical <= config.alarm_drift * base or excess < _MIN_DRIFT_S or _raised("step_drift"):
            return
        inside = graphs_per_step - base_graphs if self.intervals else excess
        fix = ("the time grew inside the compiled graphs: look for shapes that grew, throttling or "
               "other work on the device (TENSORSMITH_EVENTS=path, then tensorsmith report)"
               if inside > excess / 2 else
               "the time grew outside the compiled graphs: profile the Python around the step "
               "(data loading, logging, a list or cache that grows each step)")
        raise_alarm(Alarm(
            "step_drift", graph,
            f"{self.what} {typical * 1e3:.1f} ms, {typical / base:.1f}x the {base * 1e3:.1f} ms it "
            f"took after warm-up (interquartile means over {self.window} steps)",
            f"+{excess * 1e3:.1f} ms a step ({inside * 1e3:+.1f} ms of it in compiled graphs)", fix))

    def _memory(self, samples: list[int], graph: str) -> None:
        steps = [self.memory_last] + samples
        self.memory_last = samples[-1]
        increases = sum(1 for a, b in zip(steps, steps[1:]) if b > a)
        if increases < _GROWING * len(samples):
            self.growth = None
            return
        if self.growth is None:
            self.growth = [steps[0], 0, 0]
        self.growth[1] += len(samples)
        self.growth[2] += increases
        start, count, grew = self.growth
        grown = samples[-1] - start
        if grown <= config.alarm_memory_mib * _MIB:
            return
        raise_alarm(Alarm(
            "memory_growth", "",
            f"{self.memory_kind} grew from {start / _MIB:.0f} MiB to {samples[-1] / _MIB:.0f} MiB, "
            f"in {grew} of the last {count} steps (sampled after each step's call of {graph})",
            f"+{grown / _MIB:.0f} MiB over {count} steps ({grown / count / _MIB:.2f} MiB a step)",
            "keep no tensor from step to step: append loss.item() or loss.detach(), not the loss "
            "with its graph; look for a list, cache or hook that grows"))


def _window() -> int:
    return max(2, config.alarm_window)


def _interquartile_mean(values: list[float]) -> float:
    ordered = sorted(values)
    quarter = len(ordered) // 4
    middle = ordered[quarter:len(ordered) - quarter]
    return sum(middle) / len(middle)


def _raised(kind: str) -> bool:
    return any(k == kind for k, _ in _RAISED)


class _Training:
    """The process's training steps: one begins at the first forward call after a backward call."""

    def __init__(self):
        self.steps = _Steps("step time", intervals=True)
        self.restart()

    def restart(self) -> None:
        self.backward_ran = False  # since the last step began
        self.started = False  # a backward has run: forwards no longer make steps of their own
        self.last: float | None = None
        self.steps.restart()

    def begin(self, start: float, outputs, graph: str) -> None:
        """A forward call after a backward call, at `start`."""
        self.backward_ran, self.started = False, True
        last, self.last = self.last, start
        self.steps.add(None if last is None else start - last, outputs, graph)


_TRAINING = _Training()


# -- one compiled graph: timing, shape_churn and recompile_storm of shapes -----------------------

class _Watcher:
    """The timing of one compiled graph and the detectors that look at its calls."""

    def __init__(self, record: GraphRecord):
        self.record = record
        self.stats = GraphStats()
        self.steps = _Steps("call time", intervals=False)  # steps of its own (no backward ran)
        self.restart()

    def restart(self) -> None:
        self.stats.calls, self.stats.seconds = 0, 0.0  # in place: the wrapper holds this object
        self.window = _window()
        self.next_check = 1  # the first call registers the stats
        self.mark = (self.record.aten_calls, 0.0)  # at the last check: ATen calls, own seconds
        self.since = (self.record.specializations, self.record.aten_calls)
        self.steps.restart()

    def wrap(self, fn: Callable) -> Callable:
        """The wrapper holds the watcher (which `_WATCHERS` holds weakly): both live as long as the
        compiled graph."""
        clock, stats, training, watcher = time.perf_counter, self.stats, _TRAINING, self
        if self.record.kind not in STEP_KINDS:
            def timed(*args):
                start = clock()
                out = fn(*args)
                stats.seconds += clock() - start
                stats.calls += 1
                training.backward_ran = True
                if stats.calls == 1:
                    STATS[watcher.record.graph_id] = stats
                return out
            return timed

        graph, forward = self.record.graph_id, self.record.kind == "forward"

        def watched(*args):
            start = clock()
            out = fn(*args)
            end = clock()
            stats.seconds += end - start
            stats.calls += 1
            if stats.calls >= watcher.next_check:
                watcher.check()
            if forward and training.backward_ran:
                training.begin(start, out, graph)
            elif not (forward and training.started):
                watcher.steps.add(end - start, out, graph)
            return out
        return watched

    def check(self) -> None:
        """At the first call and every `window` calls after it."""
        calls = self.stats.calls
        STATS[self.record.graph_id] = self.stats
        self.next_check = calls + self.window if calls > 1 else self.window
        if calls == 1:
            return
        aten, seconds = self.mark
        self.mark = (self.record.aten_calls, self.stats.seconds)
        self._specializations()
        if calls >= 2 * self.window:  # the first window is warm-up: new shapes meet ATen first
            self._churn(self.mark[0] - aten, self.window, self.mark[1] - seconds)

    def _specializations(self) -> None:
        """More than N shapes compiled (since the watch began) that ran fewer than `_REUSE` calls
        each on average: compiles that do not pay. Shapes that recur (buckets, a mixture of
        experts' token counts) are compiled once each and reused: no storm."""
        shapes = self.record.specializations - self.since[0]
        if shapes <= config.alarm_recompiles:
            return
        calls = self.stats.calls - (self.record.aten_calls - self.since[1])  # compiled calls
        if calls >= _REUSE * shapes:
            return
        capped = self.record.specializations >= config.max_specializations
        raise_alarm(Alarm(
            "recompile_storm", self.record.graph_id,
            f"graph {self.record.graph_id} was compiled for {shapes} input shapes (more than "
            f"{config.alarm_recompiles}), which ran {calls / shapes:.1f} calls each on average; "
            f"tensorsmith's reason: input shapes changed",
            f"{shapes} compiles for {calls} compiled calls" + (
                " (the cap: new shapes now run through ATen)" if capped else ""),
            "pad inputs to a few lengths (buckets), so that each compiled shape recurs"))

    def _churn(self, aten_calls: int, calls: int, seconds: float) -> None:
        if aten_calls <= _CHURN * calls:
            return
        raise_alarm(Alarm(
            "shape_churn", self.record.graph_id,
            f"{aten_calls} of the last {calls} calls of {self.record.graph_id} ran through ATen "
            f"uncompiled: its input shapes change on nearly every call (a shape compiles only when "
            f"it comes again)",
            f"{aten_calls} calls at eager speed, {seconds / calls * 1e3:.2f} ms a call",
            "pad inputs to a few lengths (buckets), or mark the dimension static"))


# -- recompile storms of a Dynamo frame ----------------------------------------------------------

def _check_frame(record: GraphRecord) -> None:
    """While Dynamo compiles a frame: an alarm when it is that frame's compile number
    `config.alarm_recompiles + 1` or later (once per frame), with Dynamo's reason."""
    try:
        frame, number, reason, seconds = _dynamo_compile()
    except Exception:  # noqa: BLE001 (outside Dynamo, or its internals changed: no frame to watch)
        return
    total = _FRAME_SECONDS[frame] = _FRAME_SECONDS.get(frame, 0.0) + seconds
    limit = config.alarm_recompiles
    if number <= limit or frame in _STORM_FRAMES:
        return
    _STORM_FRAMES.add(frame)
    dynamo_limit = getattr(torch._dynamo.config, "recompile_limit", None)
    raise_alarm(Alarm(
        "recompile_storm", record.graph_id,
        f"Dynamo compiled one frame {number} times (more than {limit}); its reason for this one: "
        f"{reason or 'unknown'}",
        f"{number} compiles, {total:.2f} s of tracing and compiling seen" + (
            f"; at {dynamo_limit} Dynamo stops compiling the frame and runs it eagerly"
            if dynamo_limit else ""),
        "make what changes a tensor, or a value that does not decide control flow or shapes "
        "(a Python int used in range() or an if specializes the graph); TORCH_LOGS=recompiles "
        "lists each guard"))


def _dynamo_compile() -> tuple[int, int, str | None, float]:
    """(frame id, which compile of the frame this is (1 = its first), Dynamo's reason, seconds since
    this compile began) while Dynamo compiles a frame; raises otherwise."""
    from torch._dynamo.utils import get_metrics_context
    from torch._guards import CompileContext

    compile_id = CompileContext.current_compile_id()
    started = getattr(get_metrics_context(), "_start_time_ns", 0)  # no public getter (torch 2.13)
    seconds = (time.time_ns() - started) / 1e9 if started else 0.0
    reason = events.dynamo_recompile_reason()
    reason = " ".join(reason.splitlines()[0].split()) if reason else None
    return compile_id.frame_id, compile_id.frame_compile_id + 1, reason, seconds


# -- numerics incidents --------------------------------------------------------------------------

def _on_incident(kind: str, fields: dict) -> None:
    """An incident of the numeric guards (events.incident) as a numerics alarm."""
    if not config.alarms or kind not in ("numerics", "numerics_input"):
        return
    graph, graph_kind, value = fields.get("graph") or "", fields.get("graph_kind"), fields.get("value")
    if kind == "numerics":
        where = f" at {fields['source']}" if fields.get("source") else ""
        what = (f"{fields.get('op')}{where} made {value} from finite inputs in the {graph_kind} "
                f"graph, shape {fields.get('shape')}")
        fix = ("keep that op in its domain: clamp, add an epsilon, or compute it in float32 "
               "(a log or division of 0, an exp or a half-precision value that overflows)")
    else:
        what = (f"argument {fields.get('position')} ({fields.get('argument')}) of the {graph_kind} "
                f"graph contains {value}")
        fix = ("find where the input became NaN/Inf: the data, or an earlier step that diverged "
               "(lower the learning rate, clip gradients)")
    raise_alarm(Alarm("numerics", graph, what,
                      f"{value}: what is computed from them is NaN/Inf too (loss, gradients)", fix))


events.incident_listeners.append(_on_incident)


# -- memory samples ------------------------------------------------------------------------------

def _memory_sampler(outputs) -> tuple[Callable[[], int], str]:
    """CUDA memory allocated where the graph's outputs are on CUDA, else the resident set (from
    /proc, else psutil; without either every sample is 0: memory is not watched)."""
    try:
        device = next((t.device for t in outputs if isinstance(t, torch.Tensor) and t.is_cuda), None)
    except TypeError:
        device = None
    if device is not None:
        return (lambda: torch.cuda.memory_allocated(device)), "CUDA memory allocated"
    if not _resident_bytes():
        try:
            import psutil
        except ImportError:
            return _resident_bytes, "resident memory"
        process = psutil.Process()
        return (lambda: process.memory_info().rss), "resident memory"
    return _resident_bytes, "resident memory"


_STATM = {"fd": -1, "pid": -1}
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident_bytes() -> int:
    """The resident set: a pread of /proc/self/statm, reopened in a forked child; 0 where there is
    no /proc."""
    if _STATM["pid"] != os.getpid():
        if _STATM["fd"] >= 0:
            os.close(_STATM["fd"])  # the parent's, inherited
        _STATM["pid"] = os.getpid()
        try:
            _STATM["fd"] = os.open(f"/proc/{os.getpid()}/statm", os.O_RDONLY)
        except OSError:
            _STATM["fd"] = -1
    if _STATM["fd"] < 0:
        return 0
    return int(os.pread(_STATM["fd"], 128, 0).split()[1]) * _PAGE
