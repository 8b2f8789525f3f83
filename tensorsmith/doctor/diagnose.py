"""What a watched run showed, as findings: graph breaks, recompiles, graphs and ops that ran through
ATen, the share of each step spent outside compiled graphs, and the monitor's alarms."""
from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass

import torch

from .. import records as compatibility
from . import environment
from .findings import Finding

OUTSIDE_SHARE = 0.3  # a step spending this share of its time outside compiled graphs ...
OUTSIDE_MS = 1.0  # ... and at least this many ms is host-bound


@dataclass
class Spent:
    """One compiled graph's calls and host seconds over a run's measured part."""
    calls: int
    seconds: float


@dataclass
class Timing:
    """A run's time, summed over its measured steps."""
    steps: int
    wall_s: float
    inside_s: float  # in compiled graphs' calls (the monitor's host timing)
    device_wait_s: float = 0.0  # waiting for the GPU at the end of steps
    compile_s: float = 0.0  # Dynamo compiling frames meanwhile
    data_s: float = 0.0  # in DataLoader iterators
    calls: int = 0  # compiled graph calls
    optimizer_s: float = 0.0  # in optimizer steps (eager, but work the step needs)
    device_unseen: bool = False  # CUDA in use but not synchronized by us: waits hide in host time

    @property
    def outside_s(self) -> float:
        """Host time outside compiled graphs that is not compiling, waiting for the device or
        stepping an optimizer."""
        return max(0.0, self.wall_s - self.inside_s - self.device_wait_s - self.compile_s
                   - self.optimizer_s)

    def per_step_ms(self, seconds: float) -> float:
        return seconds / max(self.steps, 1) * 1000

    def summary(self) -> str:
        share = self.inside_s / self.wall_s * 100 if self.wall_s else 0.0
        parts = [f"{self.steps} steps, {_ms(self.per_step_ms(self.wall_s))} ms a step, "
                 f"{share:.0f}% of it in compiled graphs"]
        for seconds, what in ((self.optimizer_s, "optimizer steps"), (self.compile_s, "compiling")):
            if seconds:
                parts.append(f"{_ms(self.per_step_ms(seconds))} ms {what}")
        return ", ".join(parts)


def _ms(ms: float) -> str:
    return f"{ms:.1f}" if ms >= 1 else f"{ms:.2f}"


def _short(path: str) -> str:
    return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path


def graph_breaks(breaks: dict, timing: Timing) -> list[Finding]:
    calls = timing.calls / max(timing.steps, 1)
    found = []
    for gb, count in breaks.items():
        if "item()" in gb.reason:
            fix = ("keep the value a tensor inside the compiled code, or read .item() outside it "
                   "(every N steps): each .item() also waits for the device")
        else:
            fix = gb.hint or ("rewrite the line so Dynamo can trace it, or move it out of the "
                              "compiled function (tensorsmith.explain lists every break)")
        where = gb.where.replace(gb.file, _short(gb.file), 1)
        found.append(Finding("graph_break", f"graph break at {where}: {gb.reason}",
                             f"each step runs {calls:.0f} compiled graph call(s) with eager Python "
                             f"between them (Dynamo met this break {count}x)", fix))
    return found


_TORCH = os.path.dirname(torch.__file__)


def _frame(m) -> str:
    """The recompiled frame: the user's function, or for a compiled module (whose frame is
    Dynamo's wrapper) the user's line that called it."""
    if m.co_filename and not m.co_filename.startswith(_TORCH):
        return f"{m.co_name} ({_short(m.co_filename)}:{m.co_firstlineno})"
    for entry in reversed(m.stack_trace or []):
        found = re.match(r"Line: (\d+), Name: (.*), Filename: (.+)", entry)
        if found and not found[3].startswith(_TORCH):
            return f"the compiled module called at {_short(found[3])}:{found[1]}"
    return f"{m.co_name} ({m.co_filename}:{m.co_firstlineno})"


def recompiles(compiles: list, timing: Timing) -> list[Finding]:
    by_frame = defaultdict(list)
    for m in compiles:
        if m.recompile_reason:
            by_frame[_frame(m)].append(m)
    found = []
    for frame, again in by_frame.items():
        seconds = sum(m.entire_frame_compile_time_s or 0.0 for m in again)
        reason = " ".join(again[-1].recompile_reason.strip().splitlines()[0].split())[:160]
        shape = "size mismatch" in reason or "stride mismatch" in reason
        fix = ("pad inputs to a few fixed sizes, or torch._dynamo.mark_dynamic(x, dim) before the "
               "first call" if shape else "keep the guarded value the same between calls (the "
               "reason names it), or pass it as a tensor")
        found.append(Finding("recompile", f"{frame} recompiled {len(again)}x; last: {reason}",
                             f"{seconds:.2f} s compiling during the run", fix,
                             "warning" if len(again) > 1 else "note"))
    return found


