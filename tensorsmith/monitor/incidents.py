"""Incidents of the numeric guards (events.incident) as numerics alarms."""
from __future__ import annotations

from .. import config, events
from .alarms import Alarm, raise_alarm


def _on_incident(kind: str, fields: dict) -> None:
    """An incident of the numeric guards (events.incident) as a numerics alarm."""
    if not config.alarms or kind not in ("numerics", "numerics_input"):
        return
    graph, graph_kind, value = fields.get("graph") or "", fields.get("graph_kind"), fields.get("value")
    if kind == "numerics":
        where = f" at {fields['source']}" if fields.get("source") else ""
        what = (f"{fields.get('op')}{where} made {value} from finite inputs in the {graph_kind} "
                f"graph, shape {fields.get('shape')}")
        fix = ("keep that op in its domain: clamp, add an epsilon, or compute it in float32 "
               "(a log or division of 0, an exp or a half-precision value that overflows)")
    else:
        what = (f"argument {fields.get('position')} ({fields.get('argument')}) of the {graph_kind} "
                f"graph contains {value}")
        fix = ("find where the input became NaN/Inf: the data, or an earlier step that diverged "
               "(lower the learning rate, clip gradients)")
    raise_alarm(Alarm("numerics", graph, what,
                      f"{value}: what is computed from them is NaN/Inf too (loss, gradients)", fix))


events.incident_listeners.append(_on_incident)
