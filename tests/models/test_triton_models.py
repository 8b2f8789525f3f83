"""Whole models through the Triton backend, run by Triton's CPU interpreter (TRITON_INTERPRET=1 and
TENSORSMITH_EXECUTOR=triton for this module's tests only): outputs and every gradient vs eager and a
float64 reference (tests/helpers.py), and a short AdamW loop. Small models: the interpreter is slow."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import check_against_eager, check_training

pytest.importorskip("triton")

from tensorsmith.bench.models.small import MLP, tiny_nanogpt
from tensorsmith import records

pytestmark = pytest.mark.usefixtures("interpreted_triton")


def _assert_ran_triton_kernels():
    assert records.RECORDS, "no graph was compiled"
    assert not [r.graph_id for r in records.RECORDS if r.whole_graph_fallback]
    assert all(r.kernels for r in records.RECORDS), "a graph ran without generated kernels"


def test_mlp_training_matches_eager():
    batches = [(torch.randn(16, 32), torch.randint(0, 10, (16,))) for _ in range(3)]
    check_training(MLP(), batches, lambda m, b: F.cross_entropy(m(b[0]), b[1]))
    _assert_ran_triton_kernels()


def test_nanogpt_forward_and_gradients():
    model, (idx, targets) = tiny_nanogpt()
    check_against_eager(model, idx, targets)  # the cross-entropy loss and every parameter grad
    _assert_ran_triton_kernels()


def test_nanogpt_training_and_inference_match_eager():
    from tensorsmith.bench.models.nanogpt import make_batch
    from tensorsmith.bench.models.small import TINY_GPT

    model, (idx, _) = tiny_nanogpt()
    batches = [make_batch(TINY_GPT, 1) for _ in range(2)]  # batch 1: the interpreter is slow
    check_training(model, batches, lambda m, b: m(*b), steps=2)
    model.eval()
    with torch.no_grad():
        check_against_eager(model, idx, grads=False)
    _assert_ran_triton_kernels()