def _graph_share(graph_id: str, stats: dict, timing: Timing) -> str:
    graph = stats.get(graph_id)
    if graph is None or not timing.wall_s:
        return "its time per step not measured"
    return (f"{_ms(timing.per_step_ms(graph.seconds))} ms per step "
            f"({graph.seconds / timing.wall_s * 100:.0f}%) in it, at eager speed")


def _uncompiled_shapes(records: list, stats: dict, timing: Timing) -> list[Finding]:
    """Calls of dynamic graphs run through ATen, their shapes not compiled (one finding for all:
    a backward's shapes follow its forward's)."""
    churned = [r for r in records if r.aten_calls]
    if not churned:
        return []
    seconds = sum(stats[r.graph_id].seconds for r in churned if r.graph_id in stats)
    share = f" ({seconds / timing.wall_s * 100:.0f}%)" if timing.wall_s else ""
    return [Finding("shape_churn", f"{sum(r.aten_calls for r in churned)} call(s) of "
                    f"{', '.join(r.graph_id for r in churned)} ran through ATen: their input shapes "
                    "were not compiled (a shape compiles when it comes again)",
                    f"{_ms(timing.per_step_ms(seconds))} ms per step{share} in them, at eager speed",
                    "pad inputs to a few fixed sizes (buckets)")]


def fallbacks(records: list, stats: dict, timing: Timing, churn_alarm: bool) -> list[Finding]:
    """Whole graphs and ops run through ATen, and uncompiled shapes unless the monitor's shape
    churn alarm already says so."""
    found = []
    for r in records:
        if r.whole_graph_fallback:
            fix = ("see the compile_cache finding" if "CacheError" in r.whole_graph_fallback else
                   "TENSORSMITH_STRICT=1 raises the error: report it with tensorsmith.explain's "
                   "output")
            found.append(Finding("fallback", f"graph {r.graph_id} runs whole through ATen: "
                                 f"{r.whole_graph_fallback[:200]}",
                                 _graph_share(r.graph_id, stats, timing), fix))
    if not churn_alarm:
        found += _uncompiled_shapes(records, stats, timing)
    for (target, source, reason), count in compatibility.fallback_summary(records).most_common(5):
        found.append(Finding("fallback", f"{target} at {source or '<unknown source>'} runs through "
                             f"ATen ({reason})", f"in {count} graph(s); not fused with its "
                             "neighbours (its inputs and outputs go through memory)",
                             "rewrite the line with supported ops, or report the op", "note"))
    return found


def outside_graphs(timing: Timing) -> list[Finding]:
    """Steps whose time goes mostly to work outside compiled graphs: data, Python, eager ops."""
    if timing.calls == 0:
        return [Finding("outside_graphs", "no tensorsmith-compiled graph ran during the run",
                        "the step runs eagerly (or under another backend)",
                        "model = torch.compile(model, backend='tensorsmith'), and call that in "
                        "the step")]
    outside_ms, step_ms = timing.per_step_ms(timing.outside_s), timing.per_step_ms(timing.wall_s)
    if outside_ms < OUTSIDE_MS or outside_ms < OUTSIDE_SHARE * step_ms:
        return []
    data_ms = timing.per_step_ms(timing.data_s)
    loading = data_ms >= 0.5 * outside_ms
    what = ("the step waits for its data (DataLoader)" if loading else
            "host-bound step: much of it is host work outside compiled graphs")
    effect = (f"{_ms(outside_ms)} ms ({outside_ms / step_ms * 100:.0f}%) of each step outside "
              f"compiled graphs (a step: {_ms(step_ms)} ms"
              + (f"; {_ms(data_ms)} ms of it in DataLoader" if data_ms >= 0.1 else "") + ")"
              + (", waiting for the GPU (.item(), .cpu()) included" if timing.device_unseen else ""))
    fix = ("DataLoader(num_workers=N, pin_memory=True, persistent_workers=True): batches ready "
           "before the step asks" if loading else
           "load data in DataLoader workers, drop per-step host work (.item(), .cpu(), print), "
           "and compile the rest of the step")
    return [Finding("outside_graphs", what, effect, fix,
                    "note" if timing.device_unseen and not loading else "warning")]


def alarms(raised: list) -> list[Finding]:
    return [Finding(f"alarm:{a.kind}", a.what, a.effect, a.fix) for a in raised]


def _convolutions(records: list) -> bool:
    return any(op.endswith("convolution") for r in records for op in r.native) or any(
        "convolution" in f.target for r in records for f in r.fallbacks)


def diagnose(watch, timing: Timing, stats: dict) -> list[Finding]:
    """Every finding of a watched run (`watch`: a finished RunWatch)."""
    raised = watch.alarms
    churn_alarm = any(a.kind == "shape_churn" for a in raised)
    on_cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    return (alarms(raised) + graph_breaks(watch.dynamo.graph_breaks(), timing)
            + recompiles(watch.dynamo.compiles(), timing)
            + fallbacks(watch.records, stats, timing, churn_alarm) + outside_graphs(timing)
            + environment.cudnn_benchmark(on_cuda and _convolutions(watch.records)))
