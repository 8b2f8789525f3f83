"""Synthetic step times and result rows for the statistics and gate tests: lognormal noise with
occasional slow outliers, like step times on a shared machine."""
from __future__ import annotations

import numpy as np

from tensorsmith.bench.results import Row


def timings(rng: np.random.Generator, n: int, base: float = 0.1, slowdown: float = 1.0,
            sigma: float = 0.05) -> np.ndarray:
    x = base * slowdown * rng.lognormal(0.0, sigma, n)
    spikes = rng.random(n) < 0.05
    x[spikes] *= rng.uniform(1.2, 2.0, spikes.sum())
    return x


def rows(rng, n=30, slowdown=1.0, eager_slowdown=1.0, model="nanogpt", mode="train",
         backend="tensorsmith", peak=500 * 2**20) -> list[Row]:
    """An eager row and a compiled row measured in the same interleaved rounds: a slow spell of
    the machine (a shared factor per round) hits both, each also has noise of its own."""
    shared = rng.lognormal(0.0, 0.04, n)
    eager = Row(model, mode, "eager",
                samples_s=list(shared * timings(rng, n, 0.10, eager_slowdown, sigma=0.03)),
                memory={"peak_bytes": 400 * 2**20, "kind": "rss"})
    other = Row(model, mode, backend,
                samples_s=list(shared * timings(rng, n, 0.15, slowdown * eager_slowdown, sigma=0.03)),
                memory={"peak_bytes": peak, "kind": "rss"},
                accuracy={"max_rel_error": 1e-7, "tolerance": 1e-4, "passed": True})
    for r in (eager, other):
        r.samples_s = [float(x) for x in r.samples_s]
        r.median_s = float(np.median(r.samples_s))
    return [eager, other]
