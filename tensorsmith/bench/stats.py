"""Medians and percentile-bootstrap confidence intervals of ratios of medians.

Medians, because step times have a long right tail (a page fault, a busy neighbour); a bootstrap,
because the median of a skewed distribution has no simple standard error. Samples taken in the same
interleaved rounds (eager and a compiled backend in one run) are resampled *paired*, so a slow
spell that hit both rounds cancels; samples from different runs are resampled independently.
A seeded generator makes every interval reproducible from the stored samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 4000
MIN_SAMPLES = 3  # below this no interval is given, and nothing is ever flagged on it


@dataclass(frozen=True)
class Ratio:
    value: float
    low: float | None  # None: too few samples for an interval
    high: float | None

    def wholly_above(self, limit: float) -> bool:
        return self.low is not None and self.low > limit

    def wholly_below(self, limit: float) -> bool:
        return self.high is not None and self.high < limit

    def to_dict(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high}

    def __str__(self) -> str:
        if self.low is None:
            return f"{self.value:.3g}"
        return f"{self.value:.3g} [{self.low:.3g}, {self.high:.3g}]"


def median(samples) -> float:
    return float(np.median(np.asarray(samples, dtype=float)))


def _resampled_medians(paired: list, rng: np.random.Generator, resamples: int) -> list[np.ndarray]:
    """Bootstrap medians of arrays measured in the same rounds: one index draw serves them all."""
    n = len(paired[0])
    if any(len(a) != n for a in paired):
        raise ValueError("paired samples must have equal lengths")
    idx = rng.integers(0, n, size=(resamples, n))
    return [np.median(np.asarray(a, dtype=float)[idx], axis=1) for a in paired]


def _interval(value: float, boot: np.ndarray, confidence: float) -> Ratio:
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail])
    return Ratio(float(value), float(low), float(high))


def _enough(*arrays) -> bool:
    return all(len(a) >= MIN_SAMPLES for a in arrays)


def speedup(baseline, candidate, *, confidence=CONFIDENCE, resamples=RESAMPLES, seed=0) -> Ratio:
    """median(baseline) / median(candidate) for samples taken in the same interleaved rounds
    (paired); above 1 means the candidate is faster."""
    value = median(baseline) / median(candidate)
    if not _enough(baseline, candidate):
        return Ratio(value, None, None)
    b, c = _resampled_medians([baseline, candidate], np.random.default_rng(seed), resamples)
    return _interval(value, b / c, confidence)


def change(new, old, new_reference=None, old_reference=None, *, confidence=CONFIDENCE,
           resamples=RESAMPLES, seed=0) -> Ratio:
    """new / old of the median step time; above 1 means slower. With references (each run's eager
    samples from the same rounds) the ratio is of times relative to the reference, which cancels a
    machine that is faster or busier as a whole: (new/new_ref) / (old/old_ref)."""
    relative = new_reference is not None and old_reference is not None
    if relative:
        value = (median(new) / median(new_reference)) / (median(old) / median(old_reference))
    else:
        value = median(new) / median(old)
    arrays = [new, old] + ([new_reference, old_reference] if relative else [])
    if not _enough(*arrays):
        return Ratio(value, None, None)
    rng = np.random.default_rng(seed)
    if relative:
        n, nr = _resampled_medians([new, new_reference], rng, resamples)
        o, orf = _resampled_medians([old, old_reference], rng, resamples)
        boot = (n / nr) / (o / orf)
    else:
        (n,), (o,) = _resampled_medians([new], rng, resamples), _resampled_medians([old], rng, resamples)
        boot = n / o
    return _interval(value, boot, confidence)
