"""Monitoring events: one JSON object per line, appended to the file `config.events_path` names
(`TENSORSMITH_EVENTS=path`). `tensorsmith report path` summarizes the file.

Every event has `time` (ISO 8601, UTC), `event` and `pid`; the rest depends on the event:

  session    the first event of a process: tensorsmith and torch versions, executor
  compile    a graph (or a shape specialization of one) imported, optimized and scheduled:
             graph, kind, nodes, native_ops, fallback_ops, kernels, library_calls, compile_s,
             specialization, shapes
  cache      the C++ module of a graph came from the compile cache or was built: graph, hit,
             build_s (time from submission until the module was ready, in the background)
  recompile  a frame or graph compiled again, with the reason: Dynamo's (a guard failed, e.g.
             an input size changed: the frame is traced again into new graphs) or tensorsmith's
             ("input shapes changed": a dynamic graph specialized for new shapes)
  fallback   scope "op": an ATen op without a lowering (graph, op, source, reason, count);
             scope "graph": a graph run whole through ATen or the interpreter (graph, reason)
  incident   a numeric or input incident, reported by the guards: kind and what they say
  alarm      a live alarm (monitor/), once per kind and graph: kind (recompile_storm,
             shape_churn, step_drift, memory_growth, numerics), graph, what, effect, fix
  run        one call of a compiled graph (only with TENSORSMITH_EVENTS_RUNS=1): graph, seconds

Each event is one `write` to a file opened for appending, so lines of several processes or threads
never interleave. Writing never raises into the user's program: if the file cannot be written, one
warning says so and events to that path stop.
"""
from __future__ import annotations

import functools
import json
import os
import threading
import time
import warnings
from datetime import datetime, timezone

from . import config

_lock = threading.Lock()
_fd: int | None = None
_fd_path: str | None = None
_failed: set[str] = set()


def emit(event: str, **fields) -> None:
    """Append one event, if events are on; never raises."""
    path = config.events_path
    if not path or path in _failed:
        return
    try:
        with _lock:
            _file(path)
            record = {"time": _now(), "event": event, "pid": os.getpid(), **fields}
            os.write(_fd, (json.dumps(record, default=str) + "\n").encode())
    except Exception as e:  # noqa: BLE001 (monitoring must never take the user's program down)
        _give_up(path, e)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _file(path: str) -> None:
    """Open `path` for appending (the caller holds the lock); a new file starts with a session."""
    global _fd, _fd_path
    if _fd_path == path and _fd is not None:
        return
    if _fd is not None:
        os.close(_fd)
        _fd, _fd_path = None, None
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    _fd_path = path
    import torch

    from .version import __version__
    session = {"time": _now(), "event": "session", "pid": os.getpid(), "tensorsmith": __version__,
               "torch": torch.__version__, "executor": config.executor}
    os.write(_fd, (json.dumps(session) + "\n").encode())


def _after_fork_in_child() -> None:
    """A forked child (a DataLoader worker, say) opens the file anew and starts its own session;
    a lock some parent thread held at the fork is replaced."""
    global _lock, _fd, _fd_path
    _lock = threading.Lock()
    if _fd is not None:
        os.close(_fd)
    _fd, _fd_path = None, None


os.register_at_fork(after_in_child=_after_fork_in_child)


def _give_up(path: str, error: Exception) -> None:
    with _lock:
        if path in _failed:
            return
        _failed.add(path)
    warnings.warn(f"tensorsmith: cannot write events to {path} ({type(error).__name__}: {error}); "
                  f"no more events go there", RuntimeWarning, stacklevel=3)


# What the compiler calls (one line at each place, so the hooks stay small). Each is wrapped so
# that a mistake here can only cost events, never the user's step.

def _safe(hook):
    @functools.wraps(hook)
    def guarded(*args, **kwargs):
        try:
            return hook(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            _give_up(config.events_path or "", e)
            return None
    return guarded


@_safe
def graph_compiled(record, seconds: float, args) -> None:
    """After a graph (or one shape specialization of it) was imported, optimized and scheduled."""
    if not config.events_path:
        return
    shapes = [list(a.shape) for a in args if hasattr(a, "shape")]
    emit("compile", graph=record.graph_id, kind=record.kind, nodes=record.nodes,
         native_ops=sum(record.native.values()), fallback_ops=len(record.fallbacks),
         kernels=record.kernels, library_calls=record.library_calls, compile_s=round(seconds, 6),
         specialization=record.specializations, shapes=shapes)
    if record.specializations == 1:  # later specializations have the same ops
        counts: dict = {}
        for f in record.fallbacks:
            counts[(f.target, f.source, f.reason)] = counts.get((f.target, f.source, f.reason), 0) + 1
        for (op, source, reason), count in counts.items():
            emit("fallback", scope="op", graph=record.graph_id, op=op, source=source, reason=reason,
                 count=count)


@_safe
def recompiling(record, reason: str, args) -> None:
    emit("recompile", graph=record.graph_id, kind=record.kind, reason=reason,
         specialization=record.specializations + 1,
         shapes=[list(a.shape) for a in args if hasattr(a, "shape")])


@_safe
def graph_fallback(record) -> None:
    emit("fallback", scope="graph", graph=record.graph_id, kind=record.kind,
         reason=record.whole_graph_fallback)


incident_listeners: list = []  # called with (kind, fields) of each incident (monitor/'s alarms)


def incident(kind: str, **fields) -> None:
    """A numeric or input incident (NaN/Inf in an output, a rejected argument, ...)."""
    emit("incident", kind=kind, **fields)
    for listener in incident_listeners:
        listener(kind, fields)


@_safe
def alarm(kind: str, graph: str, what: str, effect: str, fix: str) -> None:
    emit("alarm", kind=kind, graph=graph, what=what, effect=effect, fix=fix)


@_safe
def on_built(record):
    """A done-callback for the Future of a graph's built module: a cache event (or a fallback
    event when the build failed)."""
    submitted = time.perf_counter()

    def done(future) -> None:
        if not config.events_path:
            return
        error = future.exception()
        if error is not None:
            emit("fallback", scope="graph", graph=record.graph_id, kind=record.kind,
                 reason=f"build failed: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
            return
        emit("cache", graph=record.graph_id, kind=record.kind, hit=bool(future.result()[1]),
             build_s=round(time.perf_counter() - submitted, 6))

    return _safe(done)


def handed_over(fn, record):
    """Called once for each graph Dynamo and AOTAutograd hand to tensorsmith, with the callable
    that will run it: a recompile event when Dynamo is compiling this frame again (with Dynamo's
    reason, e.g. a guard on an input size failed), and `fn` itself, or, with `config.events_runs`,
    `fn` emitting a run event per call."""
    if not config.events_path:
        return fn
    reason = _safe(dynamo_recompile_reason)()
    if reason:
        emit("recompile", graph=record.graph_id, kind=record.kind, reason=f"Dynamo: {reason}")
    if not config.events_runs:
        return fn

    def run(*args):
        start = time.perf_counter()
        out = fn(*args)
        emit("run", graph=record.graph_id, kind=record.kind, seconds=round(time.perf_counter() - start, 6))
        return out

    return run


def dynamo_recompile_reason() -> str | None:
    """Dynamo's reason for compiling the current frame again, while it compiles (None when this
    is the frame's first compile, or outside Dynamo, e.g. a backward graph compiled lazily)."""
    from torch._dynamo.utils import get_metrics_context

    context = get_metrics_context()
    if not context.in_progress():
        return None
    return getattr(context, "_metrics", {}).get("recompile_reason")  # no public getter (torch 2.13)
