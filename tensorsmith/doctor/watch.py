"""Everything a doctor's run watches, started and stopped together: the monitor (reset, alarms on),
the compatibility records, Dynamo's graph breaks and compiles, and time spent in DataLoaders and
optimizer steps."""
from __future__ import annotations

import contextlib
import time
import warnings

import torch
from torch.optim import optimizer
from torch.utils.data import dataloader

from .. import config, monitor, records
from ..errors import AlarmWarning
from .dynamo import DynamoWatch


class _Spans:
    """(start, seconds) spans of something timed, on the `time.perf_counter()` clock."""

    def __init__(self):
        self.spans: list[tuple[float, float]] = []

    def seconds_since(self, start: float) -> float:
        return sum(seconds for begun, seconds in self.spans if begun >= start)


class LoaderTimer(_Spans):
    """Wall time inside DataLoader iterators' `__next__` (every DataLoader iterator's base
    class), one span per batch."""

    def __enter__(self):
        cls = dataloader._BaseDataLoaderIter
        self._original = original = cls.__next__
        spans = self.spans

        def timed_next(iterator):
            start = time.perf_counter()
            try:
                return original(iterator)
            finally:
                spans.append((start, time.perf_counter() - start))

        cls.__next__ = timed_next
        return self

    def __exit__(self, *exc):
        dataloader._BaseDataLoaderIter.__next__ = self._original


class OptimizerTimer(_Spans):
    """Wall time inside every optimizer's `step` (torch's global step hooks): work a training step
    needs that runs eagerly, told apart from avoidable host work."""

    def __enter__(self):
        self._begun: list[float] = []
        self._hooks = [optimizer.register_optimizer_step_pre_hook(self._pre),
                       optimizer.register_optimizer_step_post_hook(self._post)]
        return self

    def _pre(self, *args):
        self._begun.append(time.perf_counter())

    def _post(self, *args):
        if self._begun:
            start = self._begun.pop()
            self.spans.append((start, time.perf_counter() - start))

    def __exit__(self, *exc):
        for hook in self._hooks:
            hook.remove()


@contextlib.contextmanager
def _settings(**values):
    """`config` knobs set for the duration, restored after."""
    saved = {name: getattr(config, name) for name in values}
    try:
        for name, value in values.items():
            setattr(config, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(config, name, value)


class RunWatch:
    """A context over a run: on entry Dynamo (optionally), the monitor and the records start
    afresh, and the monitor's alarms are on (over windows of `alarm_window` steps where given: a
    short run needs short windows), kept as findings rather than warned about; `dynamo`, `loader`
    and `optimizer` collect meanwhile."""

    def __init__(self, fresh_dynamo: bool = True, alarm_window: int | None = None):
        self.fresh_dynamo, self.alarm_window = fresh_dynamo, alarm_window
        self.dynamo = DynamoWatch()
        self.loader = LoaderTimer()
        self.optimizer = OptimizerTimer()
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        if self.fresh_dynamo:
            torch._dynamo.reset()
        self._stack.enter_context(_settings(alarms=True, alarm_window=self.alarm_window or
                                            config.alarm_window))
        monitor.reset()
        records.reset()
        self._stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", AlarmWarning)
        self._stack.enter_context(self.dynamo)
        self._stack.enter_context(self.loader)
        self._stack.enter_context(self.optimizer)
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)

    @property
    def records(self) -> list:
        return list(records.RECORDS)

    @property
    def alarms(self) -> list:
        return list(monitor.ALARMS)


def compile_seconds_since(compiles: list, start_epoch: float) -> float:
    """Seconds Dynamo spent compiling frames that began at or after `start_epoch` (time.time())."""
    return sum((m.entire_frame_compile_time_s or 0.0) for m in compiles
               if (m.start_time_us or 0) / 1e6 >= start_epoch)


def device_sync() -> float:
    """Wait for the CUDA device (where this process uses it); the seconds waited."""
    if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
        return 0.0
    start = time.perf_counter()
    torch.cuda.synchronize()
    return time.perf_counter() - start
