"""bench/largest_batch.py: a training step's peak measured in its own run, the linear fit of peak
against batch, and the predicted batch stepped down until it fits."""
from __future__ import annotations

import argparse

import pytest

from tensorsmith.bench import largest_batch


def _args(**overrides):
    return argparse.Namespace(**{"batch": 4, "budget": "0.85", "device": "cpu", "run_timeout": 60.0, **overrides})


def test_the_prediction_is_verified_and_stepped_down(monkeypatch):
    """Peaks of 100 MB + 10 MB a sample, a 1 GB capacity: 90 predicted; a pretend allocator that
    also needs 5% more above 80 samples makes 90 fail and 81 (a tenth less) fit."""
    runs = []

    def measure(args, name, backend, batch):
        runs.append(batch)
        return {"peak": 100e6 + 10e6 * batch * (1.05 if batch > 80 else 1.0), "step_ms": 1.0}
    monkeypatch.setattr(largest_batch, "_measure", measure)
    row = largest_batch.largest(_args(), "tiny", "eager", capacity=10**9)
    assert row["predicted"] == 90 and row["largest"] == 81
    assert runs == [4, 8, 90, 81]


def test_a_base_batch_that_does_not_fit_is_an_error_row(monkeypatch):
    monkeypatch.setattr(largest_batch, "_measure", lambda *a: {"error": "out of memory"})
    assert largest_batch.largest(_args(), "tiny", "eager", capacity=10**9)["error"] == "out of memory"


def test_one_run_trains_and_reports_its_peak():
    pytest.importorskip("torch")
    small = largest_batch._one_run("tiny", "tensorsmith", 2, "cpu")
    assert small["peak"] > 0 and small["step_ms"] > 0
