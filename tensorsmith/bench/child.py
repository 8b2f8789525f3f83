"""A measurement run in a fresh Python process that prints its result as a JSON line: how the bench
scripts keep apart what must not share a process (a crash, an out-of-memory error, Dynamo's state or
a compile cache would otherwise reach the next measurement)."""
from __future__ import annotations

import json
import signal
import subprocess


def run_json(command: list[str], *, env: dict | None = None, timeout: float | None = None) -> dict:
    """The last JSON object `command` prints, or {"error": why there is none}: a timeout, the
    signal that killed it, or its last line on stderr."""
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no result within {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and lines:
        return json.loads(lines[-1])
    if done.returncode < 0:
        return {"error": f"crashed ({signal.Signals(-done.returncode).name})"}
    return {"error": (done.stderr.strip().splitlines() or [f"no output (exit {done.returncode})"])[-1][:200]}
