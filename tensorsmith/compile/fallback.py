"""Never the user's crash: a graph the compiler fails on, at compile time or in a call, runs
through ATen as captured (same numbers, not faster), with a record, an event and one
`FallbackWarning` per kind of reason. `TENSORSMITH_STRICT=1` re-raises instead."""
from __future__ import annotations

import os
import traceback
import warnings

import torch

from .. import config, events
from ..errors import (FallbackWarning, IndexOutOfRange, InputError, NumericsError, TensorsmithError,
                      UnsupportedError)
from ..log import log
from ..records import GraphRecord


def guarded(build, gm, record: GraphRecord):
    """Build, or, if the compiler fails on this graph, run it through ATen and say why."""
    try:
        return FallsBackAtRunTime(build(), gm, record)
    except UnsupportedError as e:  # a limit of the compiler, not a bug: fall back even when strict
        reason = f"unsupported: {e}"
    except TensorsmithError as e:
        if config.strict:
            raise
        reason = f"{type(e).__name__}: {e}"
    except Exception as e:  # a compiler bug must not take the user's model down
        if config.strict:
            raise
        reason = f"internal error {internal_error(e)}"
    return fall_back(gm, record, reason)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def internal_error(e: BaseException) -> str:
    """`Type: message` of an exception our code let through, with the innermost frame of this
    package it passed (where to look, in a report that has no traceback) on the first line."""
    first, newline, rest = str(e).partition("\n")
    ours = [f for f in traceback.extract_tb(e.__traceback__) if f.filename.startswith(_PACKAGE + os.sep)]
    where = ""
    if ours:
        frame = ours[-1]
        where = f" (at {os.path.relpath(frame.filename, os.path.dirname(_PACKAGE))}:{frame.lineno} in {frame.name})"
    return f"{type(e).__name__}: {first}{where}{newline}{rest}"


# What a compiled call may raise to the user: their error, as eager would raise it (a bad argument,
# an index out of range, a numerics check they asked for), or the device's memory running out. A
# library step that fails otherwise (ExecutionError) may be our doing: it falls back.
USERS_ERRORS = (InputError, IndexOutOfRange, NumericsError, torch.OutOfMemoryError)


class FallsBackAtRunTime:
    """Runs a built graph; an internal error in a call (anything but `USERS_ERRORS`) makes that
    call and every later one run the graph through ATen. Graphs are functional (AOTAutograd applies
    mutations after the call), so running the call again through ATen is exact."""

    def __init__(self, executor, gm, record: GraphRecord):
        self.executor, self.gm, self.record = executor, gm, record

    def __call__(self, *args):
        if self.executor is None:
            return self.gm(*args)
        try:
            return self.executor(*args)
        except USERS_ERRORS:
            raise
        except Exception as e:
            if config.strict:
                raise
            self.executor = None
            fall_back(self.gm, self.record, f"internal error while running, {internal_error(e)}")
            return self.gm(*args)


_WARNED: set[str] = set()


def fall_back(gm, record: GraphRecord, reason: str):
    """Record, report and warn (once per kind of reason) that `gm` runs through ATen; returns it."""
    record.whole_graph_fallback = reason.splitlines()[0] if reason else "no reason given"
    events.graph_fallback(record)
    log(1, f"{record.graph_id}: running through ATen: {record.whole_graph_fallback}")
    kind = record.whole_graph_fallback.split(":")[0]
    if kind not in _WARNED:
        _WARNED.add(kind)
        warnings.warn(FallbackWarning(
            f"tensorsmith: graph {record.graph_id} runs through ATen without tensorsmith's kernels "
            f"(same numbers, not faster): {record.whole_graph_fallback[:300]}. Later graphs falling "
            f"back for this kind of reason are not warned about: tensorsmith.explain() lists them, "
            f"TENSORSMITH_DEBUG=1 logs each."), stacklevel=2)
    return gm
