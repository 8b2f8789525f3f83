"""The Triton row kernel of the chunked linear + cross-entropy (kernels/linear_cross_entropy_triton.py)
run on the CPU by Triton's interpreter (TRITON_INTERPRET=1, set for this module's tests only),
against eager F.cross_entropy on float64 logits. Small sizes (the interpreter is slow); vocabularies
longer than the kernel's block, so the online max/sum crosses blocks."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from test_linear_cross_entropy import TOL, inputs, reference, rel  # noqa: E402

from tensorsmith.kernels import linear_cross_entropy_op as lce  # noqa: E402
from tensorsmith.kernels import linear_cross_entropy_triton  # noqa: E402


@pytest.fixture(autouse=True)
def _interpreted_triton(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(linear_cross_entropy_triton, "_MAX_BLOCK", 32)
    monkeypatch.setattr(lce, "kernel_for", lambda logits: linear_cross_entropy_triton)
    yield


@pytest.mark.parametrize("dtype,bias,smoothing,reduction", [
    (torch.float32, False, 0.0, "mean"),
    (torch.float32, True, 0.1, "sum"),
    (torch.bfloat16, True, 0.0, "sum"),
    (torch.bfloat16, False, 0.2, "mean"),
])
def test_matches_float64_eager(dtype, bias, smoothing, reduction):
    x, w, b, target = inputs(10, 8, 77, dtype, bias, ignore_index=-1, ignored_every=4)
    assert linear_cross_entropy_triton.unsupported(torch.empty(1, 77, dtype=dtype)) is None
    got = lce.compute(x, w, b, target, -1, smoothing, reduction, True, rows_per_chunk=4)
    want = reference(x, w, b, target, -1, smoothing, reduction)
    for g, r in zip(got, want):
        if r is not None:
            assert rel(g, r) < TOL[dtype]
    assert rel(lce.compute(x, w, b, target, -1, smoothing, reduction, False, rows_per_chunk=8),
               want[0]) < TOL[dtype]


def test_ignored_rows_and_masked_logits():
    """A row of all-ignored targets has loss 0 and gradient 0; -inf logits give probability 0."""
    logits = torch.randn(3, 45)
    logits[1, :40] = -torch.inf
    target = torch.tensor([-100, 41, 2])
    row_loss = torch.empty(3)
    grad = logits.clone()
    linear_cross_entropy_triton.rows(grad, target, row_loss, -100, 0.0, torch.tensor(0.5), True)
    want = torch.nn.functional.cross_entropy(logits.double(), target, reduction="none")
    assert torch.allclose(row_loss.double(), want, rtol=1e-6)
    assert torch.equal(grad[0], torch.zeros(45)) and torch.equal(grad[1, :40], torch.zeros(40))
    p = torch.softmax(logits[2].double(), 0)
    p[2] -= 1
    assert rel(grad[2], 0.5 * p) < 1e-6


def test_a_kernel_that_does_not_compile_falls_back_to_the_reference(monkeypatch):
    """A Triton compile error (an untested GPU, a Triton that rejects the kernel) is never the
    user's crash: the rows run as PyTorch ops, with a FallbackWarning, and the numbers are right."""
    from tensorsmith.errors import FallbackWarning

    class CompilationError(Exception):
        pass

    def fails(*args):
        raise CompilationError("the kernel does not compile here")

    monkeypatch.setattr(linear_cross_entropy_triton, "rows", fails)
    monkeypatch.setattr(lce, "_FAILED", set())
    x, w, b, target = inputs(20, 8, 45, torch.float32, True)
    with pytest.warns(FallbackWarning, match="did not compile"):
        got = lce.compute(x, w, b, target, -100, 0.1, "mean", True, rows_per_chunk=8)
    for g, r in zip(got, reference(x, w, b, target, -100, 0.1, "mean")):
        assert rel(g, r) < TOL[torch.float32]
