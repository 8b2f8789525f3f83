"""The chunked linear + cross-entropy ops (kernels/linear_cross_entropy_op.py) with the C++ row
kernel (float32, float64) and the torch-ops reference (bfloat16 on the CPU), against eager
F.cross_entropy on float64 logits with gradients by autograd. Fresh random inputs; chunk sizes
that do not divide N; ignored rows, label smoothing, both reductions, with and without bias.

Error measure: relative Frobenius error against float64, 2e-6 for float32 (sums over <= 200
classes and 48 rows), 1e-12 for float64, 2e-2 for bfloat16 (logits rounded to 8 bits).
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tensorsmith.kernels import linear_cross_entropy_cpp, linear_cross_entropy_op as lce
from tensorsmith.kernels import linear_cross_entropy_reference

TOL = {torch.float32: 2e-6, torch.float64: 1e-12, torch.bfloat16: 2e-2}


def reference(x, w, b, target, ignore_index, smoothing, reduction):
    """(loss, grad_x, grad_w, grad_b) in float64, by eager cross-entropy and autograd."""
    x, w = (t.detach().double().clone().requires_grad_() for t in (x, w))
    b = b.detach().double().clone().requires_grad_() if b is not None else None
    loss = F.cross_entropy(F.linear(x, w, b), target, ignore_index=ignore_index,
                           label_smoothing=smoothing, reduction=reduction)
    loss.backward()
    return loss.detach(), x.grad, w.grad, b.grad if b is not None else None


def rel(got, want) -> float:
    got, want = got.double(), want.double()
    return ((got - want).norm() / want.norm().clamp_min(1e-300)).item()


def inputs(n, d, v, dtype, bias, ignore_index=-100, ignored_every=5):
    x = torch.randn(n, d).to(dtype)
    w = (torch.randn(v, d) / math.sqrt(d)).to(dtype) * 3
    b = torch.randn(v).to(dtype) if bias else None
    target = torch.randint(0, v, (n,))
    target[::ignored_every] = ignore_index
    return x, w, b, target


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_float64_eager(dtype, bias, smoothing, reduction):
    x, w, b, target = inputs(48, 24, 131, dtype, bias, ignore_index=-1)
    got = lce.compute(x, w, b, target, -1, smoothing, reduction, True, rows_per_chunk=16 + 4)
    want = reference(x, w, b, target, -1, smoothing, reduction)
    assert got[0].dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    assert got[1].dtype == got[2].dtype == dtype and got[1].shape == x.shape and got[2].shape == w.shape
    for g, r in zip(got, want):
        if r is not None:
            assert rel(g, r) < TOL[dtype]
    if not bias:
        assert got[3].numel() == 0
    inference = lce.compute(x, w, b, target, -1, smoothing, reduction, False, rows_per_chunk=7)
    assert rel(inference, want[0]) < TOL[dtype]


def test_row_kernels_by_device_and_dtype():
    assert lce.kernel_for(torch.empty(2, 3)) is linear_cross_entropy_cpp
    assert lce.kernel_for(torch.empty(2, 3, dtype=torch.float64)) is linear_cross_entropy_cpp
    assert lce.kernel_for(torch.empty(2, 3, dtype=torch.bfloat16)) is linear_cross_entropy_reference


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_all_rows_ignored_as_eager(reduction, smoothing):
    x, w, b, target = inputs(9, 8, 17, torch.float32, True)
    target[:] = -100
    got = lce.compute(x, w, b, target, -100, smoothing, reduction, True, rows_per_chunk=4)
    want = reference(x, w, b, target, -100, smoothing, reduction)
    assert torch.equal(got[0].isnan(), want[0].isnan())  # mean: 0 / 0
    for g, r in zip(got[1:], want[1:]):
        assert torch.equal(g.double(), r)  # zeros


def test_ops_and_their_autograd():
    x, w, b, target = inputs(33, 16, 50, torch.float32, True, ignore_index=-1)
    want = reference(x, w, b, target, -1, 0.1, "mean")
    for op in (torch.ops.tensorsmith.linear_cross_entropy, torch.ops.tensorsmith.linear_cross_entropy_with_grads):
        xs, ws, bs = (t.clone().requires_grad_() for t in (x, w, b))
        out = op(xs, ws, bs, target, -1, 0.1, "mean")
        loss = out if isinstance(out, torch.Tensor) else out[0]
        (loss * 2.5).backward()  # the incoming grad scales every gradient
        assert rel(loss, want[0]) < TOL[torch.float32]
        for g, r in zip((xs.grad, ws.grad, bs.grad), want[1:]):
            assert rel(g, 2.5 * r) < TOL[torch.float32]


def test_out_of_range_target_raises():
    x, w, b, target = inputs(6, 4, 5, torch.float32, False)
    target[3] = 5
    with pytest.raises(IndexError, match="out of bounds"):
        lce.compute(x, w, b, target, -100, 0.0, "mean", True)
    x = x.to(torch.bfloat16)
    with pytest.raises(IndexError, match="out of bounds"):
        lce.compute(x, w.to(torch.bfloat16), b, target, -100, 0.0, "sum", False)


def test_chunk_rows():
    assert lce.chunk_rows(8 * 1024, 50304, 4) == 1024  # 206 MB of logits per chunk
    assert lce.chunk_rows(100, 1000, 4) == 32  # small problems: about a quarter of the rows
    assert lce.chunk_rows(1, 10**9, 4) == 1
    for n, v in [(8192, 50304), (100, 1000), (37, 131)]:
        rows = lce.chunk_rows(n, v, 4)
        assert rows & (rows - 1) == 0 and rows * v * 4 <= max(lce._MAX_CHUNK_BYTES, v * 4)


@pytest.mark.parametrize("bias", [False, True])
def test_given_logits_are_read_not_computed(bias):
    """Logits the model computed anyway are read chunk by chunk (and left as they were): the same
    loss and gradients as computing them; a wrong `logits` shows, so they are what is read."""
    x, w, b, target = inputs(40, 16, 97, torch.float32, bias)
    logits = F.linear(x, w, b)
    before = logits.clone()
    got = lce.compute(x, w, b, target, -100, 0.1, "mean", True, rows_per_chunk=12, logits=logits)
    want = reference(x, w, b, target, -100, 0.1, "mean")
    for g, r in zip(got, want):
        if r is not None:
            assert rel(g, r) < TOL[torch.float32]
    assert torch.equal(logits, before)
    other = lce.compute(x, w, b, target, -100, 0.1, "mean", False, rows_per_chunk=12, logits=logits * 2)
    assert rel(other, want[0]) > 1e-3
