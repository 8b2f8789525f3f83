"""The cost of numeric guards: the default benchmark model's training step compiled by tensorsmith
with `check_numerics` off and on, timed in interleaved rounds.

    python -m tensorsmith.bench.numerics [--rounds 30] [--batch 8] [--threads 1]

Both variants are the same model (same weights, same batch), compiled in one process; each round
runs one step of each, alternating which goes first, and times it with `time.thread_time` (CPU
time of this thread: other processes on a shared machine do not count). Prints the medians and the
overhead (the median of the per-round ratios, with the ratio of the medians beside it).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings

import torch

from .backends import tensorsmith_with
from .models.nanogpt import GPTConfig, NanoGPT
from .train_step import train_step


def _variant(model, idx, targets, mode: str, train: bool = True):
    """A compiled copy of `model` whose graphs were compiled with check_numerics=`mode`, and its
    step: a training step (forward, backward, AdamW) or, with `train` False, a no_grad forward."""
    model = copy.deepcopy(model)
    compiled = torch.compile(model, backend=tensorsmith_with(check_numerics=mode))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    if train:
        step = train_step(lambda: compiled(idx, targets), optimizer)
    else:
        def step():
            with torch.no_grad():
                return compiled(idx).sum()
    return step, float(step())


def measure(rounds: int = 30, batch: int = 8, mode: str = "warn", train: bool = True) -> dict:
    torch.manual_seed(0)
    cfg = GPTConfig()
    model = NanoGPT(cfg)
    idx = torch.randint(0, cfg.vocab, (batch, cfg.seq))
    targets = torch.randint(0, cfg.vocab, (batch, cfg.seq))
    steps = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, m in (("tensorsmith", "off"), ("tensorsmith+checks", mode)):
            steps[name], _ = _variant(model, idx, targets, m, train)
        for step in steps.values():  # warm up
            step()
        times = {name: [] for name in steps}
        names = list(steps)
        for r in range(rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                start = time.thread_time()
                steps[name]()
                times[name].append(time.thread_time() - start)
    base, checked = times["tensorsmith"], times["tensorsmith+checks"]
    ratios = [c / b for b, c in zip(base, checked)]
    return {"rounds": rounds, "batch": batch, "step": "training" if train else "no_grad forward", "threads": torch.get_num_threads(),
            "median_s": {name: statistics.median(t) for name, t in times.items()},
            "overhead": statistics.median(ratios) - 1,
            "overhead_of_medians": statistics.median(checked) / statistics.median(base) - 1,
            "incidents": [str(w.message) for w in caught if "tensorsmith" in str(w.message)]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tensorsmith.bench.numerics", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mode", choices=("warn", "raise"), default="warn")
    p.add_argument("--infer", action="store_true", help="time a no_grad forward instead of a training step")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = measure(args.rounds, args.batch, args.mode, train=not args.infer)
    m = result["median_s"]
    print(f"nanoGPT (GPTConfig defaults), batch {result['batch']}, {result['step']} step, "
          f"{result['threads']} thread(s), {result['rounds']} interleaved rounds, thread CPU time:")
    for name, seconds in m.items():
        print(f"  {name:<20} median {seconds * 1e3:8.1f} ms")
    print(f"  check_numerics={args.mode!r} overhead: {result['overhead'] * 100:+.1f}% "
          f"(median of per-round ratios; ratio of medians {result['overhead_of_medians'] * 100:+.1f}%)")
    print(f"  incidents reported: {len(result['incidents'])}")
    for line in result["incidents"][:5]:
        print(f"    {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
