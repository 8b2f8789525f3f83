"""Fused attention under autocast (kernels/attention_op.py's autocast rule, compile/backend.py):
the op casts as autocast casts scaled_dot_product_attention, and a model run under bf16 autocast
still fuses its attention, into the Triton kernels (interpreted here, standing in for CUDA), and
matches eager's autocast against a float64 reference, outputs and gradients."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from helpers import check_against_eager

from tensorsmith import config, records
from tensorsmith.frontend import attention
from tensorsmith.kernels import attention_op


def _qkv(length=12, d=32, dtype=torch.float32):
    return [torch.randn(2, 3, length, d, dtype=dtype) for _ in range(3)]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_op_casts_as_autocast_casts_sdpa(dtype):
    q, k, v = (t.requires_grad_() for t in _qkv())
    bias = torch.randn(1, 1, 12, 12)
    with torch.autocast("cpu", dtype=dtype):
        out, lse = torch.ops.tensorsmith.attention(q, k, v, bias, False, 0.2)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.2)
    assert out.dtype == expected.dtype == dtype and lse.dtype == torch.float32
    torch.testing.assert_close(out.float(), expected.float(), atol=2e-2, rtol=2e-2)
    out.float().sum().backward()
    assert q.grad.dtype == torch.float32 and q.grad.abs().sum() > 0


@pytest.fixture
def triton_on_the_cpu(monkeypatch, interpreted_triton):
    """Attention's kernel choice maps the CPU to the Triton kernels, as it maps CUDA."""
    real = attention_op._module
    monkeypatch.setattr(attention_op, "_module", lambda name: real("flash_triton" if name == "flash_cpp" else name))
    monkeypatch.setattr(config, "fuse_attention_min_mb", 0)
    attention.MATCHES.clear()


class HandWritten(torch.nn.Module):
    """nanoGPT's attention: scores, a causal buffer mask, softmax, values; projections before it,
    so that autocast makes q, k, v bfloat16 as in a model."""

    def __init__(self, d=32):
        super().__init__()
        self.proj = torch.nn.Linear(d, 3 * d)
        self.register_buffer("mask", torch.tril(torch.ones(12, 12, dtype=torch.bool)))

    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            q, k, v = self.proj(x).chunk(3, dim=-1)
            s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            s = s.masked_fill(~self.mask, float("-inf"))
            return F.softmax(s, dim=-1) @ v


class Sdpa(HandWritten):
    def forward(self, x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            q, k, v = self.proj(x).chunk(3, dim=-1)
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)


@pytest.mark.parametrize("model", [HandWritten, Sdpa])
def test_autocast_model_fuses_attention_and_matches_eager(triton_on_the_cpu, model):
    check_against_eager(model(), torch.randn(2, 3, 12, 32), tol=3e-2)
    assert attention.MATCHES, "attention was not fused under autocast"
    fused = sum(n for r in records.RECORDS for op, n in r.native.items() if op.startswith("tensorsmith.attention"))
    assert fused >= 2  # the forward's kernel and the backward's
