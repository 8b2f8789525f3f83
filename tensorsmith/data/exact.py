"""Exact duplicates: a 64-bit hash per sample over the key columns, matched across splits through
a sort, then confirmed by comparing the samples themselves (a hash collision is never reported).

Text hashes with Python's string hash, token sequences by their bytes, arrays by a vectorized
polynomial hash of each row's 64-bit words.
"""
from __future__ import annotations

import numpy as np

from .hashing import combine, first_matches, mix64, repeats
from .inputs import Column

_CHUNK = 65_536


def sample_hashes(columns: list[Column]) -> np.ndarray:
    """uint64 [N]: one hash per sample over all `columns`."""
    h = None
    for column in columns:
        part = _column_hashes(column)
        h = part if h is None else combine(h, part)
    return h


def _column_hashes(column: Column) -> np.ndarray:
    if column.kind == "text":
        return np.fromiter(map(hash, column.values), dtype=np.int64, count=len(column)).view(np.uint64)
    if column.kind == "tokens":
        return np.fromiter((hash(v.tobytes()) for v in column.values), dtype=np.int64,
                           count=len(column)).view(np.uint64)
    return _row_hashes(np.asarray(column.values))


def _row_hashes(values: np.ndarray) -> np.ndarray:
    rows = values.reshape(len(values), -1)
    if rows.dtype.kind == "f":
        rows = rows + 0.0  # -0.0 and 0.0 are one value
    width = rows.shape[1] * rows.dtype.itemsize
    words = -(-width // 8)
    coefficients = mix64(np.arange(1, words + 1, dtype=np.uint64)) | np.uint64(1)
    out = np.empty(len(rows), dtype=np.uint64)
    for lo in range(0, len(rows), _CHUNK):
        chunk = np.ascontiguousarray(rows[lo:lo + _CHUNK]).view(np.uint8).reshape(-1, width)
        if width % 8:
            chunk = np.pad(chunk, ((0, 0), (0, words * 8 - width)))
        chunk = np.ascontiguousarray(chunk).view(np.uint64)
        out[lo:lo + _CHUNK] = mix64((chunk * coefficients).sum(axis=1, dtype=np.uint64) + np.uint64(width))
    return out


def same_sample(a: list[Column], i: int, b: list[Column], j: int) -> bool:
    for ca, cb in zip(a, b):
        x, y = ca.values[i], cb.values[j]
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
        elif not np.array_equal(np.asarray(x), np.asarray(y), equal_nan=np.asarray(x).dtype.kind == "f"):
            return False
    return True


def exact_duplicates(train: list[Column], eval_: list[Column], train_hashes: np.ndarray,
                     eval_hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eval samples identical to a train sample over the key columns: (eval index, train index)."""
    e, t = first_matches(train_hashes, eval_hashes)
    same = np.array([same_sample(eval_, i, train, j) for i, j in zip(e.tolist(), t.tolist())], dtype=bool)
    return e[same] if len(e) else e, t[same] if len(t) else t


def duplicates_within(hashes: np.ndarray) -> int:
    """Samples whose hash an earlier sample of the same split has (not confirmed: a statistic)."""
    return repeats(hashes)
