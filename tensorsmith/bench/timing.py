"""Clocks and interleaved rounds.

A step is timed on the device's own clock: on a GPU, CUDA events around the step after a
synchronize (the host clock would time only the kernel launches); on a CPU, perf_counter.
Backends are timed in interleaved rounds, the order rotating each round, so a slow spell of the
machine lands on every backend instead of on whichever happened to run then.
"""
from __future__ import annotations

import time
from typing import Callable

import torch


class Clock:
    def __init__(self, device: str = "cpu"):
        self.cuda = str(device).startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def time(self, step: Callable[[], object]) -> float:
        """Seconds of one call of `step`, all of its device work included."""
        if not self.cuda:
            start = time.perf_counter()
            step()
            return time.perf_counter() - start
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def wall(self, fn: Callable[[], object]):
        """(result, seconds) on the host clock with the device drained on both sides: for work that
        is mostly host-side, like a first call that compiles."""
        self.sync()
        start = time.perf_counter()
        result = fn()
        self.sync()
        return result, time.perf_counter() - start


def interleave(steps: dict, rounds: int, clock: Clock, on_error=None, after_call=None) -> dict:
    """{name: [seconds per round]}. A step that raises is dropped from later rounds and reported
    through on_error(name, exc); after_call(name) runs outside the timed region after each call."""
    samples = {name: [] for name in steps}
    active = list(steps)
    for r in range(rounds):
        order = active[r % len(active):] + active[:r % len(active)] if active else []
        for name in order:
            try:
                samples[name].append(clock.time(steps[name]))
            except Exception as exc:  # noqa: BLE001 - any failure becomes that backend's status
                active.remove(name)
                if on_error is None:
                    raise
                on_error(name, exc)
            if after_call is not None:
                after_call(name)
        if not active:
            break
    return samples
