"""Per-column checks within one split: NaN and Inf values, constant columns, empty samples.

A numeric column [N, F] is F feature columns, named `name[f]`; an image column is checked for
NaN/Inf as a whole. A sample is empty when it has no content: an empty or whitespace-only string,
a zero-length token sequence, an array sample with no elements, or a numeric row that is all NaN.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .inputs import Column


@dataclass
class ColumnIssue:
    check: str  # "nan", "inf", "constant" or "empty"
    column: str  # a column name, `name[f]` for one feature of a 2-D numeric column
    count: int  # offending values (nan/inf), samples (empty), or 0 (constant)
    examples: list  # sample indices, or the constant value


def check_columns(split: dict[str, Column]) -> list[ColumnIssue]:
    issues: list[ColumnIssue] = []
    for column in split.values():
        if column.kind in ("numeric", "image"):
            issues += _numeric(column)
        issues += _empty(column)
        if column.kind == "text" and len(column) > 1 and len(set(column.values)) == 1:
            issues.append(ColumnIssue("constant", column.name, 0, [column.values[0][:80]]))
    return issues


def _feature_names(column: Column, width: int) -> list[str]:
    return [column.name] if np.asarray(column.values).ndim == 1 else [f"{column.name}[{f}]" for f in range(width)]


def _numeric(column: Column) -> list[ColumnIssue]:
    values = np.asarray(column.values)
    if values.dtype.kind not in "fc" and column.kind == "image":
        return []
    issues = []
    if column.kind == "image":
        flat = values.reshape(len(values), -1)
        for check, test in (("nan", np.isnan), ("inf", np.isinf)):
            bad = np.zeros(len(values), dtype=np.int64)
            for lo in range(0, len(values), 4096):
                bad[lo:lo + 4096] = test(flat[lo:lo + 4096]).sum(axis=1)
            if bad.any():
                issues.append(ColumnIssue(check, column.name, int(bad.sum()), np.flatnonzero(bad)[:5].tolist()))
        return issues
    table = values.reshape(len(values), -1) if values.ndim != 1 else values[:, None]
    names = _feature_names(column, table.shape[1])
    if table.dtype.kind in "fc":
        for check, test in (("nan", np.isnan), ("inf", np.isinf)):
            bad = test(table)
            for f in np.flatnonzero(bad.any(axis=0)):
                issues.append(ColumnIssue(check, names[f], int(bad[:, f].sum()),
                                          np.flatnonzero(bad[:, f])[:5].tolist()))
    if len(table) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN features: reported as NaN
            finite = table.astype(np.float64) if table.dtype.kind in "fc" else table
            low = np.nanmin(finite, axis=0) if table.dtype.kind == "f" else finite.min(axis=0)
            high = np.nanmax(finite, axis=0) if table.dtype.kind == "f" else finite.max(axis=0)
        for f in np.flatnonzero(low == high):
            issues.append(ColumnIssue("constant", names[f], 0, [float(low[f])]))
    return issues


def _empty(column: Column) -> list[ColumnIssue]:
    if column.kind == "text":
        empty = np.fromiter((not v.strip() for v in column.values), dtype=bool, count=len(column))
    elif column.kind == "tokens":
        empty = np.fromiter((len(v) == 0 for v in column.values), dtype=bool, count=len(column))
    else:
        values = np.asarray(column.values)
        rows = values.reshape(len(values), -1)
        if rows.shape[1] == 0:
            empty = np.ones(len(values), dtype=bool)
        elif rows.dtype.kind == "f" and column.kind == "numeric" and rows.shape[1] > 1:
            empty = np.isnan(rows).all(axis=1)
        else:
            return []
    if not empty.any():
        return []
    return [ColumnIssue("empty", column.name, int(empty.sum()), np.flatnonzero(empty)[:5].tolist())]
