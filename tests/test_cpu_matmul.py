"""CPU matrix products through the library measured faster (runtime/cpu_matmul.py): both
libraries match a float64 reference, for matrices, batches of rows and nn.Linear's bias add."""
from __future__ import annotations

import time

import pytest
import torch

from tensorsmith.runtime import cpu_matmul

pytestmark = pytest.mark.skipif(not cpu_matmul.available(), reason="no oneDNN in this torch")


@pytest.fixture
def operands():
    g = torch.Generator().manual_seed(torch.seed() % (1 << 31))
    return (torch.randn(3, 40, 96, generator=g), torch.randn(96, 80, generator=g),
            torch.randn(80, generator=g))


@pytest.mark.parametrize("use_onednn", [True, False])
def test_products_match_float64_whichever_library_is_chosen(operands, use_onednn, monkeypatch):
    a, b, bias = operands
    monkeypatch.setattr(cpu_matmul, "_CHOICE", {})
    monkeypatch.setattr(cpu_matmul, "_ratio", lambda *operands: 0.5 if use_onednn else 2.0)
    rows = a.reshape(-1, 96)
    assert cpu_matmul.eligible(a, b)
    product = cpu_matmul.matmul(a, b)
    linear = cpu_matmul.addmm(bias, rows, b)
    torch.testing.assert_close(product.double(), a.double() @ b.double(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(linear.double(), bias.double() + rows.double() @ b.double(),
                               rtol=1e-5, atol=1e-4)
    assert set(cpu_matmul._CHOICE.values()) == {use_onednn}
    assert len(cpu_matmul._CHOICE) == 2  # one signature each: timed once, then remembered
    cpu_matmul.matmul(a, b)
    assert len(cpu_matmul._CHOICE) == 2


def test_small_or_non_float32_products_go_to_blas_untimed():
    small = torch.randn(4, 4)
    assert not cpu_matmul.eligible(small, small)
    assert not cpu_matmul.eligible(torch.randn(64, 64, dtype=torch.float64),
                                   torch.randn(64, 64, dtype=torch.float64))


def test_a_slow_spell_in_one_round_does_not_decide_the_choice(monkeypatch):
    """The ratio is the median of alternating rounds: oneDNN taking half BLAS's time wins although
    one of its calls was caught in a spell ten times longer than BLAS's."""
    calls = {"onednn": 0}

    def onednn(bias, a, b):
        calls["onednn"] += 1
        time.sleep(0.02 if calls["onednn"] == 3 else 0.001)

    def blas(bias, a, b):
        time.sleep(0.002)

    monkeypatch.setattr(cpu_matmul, "_onednn", onednn)
    monkeypatch.setattr(cpu_matmul, "_blas", blas)
    ratio = cpu_matmul._ratio(None, None, None)
    assert ratio <= cpu_matmul.MARGIN and calls["onednn"] == cpu_matmul._REPEATS + 1
