"""An alarm, raised once per (kind, graph): an AlarmWarning pointing at the user's line, an "alarm"
event, a log line, and `ALARMS`."""
from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass

import torch

from .. import events
from ..errors import AlarmWarning
from ..log import log

_INSIDE = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (events, torch))


@dataclass
class Alarm:
    kind: str  # "recompile_storm" | "shape_churn" | "step_drift" | "memory_growth" | "numerics"
    graph: str  # graph id (records.GraphRecord.graph_id), or "" when not one graph's
    what: str  # one line: what was seen, with the numbers
    effect: str  # the measured effect
    fix: str  # the fix in one line


ALARMS: list[Alarm] = []  # raised in this process, in order
RAISED: set[tuple[str, str]] = set()  # (kind, graph) already raised


def raise_alarm(alarm: Alarm) -> None:
    """Once per (kind, graph): an AlarmWarning, an "alarm" event, a log line, and ALARMS."""
    key = (alarm.kind, alarm.graph)
    if key in RAISED:
        return
    RAISED.add(key)
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


def raised(kind: str) -> bool:
    return any(k == kind for k, _ in RAISED)
