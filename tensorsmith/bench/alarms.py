"""The cost of the live alarms (monitor/): the default benchmark model's training step compiled by
tensorsmith with `config.alarms` on and off, timed in interleaved rounds.

    python -m tensorsmith.bench.alarms [--rounds 30] [--batch 8] [--threads 1]

`config.alarms` is read when a graph compiles, so the two variants are two compiled copies of the
same model (same weights, same batch) in one process; each round runs one step of each, alternating
which goes first. Step times are this thread's CPU time (`time.thread_time`: other processes on a
shared machine do not count; with one thread it is all of the step's work) and wall time. Beside
the A/B ratio, which a shared machine's noise dominates, the per-call costs are measured directly
(a watched no-op against a bare one, many calls) and added up per step.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings

import torch

from .. import monitor
from ..errors import AlarmWarning
from ..records import GraphRecord
from .backends import tensorsmith_with
from .models.nanogpt import GPTConfig, NanoGPT
from .train_step import train_step


def _variant(model, idx, targets, alarms: bool):
    """A compiled copy of `model` whose graphs were compiled with config.alarms = `alarms`, and its
    training step (forward, backward, AdamW), run once."""
    model = copy.deepcopy(model)
    compiled = torch.compile(model, backend=tensorsmith_with(alarms=alarms))
    step = train_step(lambda: compiled(idx, targets), torch.optim.AdamW(model.parameters(), lr=1e-4))
    step()
    return step


def per_call_cost(kind: str, calls: int = 200_000) -> float:
    """Seconds a watched call of a `kind` graph costs more than a bare call (a no-op graph)."""
    def noop(*args):
        return args

    record = GraphRecord(f"bench_{kind}", kind)
    watched = monitor.watch(noop, record)
    best = {}
    for name, fn in (("bare", noop), ("watched", watched)) * 3:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best[name] = min(best.get(name, float("inf")), (time.perf_counter() - start) / calls)
    monitor.STATS.pop(record.graph_id, None)
    return best["watched"] - best["bare"]


def measure(rounds: int = 30, batch: int = 8) -> dict:
    torch.manual_seed(0)
    cfg = GPTConfig()
    model = NanoGPT(cfg)
    idx = torch.randint(0, cfg.vocab, (batch, cfg.seq))
    targets = torch.randint(0, cfg.vocab, (batch, cfg.seq))
    costs = {kind: per_call_cost(kind) for kind in ("forward", "backward")}
    monitor.reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps = {"alarms off": _variant(model, idx, targets, False),
                 "alarms on": _variant(model, idx, targets, True)}
        for step in steps.values():  # warm up
            step()
        cpu = {name: [] for name in steps}
        wall = {name: [] for name in steps}
        names = list(steps)
        for r in range(rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                start, start_wall = time.thread_time(), time.perf_counter()
                steps[name]()
                cpu[name].append(time.thread_time() - start)
                wall[name].append(time.perf_counter() - start_wall)
    calls = {g: s.calls for g, s in monitor.STATS.items()}  # the "on" copy's graphs only
    steps_run = rounds + 2
    per_step = sum(costs["forward" if g.endswith(("_forward", "_inference")) else "backward"] * n
                   for g, n in calls.items()) / steps_run
    off, on = statistics.median(cpu["alarms off"]), statistics.median(cpu["alarms on"])
    return {"rounds": rounds, "batch": batch, "threads": torch.get_num_threads(),
            "cpu_median_s": {n: statistics.median(t) for n, t in cpu.items()},
            "wall_median_s": {n: statistics.median(t) for n, t in wall.items()},
            "ratio": on / off,
            "ratio_of_rounds": statistics.median(b / a for a, b in zip(cpu["alarms off"], cpu["alarms on"])),
            "per_call_s": costs, "graph_calls_per_step": {g: n / steps_run for g, n in calls.items()},
            "computed_overhead": per_step / off,
            "alarms": [str(w.message) for w in caught if issubclass(w.category, AlarmWarning)]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tensorsmith.bench.alarms",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    r = measure(args.rounds, args.batch)
    print(f"nanoGPT (GPTConfig defaults), batch {r['batch']}, training step, {r['threads']} thread(s), "
          f"{r['rounds']} interleaved rounds:")
    for name in r["cpu_median_s"]:
        print(f"  {name:<11} median {r['cpu_median_s'][name] * 1e3:8.2f} ms thread CPU time, "
              f"{r['wall_median_s'][name] * 1e3:8.2f} ms wall")
    print(f"  on/off: {r['ratio']:.4f} (ratio of medians), {r['ratio_of_rounds']:.4f} (median of "
          f"per-round ratios)")
    calls = ", ".join(f"{g} {n:.0f}" for g, n in r["graph_calls_per_step"].items())
    print(f"  measured per call: forward/inference (timing, step hook, memory sample) "
          f"{r['per_call_s']['forward'] * 1e6:.2f} us, backward (timing) "
          f"{r['per_call_s']['backward'] * 1e6:.2f} us; calls a step: {calls}")
    print(f"  computed overhead: {r['computed_overhead'] * 100:.4f}% of a step")
    print(f"  alarms raised: {len(r['alarms'])}")
    for line in r["alarms"][:5]:
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
