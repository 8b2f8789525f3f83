"""`python -m tensorsmith.bench.false_alarms [MODELS]`: the live alarms on healthy models.

Every zoo model at its tiny size on the CPU, a training step and an inference call, 65 steps each
(a warm-up window and two windows compared at the default `config.alarm_window` of 20) with the
alarms at their defaults, one thread. Prints the alarms each raised: a healthy zoo raises none.
"""
from __future__ import annotations

import sys
import time
import warnings

import torch

STEPS = 65


def sweep(names: list[str]) -> list[tuple[str, str, float, list[str]]]:
    """(model, mode, seconds, alarms raised or the error) per model and mode."""
    from tensorsmith import monitor
    from tensorsmith.bench import zoo
    from tensorsmith.bench.workload import make_step, optimizer_for, prepare

    rows = []
    for name in names:
        for mode in ("train", "infer"):
            torch._dynamo.reset()
            monitor.reset()
            began = time.perf_counter()
            try:
                work = zoo.build(name, "tiny", "cpu")
                model = prepare(work.model, mode)
                compiled = torch.compile(model, backend="tensorsmith")
                step = make_step(work, compiled, mode, optimizer_for(model) if mode == "train" else None)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    for _ in range(STEPS):
                        step()
                found = [f"{a.kind}: {a.what}" for a in monitor.ALARMS]
            except Exception as e:  # noqa: BLE001 (a model that fails is reported, the sweep goes on)
                found = [f"error {type(e).__name__}: {str(e)[:160]}"]
            rows.append((name, mode, time.perf_counter() - began, found))
            print(f"{name:18s} {mode:5s} {rows[-1][2]:6.1f} s  {'; '.join(found) or 'no alarm'}", flush=True)
    return rows


def main(argv=None) -> int:
    from tensorsmith.bench.torchvision_stubs import torchvision_without_ops
    torchvision_without_ops()
    from tensorsmith.bench import zoo

    args = sys.argv[1:] if argv is None else argv
    torch.set_num_threads(1)
    rows = sweep(args[0].split(",") if args else list(zoo.ZOO))
    raised = [r for r in rows if r[3]]
    print(f"{len(rows)} model runs, {len(raised)} with an alarm or an error")
    return 1 if raised else 0


if __name__ == "__main__":
    raise SystemExit(main())
