"""Steps in windows, and the detectors that look at whole windows: step_drift and memory_growth.
In training, a step begins at the first forward call after a backward call (`TRAINING`)."""
from __future__ import annotations

import statistics
from typing import Callable

from .. import config
from .alarms import Alarm, raise_alarm, raised
from .memory import MIB, memory_sampler
from .stats import time_in_compiled_graphs

_GROWING = 0.8  # memory_growth: at least 80% of a window's step-to-step changes are increases
_MIN_DRIFT_S = 0.5e-3  # step_drift: less excess a step than this is timer and scheduler noise


class Steps:
    """A series of steps (time, memory after it) in windows; the first window is warm-up
    (compiles, allocator caches, optimizer state). `what` names the steps in messages."""

    def __init__(self, what: str, intervals: bool):
        self.what, self.intervals = what, intervals  # intervals: times include the host's work
        self.restart()

    def restart(self) -> None:
        self.window = window()  # read at each step: settable any time
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
            self.sample, self.memory_kind = memory_sampler(outputs)
        if seconds is not None:
            self.times.append(seconds)
        self.memory.append(self.sample())
        if len(self.memory) >= window():
            self._end_window(graph)

    def _end_window(self, graph: str) -> None:
        times, memory = self.times, self.memory
        self.times, self.memory = [], []
        self.window = window()
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
        if typical <= config.alarm_drift * base or excess < _MIN_DRIFT_S or raised("step_drift"):
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
        if grown <= config.alarm_memory_mib * MIB:
            return
        raise_alarm(Alarm(
            "memory_growth", "",
            f"{self.memory_kind} grew from {start / MIB:.0f} MiB to {samples[-1] / MIB:.0f} MiB, "
            f"in {grew} of the last {count} steps (sampled after each step's call of {graph})",
            f"+{grown / MIB:.0f} MiB over {count} steps ({grown / count / MIB:.2f} MiB a step)",
            "keep no tensor from step to step: append loss.item() or loss.detach(), not the loss "
            "with its graph; look for a list, cache or hook that grows"))


def window() -> int:
    return max(2, config.alarm_window)


def _interquartile_mean(values: list[float]) -> float:
    """The mean of the middle half; below four values, the median (one descheduled step in a
    window of three must not move it)."""
    if len(values) < 4:
        return statistics.median(values)
    ordered = sorted(values)
    quarter = len(ordered) // 4
    middle = ordered[quarter:len(ordered) - quarter]
    return sum(middle) / len(middle)


class Training:
    """The process's training steps: one begins at the first forward call after a backward call."""

    def __init__(self):
        self.steps = Steps("step time", intervals=True)
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


TRAINING = Training()
