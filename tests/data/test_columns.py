"""Label leakage, NaN/Inf/constant columns and empty samples."""
from __future__ import annotations

import numpy as np

from tensorsmith import data


def _table(rng, n, classes=3):
    label = rng.integers(0, classes, n)
    features = rng.normal(size=(n, 4))
    features[:, 1] += 0.5 * label  # informative but not a leak
    return {"x": features, "label": label}


def test_clean_table_passes_leakage():
    rng = np.random.default_rng()
    report = data.check(_table(rng, 3000), _table(rng, 1000))
    assert report.passed, str(report)
    assert report.label == "label"
    assert [f.status for f in report.by_check("leakage")] == ["pass"]


def test_a_column_equal_to_the_label_and_one_predicting_it_are_leaks():
    rng = np.random.default_rng()
    train, eval_ = _table(rng, 3000), _table(rng, 1000)
    for split in (train, eval_):
        split["copy"] = split["label"].copy()
        split["x"][:, 2] = 10 * split["label"] + rng.normal(size=len(split["label"])) * 0.1
        split["name"] = [("cat", "dog", "eel")[y] for y in split["label"]]  # a text leak
    report = data.check(train, eval_)
    leaks = {f.column: f for f in report.by_check("leakage")}
    assert set(leaks) == {"copy", "x[2]", "name"}, str(report)
    assert "equals" in leaks["copy"].message and "predicts" in leaks["x[2]"].message
    assert all(f.status == "fail" for f in leaks.values()) and report.exit_code == 1


def test_regression_label_leak():
    rng = np.random.default_rng()
    make = lambda n: {"x": rng.normal(size=(n, 2)), "target": rng.normal(size=n)}
    train, eval_ = make(3000), make(1000)
    for split in (train, eval_):
        split["x"][:, 0] = 3 * split["target"] - 1
    leaks = data.check(train, eval_).by_check("leakage")
    assert [f.column for f in leaks] == ["x[0]"] and leaks[0].status == "fail"


def test_nan_inf_constant_columns_and_empty_samples():
    rng = np.random.default_rng()
    n = 500
    train = {"x": rng.normal(size=(n, 4)), "text": [f"sample {i} {rng.random()}" for i in range(n)]}
    eval_ = {"x": rng.normal(size=(200, 4)), "text": [f"other {i} {rng.random()}" for i in range(200)]}
    train["x"][[3, 7], 0] = np.nan
    train["x"][11, 1] = np.inf
    train["x"][:, 3] = 2.5
    eval_["text"][5] = ""
    eval_["text"][9] = "   "
    report = data.check(train, eval_, key="text")
    by = {(f.check, f.split, f.column): f for f in report.findings}
    assert by[("nan", "train", "x[0]")].count == 2 and by[("nan", "train", "x[0]")].status == "fail"
    assert by[("nan", "train", "x[0]")].examples == [{"sample": 3}, {"sample": 7}]
    assert by[("inf", "train", "x[1]")].count == 1
    assert by[("constant", "train", "x[3]")].status == "warn"
    empty = by[("empty", "eval", "text")]
    assert empty.count == 2 and empty.status == "fail"
    assert ("nan", "eval", "x[0]") not in by
    relaxed = data.check(train, eval_, key="text", thresholds=data.Thresholds(
        max_empty=0.05, fail_on_nan=False))
    assert relaxed.passed, str(relaxed)
    strict = data.check(train, eval_, key="text", thresholds=data.Thresholds(
        max_empty=0.05, fail_on_nan=False, fail_on_constant=True))
    assert [f.check for f in strict.failures()] == ["constant"]
