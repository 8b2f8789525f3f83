"""The orientation choice of matrix products (runtime/matmul_orientation.py), on the CPU with a
stand-in clock: the faster orientation by the margin, once per signature, and the same product."""
from __future__ import annotations

import pytest
import torch

from tensorsmith.runtime import matmul_orientation as mo


@pytest.fixture
def clock(monkeypatch):
    """A fake clock: times[fn name] in ms; calls counts the timings taken."""
    state = {"times": {"_straight": 1.0, "_transposed": 0.5}, "calls": 0}

    def fake_time(fn, a, b):
        state["calls"] += 1
        fn(a, b)
        return state["times"][fn.__name__]

    monkeypatch.setattr(mo, "_time", fake_time)
    monkeypatch.setattr(mo, "_eligible", lambda a, b: a.dim() == 2 and b.dim() == 2)
    monkeypatch.setattr(mo, "_CHOICE", {})
    return state


def _operands():
    dy, h = torch.randn(64, 12), torch.randn(64, 20)  # a weight gradient: dY^T @ h
    return dy.t(), h


def test_the_faster_orientation_is_taken_and_gives_the_same_row_major_product(clock):
    a, b = _operands()
    got = mo.matmul(a, b)
    assert got.is_contiguous() and got.shape == (12, 20)
    torch.testing.assert_close(got.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-5)
    assert list(mo._CHOICE.values()) == [True]
    for _ in range(3):  # remembered: timed once per signature
        torch.testing.assert_close(mo.matmul(a, b), got)
    assert clock["calls"] == 2


def test_the_transposed_one_must_win_by_the_margin(clock):
    clock["times"]["_transposed"] = 0.97  # within timing noise of 1.0
    a, b = _operands()
    mo.matmul(a, b)
    assert list(mo._CHOICE.values()) == [False]


def test_each_layout_is_its_own_signature(clock):
    a, b = _operands()
    mo.matmul(a, b)
    mo.matmul(a.contiguous(), b)  # same shapes, other strides
    assert len(mo._CHOICE) == 2 and clock["calls"] == 4


def test_cpu_and_batched_products_are_left_as_written(monkeypatch):
    monkeypatch.setattr(mo, "_CHOICE", {})
    a, b = torch.randn(3, 4, 5), torch.randn(3, 5, 2)
    torch.testing.assert_close(mo.matmul(a, b), a @ b)
    torch.testing.assert_close(mo.matmul(a[0], b[0]), a[0] @ b[0])
    assert not mo._CHOICE
