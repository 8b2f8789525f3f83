"""`tensorsmith::attention` as PyTorch sees it: its values and gradients (through the registered
backward) vs attention computed by definition in float64, whichever kernels run it."""
from __future__ import annotations

import pytest
import torch

from tensorsmith.kernels import attention_op


def _definition(q, k, v, mask, is_causal, scale):
    s = q @ k.transpose(-2, -1) * scale
    if mask is not None:
        s = s.masked_fill(~mask, -torch.inf) if mask.dtype == torch.bool else s + mask
    if is_causal:
        s = s.masked_fill(~torch.ones(s.shape[-2:], dtype=torch.bool).tril(), -torch.inf)
    return torch.softmax(s, -1) @ v


def _rel(a, b):
    return ((a.double() - b).norm() / b.norm()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masking", ["none", "causal", "bool", "bias"])
def test_values_and_gradients_match_the_definition(dtype, masking):
    b, h, lq, lk, d = 2, 3, 11, 11 if masking == "causal" else 13, 24
    q, k, v = (torch.randn(b, h, n, d, dtype=dtype, requires_grad=True) for n in (lq, lk, lk))
    mask = {"none": None, "causal": None,
            "bool": torch.rand(b, 1, 1, lk) > 0.3,
            "bias": torch.randn(1, h, lq, lk, dtype=dtype)}[masking]
    if masking == "bool":
        mask[..., 0] = True  # every row attends somewhere
    out, lse = torch.ops.tensorsmith.attention(q, k, v, mask, masking == "causal", 0.3)
    grad = torch.randn_like(out)
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), grad)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    m64 = mask.double() if mask is not None and mask.is_floating_point() else mask
    ref = _definition(q64, k64, v64, m64, masking == "causal", 0.3)
    refs = torch.autograd.grad(ref, (q64, k64, v64), grad.double())
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert _rel(out, ref) < tol
    for got, want in zip((dq, dk, dv), refs):
        assert _rel(got, want) < tol
    assert lse.shape == (b, h, lq)


def test_a_fully_masked_row_gives_zeros_not_nan():
    q, k, v = (torch.randn(1, 2, 5, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.ones(1, 1, 5, 5, dtype=torch.bool)
    mask[..., 2, :] = False
    out, lse = torch.ops.tensorsmith.attention(q, k, v, mask, False, 0.5)
    out.sum().backward()
    assert (out[:, :, 2] == 0).all() and torch.isneginf(lse[:, :, 2]).all()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_a_learned_mask_is_refused_not_silently_ungraded():
    q, k, v = (torch.randn(1, 1, 4, 8) for _ in range(3))
    bias = torch.randn(1, 1, 4, 4, requires_grad=True)
    out, _ = torch.ops.tensorsmith.attention(q, k, v, bias, False, 1.0)
    with pytest.raises(NotImplementedError, match="mask"):
        out.sum().backward()


def test_float64_goes_to_no_kernel():
    q = torch.randn(1, 1, 3, 4, dtype=torch.float64)
    assert attention_op.kernels_for(q, q, q, None) is None  # run by definition (the test above)
