"""Where the host's time goes in a few steps (bench/gpu.py and bench/distributed.py --host).

When a step is host-bound (graphs not replayed as CUDA graphs, per-block graphs under FSDP2), the
GPU timeline says only that the GPU waited. This runs a few steps under cProfile and prints the
functions that spent the most host time themselves, and tensorsmith's own functions by their
cumulative time, so the launch path's cost per call can be read off.
"""
from __future__ import annotations

import cProfile
import pstats

import torch

STEPS = 3


def _where(func: tuple) -> str:
    path, line, name = func
    short = "/".join(path.split("/")[-2:]) if "/" in path else path
    return f"{short}:{line} {name}" if line else name


def host_rows(stats: pstats.Stats, key: str, top: int, own_only: bool = False) -> list[tuple]:
    """(calls, tottime s, cumtime s, where) of the `top` functions by `key` ('tottime'/'cumtime')."""
    rows = []
    for func, (_, calls, tottime, cumtime, _) in stats.stats.items():
        if own_only and "tensorsmith" not in func[0]:
            continue
        rows.append((calls, tottime, cumtime, _where(func)))
    rows.sort(key=lambda r: r[1] if key == "tottime" else r[2], reverse=True)
    return rows[:top]


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def print_host_profile(step, label: str, top: int = 25) -> None:
    """Profile STEPS calls of `step` on the host; print the heaviest functions per step."""
    step()
    _sync()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(STEPS):
        step()
    _sync()
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"\n-- host profile, {label}: ms per step (cProfile slows the host; compare shares) --")
    for title, key, own in (("own time", "tottime", False), ("tensorsmith, cumulative", "cumtime", True)):
        print(f"{title}:\n| calls/step | own ms | cumulative ms | function |\n|---:|---:|---:|---|")
        for calls, tottime, cumtime, where in host_rows(stats, key, top, own):
            print(f"| {calls / STEPS:.0f} | {tottime * 1e3 / STEPS:.2f} | {cumtime * 1e3 / STEPS:.2f} | {where} |")
