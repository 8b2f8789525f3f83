"""Vectorized 64-bit hashing helpers shared by the exact and near-duplicate checks."""
from __future__ import annotations

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise on uint64 (a bijection that spreads every input bit)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def combine(h: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Hash of the pair (h, value), both uint64 arrays."""
    return mix64(h * GOLDEN + value.astype(np.uint64, copy=False))


def ragged_indices(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The flat indices of the ragged slices [starts[i], starts[i] + lengths[i]), concatenated."""
    lengths = lengths.astype(np.int64, copy=False)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = starts.astype(np.int64) - (np.cumsum(lengths) - lengths)
    return np.repeat(shift, lengths) + np.arange(total, dtype=np.int64)


def offsets_of(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def first_matches(train: np.ndarray, eval_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each eval value that occurs in `train`: (eval index, lowest train index with that
    value), by eval index. One sort of both arrays together (faster than searching the one in the other)."""
    n_train = len(train)
    joint = np.concatenate([train, eval_])
    order = np.argsort(joint)
    ordered = joint[order]
    run_start = np.ones(len(ordered), dtype=bool)
    run_start[1:] = ordered[1:] != ordered[:-1]
    if not len(ordered) or not n_train:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    run = np.cumsum(run_start) - 1
    # each run of equal values: its lowest train index (n_train when it has none)
    first_train = np.minimum.reduceat(np.where(order < n_train, order, n_train), np.flatnonzero(run_start))
    match = first_train[run]
    hit = (order >= n_train) & (match < n_train)
    e, t = order[hit] - n_train, match[hit]
    by_eval = np.argsort(e)
    return e[by_eval], t[by_eval]


def repeats(values: np.ndarray) -> int:
    """How many values equal an earlier one."""
    ordered = np.sort(values)
    return int((ordered[1:] == ordered[:-1]).sum())


def first_matches_truncated(train: np.ndarray, eval_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`first_matches` on the values' high bits: each value's low bits are replaced by its position,
    so one plain sort of uint64 (several times faster than an argsort) orders by (value, position)
    and a run's first member is its lowest train index. Values that differ only in the dropped
    bits (log2(len(train) + len(eval_)) of them) may match: for callers that verify matches."""
    n_train, total = len(train), len(train) + len(eval_)
    if not n_train or total == n_train:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    shift = np.uint64(int(total - 1).bit_length())
    packed = np.concatenate([train, eval_]) >> shift << shift
    packed |= np.arange(total, dtype=np.uint64)
    packed.sort()
    position = (packed & ((np.uint64(1) << shift) - np.uint64(1))).astype(np.int64)
    value = packed >> shift
    run_start = np.ones(total, dtype=bool)
    run_start[1:] = value[1:] != value[:-1]
    first = position[np.flatnonzero(run_start)][np.cumsum(run_start) - 1]
    hit = (position >= n_train) & (first < n_train)
    return position[hit] - n_train, first[hit]
