"""What counts as a failure: the limits a report is judged by, and the exit code it gives."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Thresholds:
    max_exact: float = 0.0  # fraction of eval samples with an exact copy in train
    max_near: float = 0.01  # fraction of eval samples with a near-duplicate in train (not exact)
    near_jaccard: float = 0.5  # Jaccard similarity of word-bigram sets that makes a near-duplicate
    image_distance: int = 4  # perceptual-hash bits (of 64) within which images are near-duplicates
    leak_score: float = 0.99  # accuracy (or R^2) of a one-feature model that means a leak
    max_empty: float = 0.0  # fraction of a split's samples that may be empty
    fail_on_nan: bool = True  # NaN or Inf values fail (else they warn)
    fail_on_constant: bool = False  # constant columns fail (else they warn)

    def fraction_status(self, fraction: float, limit: float) -> str:
        return "fail" if fraction > limit else ("warn" if fraction > 0 else "pass")


EXIT_PASSED, EXIT_FAILED = 0, 1
