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
intervals between calls include its idle time). A window's step time is its interquartile mean (the
median below four steps): slow outliers (a checkpoint) fall outside it, and a step pattern that
repeats keeps it steady.

Cost: per call two `perf_counter` reads, counter updates and a flag; per step one memory sample (a
pread of /proc/self/statm, ~1.5 us, or `torch.cuda.memory_allocated` for CUDA outputs) and two
appends; per window a sort of its step times. With `config.alarms` off when a graph compiles, its
callable is not wrapped.
"""

from __future__ import annotations

from typing import Callable

from .. import config
from ..records import GraphRecord
from . import incidents  # noqa: F401  (numerics incidents become alarms)
from .alarms import ALARMS, RAISED, Alarm, raise_alarm
from .frames import FRAME_SECONDS, STORM_FRAMES, check_frame
from .graphs import STEP_KINDS, WATCHERS, Watcher
from .stats import STATS, GraphStats, time_in_compiled_graphs
from .steps import TRAINING

__all__ = ["ALARMS", "STATS", "Alarm", "GraphStats", "raise_alarm", "reset", "time_in_compiled_graphs",
           "watch"]


def watch(fn: Callable, record: GraphRecord) -> Callable:
    """`fn` (the callable that runs one compiled graph) timed and watched; `fn` itself when
    `config.alarms` is off. Called when the graph is compiled (a recompile storm is seen then)."""
    if not config.alarms:
        return fn
    if record.kind in STEP_KINDS:
        check_frame(record)
    watcher = Watcher(record)
    WATCHERS.add(watcher)
    return watcher.wrap(fn)


def reset() -> None:
    """Clears ALARMS, STATS and every detector's state (live graphs start a new warm-up)."""
    ALARMS.clear()
    STATS.clear()
    RAISED.clear()
    STORM_FRAMES.clear()
    FRAME_SECONDS.clear()
    TRAINING.restart()
    for watcher in list(WATCHERS):
        watcher.restart()
