"""One short watched run, of a step callable (`run_check`) or of a whole script (`run_script`),
and the findings it gives."""
from __future__ import annotations

import os
import runpy
import sys
import time

import torch

from .. import monitor
from .diagnose import Spent, Timing, diagnose
from .findings import Report
from .watch import RunWatch, compile_seconds_since, device_sync


def _graph_stats() -> dict[str, Spent]:
    return {graph: Spent(s.calls, s.seconds) for graph, s in monitor.STATS.items()}


def _since(before: dict[str, Spent]) -> dict[str, Spent]:
    after = _graph_stats()
    zero = Spent(0, 0.0)
    return {g: Spent(s.calls - before.get(g, zero).calls, s.seconds - before.get(g, zero).seconds)
            for g, s in after.items()}


def run_check(step, steps: int = 20, warmup: int = 3, fresh_dynamo: bool = True) -> Report:
    """Run the zero-argument `step` (which calls compiled models) `warmup` times, then `steps`
    times timed, each ended by a device synchronization, and report what the run showed. Dynamo,
    the monitor and the compatibility records start afresh, so compiles are seen (with
    `fresh_dynamo=False`, graphs compiled earlier with `config.alarms` off are not timed); the
    monitor's windows are a fifth of the run, so that its alarms can be raised within it."""
    with RunWatch(fresh_dynamo, alarm_window=max(3, (warmup + steps) // 5)) as watch:
        for _ in range(warmup):
            step()
            device_sync()
        before, inside = _graph_stats(), monitor.time_in_compiled_graphs()
        start_epoch, start = time.time(), time.perf_counter()
        wall = waited = 0.0
        for _ in range(steps):
            begun = time.perf_counter()
            step()
            waited += device_sync()
            wall += time.perf_counter() - begun
        spent = _since(before)
        timing = Timing(steps, wall, monitor.time_in_compiled_graphs() - inside, waited,
                        compile_s=compile_seconds_since(watch.dynamo.compiles(), start_epoch),
                        data_s=watch.loader.seconds_since(start),
                        calls=sum(s.calls for s in spent.values()),
                        optimizer_s=watch.optimizer.seconds_since(start))
    return Report(run=diagnose(watch, timing, spent), run_summary=timing.summary())


def _run_path(path: str, args: list[str]) -> BaseException | None:
    """Run the script as `__main__` with its argv and directory on the path; what it raised."""
    saved_argv, saved_path = sys.argv, list(sys.path)
    sys.argv = [path, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        return e if e.code not in (None, 0) else None
    except Exception as e:  # noqa: BLE001 (the user's error: reported, then the findings so far)
        return e
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
    return None


def _steps_begin(compiles: list, default: float) -> float:
    """When the first compiled frame was ready (time.time()): a script's steps begin there."""
    return min((((m.start_time_us or 0) + (m.duration_us or 0)) / 1e6 for m in compiles),
               default=default)


def run_script(path: str, args: list[str]) -> tuple[Report, BaseException | None]:
    """Run a script watched, and what it raised. Its time counts from its first compiled frame on
    (setup and imports before are no steps), a step being one call of its most-called graph. On
    CUDA the script's own waits for the device (.item(), .cpu()) count as host time."""
    with RunWatch() as watch:
        start, start_epoch = time.perf_counter(), time.time()
        raised = _run_path(path, args)
        wall = time.perf_counter() - start
        compiles, spent = watch.dynamo.compiles(), _graph_stats()
        begun = _steps_begin(compiles, start_epoch)
        since = start + (begun - start_epoch)  # the same moment on the perf_counter clock
        timing = Timing(max((s.calls for s in spent.values()), default=0),
                        wall - (begun - start_epoch), monitor.time_in_compiled_graphs(),
                        compile_s=compile_seconds_since(compiles, begun + 1e-6),
                        data_s=watch.loader.seconds_since(since),
                        calls=sum(s.calls for s in spent.values()),
                        optimizer_s=watch.optimizer.seconds_since(since),
                        device_unseen=torch.cuda.is_available() and torch.cuda.is_initialized())
    summary = f"{os.path.basename(path)}: " + timing.summary()
    return Report(run=diagnose(watch, timing, spent), run_summary=summary), raised
