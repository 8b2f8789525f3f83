"""One compiled graph's watcher: its timing, its steps when no backward runs, shape_churn and the
recompile storm of its shape specializations."""
from __future__ import annotations

import time
import weakref
from typing import Callable

from .. import config
from ..records import GraphRecord
from .alarms import Alarm, raise_alarm
from .stats import STATS, GraphStats
from .steps import TRAINING, Steps, window

STEP_KINDS = ("forward", "inference")
_REUSE = 2  # recompile_storm of shapes: compiled shapes that ran fewer calls each on average
_CHURN = 0.5  # shape_churn: more than half of a window's calls ran through ATen
WATCHERS: weakref.WeakSet = weakref.WeakSet()  # live ones: reset() restarts them


class Watcher:
    """The timing of one compiled graph and the detectors that look at its calls."""

    def __init__(self, record: GraphRecord):
        self.record = record
        self.stats = GraphStats()
        self.steps = Steps("call time", intervals=False)  # steps of its own (no backward ran)
        self.restart()

    def restart(self) -> None:
        self.stats.calls, self.stats.seconds = 0, 0.0  # in place: the wrapper holds this object
        self.window = window()
        self.next_check = 1  # the first call registers the stats
        self.mark = (self.record.aten_calls, 0.0)  # at the last check: ATen calls, own seconds
        self.since = (self.record.specializations, self.record.aten_calls)
        self.steps.restart()

    def wrap(self, fn: Callable) -> Callable:
        """The wrapper holds the watcher (which `WATCHERS` holds weakly): both live as long as the
        compiled graph."""
        clock, stats, training, watcher = time.perf_counter, self.stats, TRAINING, self
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
