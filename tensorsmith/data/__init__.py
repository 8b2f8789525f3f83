"""Data checks for a train/eval pair: exact and near-duplicate samples shared between the splits
(hashing; MinHash/LSH for text and token sequences; perceptual hashes for images), label leakage,
NaN/Inf/constant columns and empty samples.

    report = tensorsmith.data.check(train, eval)     # tensors, Datasets, arrays, tables or paths
    print(report); report.passed; report.to_json()

`tensorsmith data check TRAIN EVAL` is the same from the shell (exit 1 when a threshold is crossed).
"""
from .checker import check
from .inputs import Column, load
from .minhash import LshParams
from .report import Finding, Report
from .thresholds import Thresholds

__all__ = ["Column", "Finding", "LshParams", "Report", "Thresholds", "check", "load"]
