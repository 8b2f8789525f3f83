"""Label leakage: a feature column that equals the label, or from which the label can be read off.

Each feature (every dimension of a numeric column, and text or token columns as categories) gets
the simplest model there is, fitted on train and scored on eval: one value per bin of the feature
(up to 256 quantile bins of train, 10 rows each at least, for a continuous feature, each distinct value for a discrete one) — the
majority class for a classification label, the mean for a regression label. A feature whose model
reaches `threshold` accuracy (or R^2) on eval, clearly above always guessing the majority class,
leaks the label. A label with at most 50 distinct values, or of integer, bool or string type, is a
classification label. At most `max_rows` rows of each split are used (a fixed random subset).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .inputs import Column

_BINS = 256  # at most; a bin that straddles two classes costs about 1/_BINS of accuracy
_MAX_CLASSES = 50


@dataclass
class Leak:
    column: str
    how: str  # "equals" or "predicts"
    score: float  # eval accuracy (classification) or R^2 (regression) of the one-feature model
    baseline: float  # eval accuracy of always guessing train's majority class (0 for regression)


def find_leaks(train: dict[str, Column], eval_: dict[str, Column], label: str, threshold: float = 0.99,
               max_rows: int = 200_000, max_features: int = 1024) -> list[Leak]:
    rows_t, rows_e = _subset(len(train[label]), max_rows), _subset(len(eval_[label]), max_rows)
    y_t, y_e, classes = _encode_label(train[label], eval_[label], rows_t, rows_e)
    raw_label = _raw(eval_[label], rows_e)
    # A feature may equal a nearly constant label by accident (both mostly 0): not a leak.
    varies = classes is None or np.bincount(y_e, minlength=classes).max(initial=0) < threshold * len(y_e)
    leaks = []
    for name, column in train.items():
        if name == label or column.kind == "image" or name not in eval_:
            continue
        for feature, f_t, f_e in _features(column, eval_[name], rows_t, rows_e, max_features):
            if varies and _equals(_raw_feature(eval_[name], feature, rows_e), raw_label, threshold):
                leaks.append(Leak(feature, "equals", 1.0, 0.0))
                continue
            leak = _score(feature, f_t, f_e, y_t, y_e, classes, threshold)
            if leak:
                leaks.append(leak)
    return leaks


def _subset(n: int, max_rows: int) -> np.ndarray:
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, max_rows, replace=False))


def _codes(a: list, b: list) -> tuple[np.ndarray, np.ndarray]:
    """Category codes of two lists of hashable values over their joint vocabulary."""
    vocabulary: dict = {}
    code = vocabulary.setdefault
    ca = np.fromiter((code(v, len(vocabulary)) for v in a), dtype=np.int64, count=len(a))
    cb = np.fromiter((code(v, len(vocabulary)) for v in b), dtype=np.int64, count=len(b))
    return ca, cb


def _encode_label(train: Column, eval_: Column, rows_t, rows_e):
    """(train labels, eval labels, number of classes or None for a regression label)."""
    if train.kind in ("text", "tokens"):
        t, e = _codes(_hashable(train, rows_t), _hashable(eval_, rows_e))
        return t, e, int(max(t.max(initial=0), e.max(initial=0))) + 1
    t = np.asarray(train.values)[rows_t].reshape(len(rows_t), -1)[:, 0]
    e = np.asarray(eval_.values)[rows_e].reshape(len(rows_e), -1)[:, 0]
    if t.dtype.kind in "biu" or len(np.unique(t)) <= _MAX_CLASSES:
        ct, ce = _codes(t.tolist(), e.tolist())
        return ct, ce, int(max(ct.max(initial=0), ce.max(initial=0))) + 1
    return t.astype(np.float64), e.astype(np.float64), None


def _raw(column: Column, rows):
    if column.kind in ("text", "tokens"):
        return _hashable(column, rows)
    return np.asarray(column.values)[rows].reshape(len(rows), -1)[:, 0]


def _raw_feature(column: Column, feature: str, rows):
    if column.kind in ("text", "tokens") or np.asarray(column.values).ndim == 1:
        return _raw(column, rows)
    f = int(feature.rsplit("[", 1)[1][:-1])
    return np.asarray(column.values)[rows].reshape(len(rows), -1)[:, f]


def _hashable(column: Column, rows) -> list:
    if column.kind == "tokens":
        return [column.values[i].tobytes() for i in rows]
    return [column.values[i] for i in rows]


def _features(train: Column, eval_: Column, rows_t, rows_e, max_features):
    """(feature name, train values, eval values) for each feature of a column."""
    if train.kind in ("text", "tokens"):
        t, e = _codes(_hashable(train, rows_t), _hashable(eval_, rows_e))
        yield train.name, t, e
        return
    t = np.asarray(train.values)[rows_t]
    e = np.asarray(eval_.values)[rows_e]
    if t.ndim == 1:
        yield train.name, t, e
        return
    t, e = t.reshape(len(t), -1), e.reshape(len(e), -1)
    for f in range(min(t.shape[1], max_features)):
        yield f"{train.name}[{f}]", t[:, f], e[:, f]


def _bins(f_t: np.ndarray, f_e: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    if f_t.dtype.kind == "f":
        finite = f_t[np.isfinite(f_t)]
        bins = max(2, min(_BINS, len(finite) // 10))
        if len(np.unique(finite[:10_000])) > bins:
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
            b_t, b_e = np.searchsorted(edges, f_t), np.searchsorted(edges, f_e)
            width = len(edges) + 2  # the last bin holds NaN
            return np.where(np.isnan(f_t), width - 1, b_t), np.where(np.isnan(f_e), width - 1, b_e), width
    t, e = _codes(f_t.tolist(), f_e.tolist())
    return t, e, int(max(t.max(initial=0), e.max(initial=0))) + 1


def _score(name, f_t, f_e, y_t, y_e, classes, threshold) -> Leak | None:
    if len(y_t) == 0 or len(y_e) == 0:
        return None
    b_t, b_e, width = _bins(f_t, f_e)
    if classes is None:  # regression: the mean per bin
        sums = np.bincount(b_t, weights=y_t, minlength=width)
        counts = np.bincount(b_t, minlength=width)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), y_t.mean())
        total = ((y_e - y_e.mean()) ** 2).sum()
        r2 = 1.0 - ((y_e - means[b_e]) ** 2).sum() / total if total > 0 else 0.0
        return Leak(name, "predicts", float(r2), 0.0) if r2 >= threshold else None
    joint = np.bincount(b_t * classes + y_t, minlength=width * classes).reshape(width, classes)
    majority = int(np.bincount(y_t, minlength=classes).argmax())
    guess = np.where(joint.sum(axis=1) > 0, joint.argmax(axis=1), majority)
    accuracy = float((guess[b_e] == y_e).mean())
    baseline = float((y_e == majority).mean())
    if baseline >= threshold or accuracy < threshold or accuracy - baseline < (1 - baseline) / 2:
        return None
    return Leak(name, "predicts", accuracy, baseline)


def _equals(f_e, y_e, threshold: float) -> bool:
    """Whether a feature's raw eval values are the raw labels (in at least `threshold` of rows)."""
    if len(y_e) == 0:
        return False
    try:
        same = np.asarray(f_e, dtype=np.float64) == np.asarray(y_e, dtype=np.float64)
    except (TypeError, ValueError):
        same = np.fromiter((a == b for a, b in zip(f_e, y_e)), dtype=bool, count=len(y_e))
    return float(same.mean()) >= threshold
