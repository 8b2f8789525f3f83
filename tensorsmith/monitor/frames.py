"""Recompile storms of a Dynamo frame, seen while Dynamo compiles it."""
from __future__ import annotations

import time

import torch

from .. import config, events
from ..records import GraphRecord
from .alarms import Alarm, raise_alarm

STORM_FRAMES: set[int] = set()  # Dynamo frames already alarmed about
FRAME_SECONDS: dict[int, float] = {}  # Dynamo frame -> seconds of its compiles seen


def check_frame(record: GraphRecord) -> None:
    """While Dynamo compiles a frame: an alarm when it is that frame's compile number
    `config.alarm_recompiles + 1` or later (once per frame), with Dynamo's reason."""
    try:
        frame, number, reason, seconds = _dynamo_compile()
    except Exception:  # noqa: BLE001 (outside Dynamo, or its internals changed: no frame to watch)
        return
    total = FRAME_SECONDS[frame] = FRAME_SECONDS.get(frame, 0.0) + seconds
    limit = config.alarm_recompiles
    if number <= limit or frame in STORM_FRAMES:
        return
    STORM_FRAMES.add(frame)
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
