"""`tensorsmith.doctor()` and `tensorsmith doctor`: why compiled is not faster. Checks the setup
around the compiler (versions, threads, TF32, the compile cache, the GPU) and, given a step or a
script, one short watched run of it (graph breaks, recompiles, fallbacks, time outside compiled
graphs, the monitor's alarms). Each finding says what, what it costs and the fix."""
from __future__ import annotations

from .environment import check_environment, context
from .findings import Finding, Report
from .run import run_check, run_script


def doctor(step=None, steps: int = 20) -> Report:
    """The environment's findings and, given a zero-argument `step` that calls compiled models,
    those of `steps` timed runs of it (after a few warm-up runs)."""
    report = Report(environment=check_environment(), context=context())
    if step is not None:
        run = run_check(step, steps)
        report.run, report.run_summary = run.run, run.run_summary
    return report


__all__ = ["Finding", "Report", "doctor", "run_check", "run_script"]
