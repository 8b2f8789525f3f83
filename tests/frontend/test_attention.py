"""Attention fusion (frontend/attention.py): every hand-written form is rewritten into one fused
attention op and still matches eager (outputs and gradients vs float64); near misses are left
alone and match too."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from helpers import check_against_eager

from tensorsmith import config
from tensorsmith import records
from tensorsmith.frontend import attention


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(config, "fuse_attention_min_mb", 0)  # these shapes are small
    attention.MATCHES.clear()
    records.reset()
    torch.manual_seed(torch.seed() % 2**31)
    yield


def _qkv(b=2, h=3, length=9, d=16, s=None, dtype=torch.float32):
    s = length if s is None else s
    return (torch.randn(b, h, length, d, dtype=dtype), torch.randn(b, h, s, d, dtype=dtype),
            torch.randn(b, h, s, d, dtype=dtype))


def _fused_kernels() -> int:
    """Fused attention library calls in the compiled graphs (forward and backward)."""
    return sum(n for r in records.RECORDS for op, n in r.native.items()
               if "scaled_dot_product" in op or op.startswith("tensorsmith.attention"))


def _rewritten(**expected):
    assert len(attention.MATCHES) == 1, attention.MATCHES
    match = attention.MATCHES[0]
    for name, value in expected.items():
        got = getattr(match, name)
        assert (math.isclose(got, value, rel_tol=1e-6) if isinstance(value, float) else got == value), \
            f"{name}: {got} != {value}"
    assert _fused_kernels() >= 1
    assert match.source and "test_attention.py" in match.source


class BufferMask(nn.Module):
    """nanoGPT: a registered causal buffer, masked_fill(~mask, -inf), scale after the matmul."""

    def __init__(self, length):
        super().__init__()
        self.register_buffer("mask", torch.tril(torch.ones(length, length, dtype=torch.bool)))

    def forward(self, q, k, v):
        t = q.shape[-2]
        s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        s = s.masked_fill(~self.mask[:t, :t], float("-inf"))
        return F.softmax(s, dim=-1) @ v


@pytest.mark.parametrize("length,d", [(13, 32), (8, 64), (5, 128)])
def test_buffer_mask_any_length_and_head_dim(length, d):
    check_against_eager(BufferMask(16), *_qkv(length=length, d=d))
    _rewritten(masks=["hide"], causal=False, scale=1 / math.sqrt(d))


def test_in_graph_tril_is_causal_with_division_scale():
    def f(q, k, v):
        t = q.shape[-2]
        s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        return torch.softmax(s.masked_fill(causal == 0, float("-inf")), -1) @ v
    check_against_eager(f, *_qkv(length=11))
    _rewritten(causal=True, scale=1 / 4.0)


def test_where_keep_mask_and_scale_before_matmul():
    def f(q, k, v, keep):
        s = (q * q.shape[-1] ** -0.5) @ (k.transpose(2, 3) / 2.0)
        return torch.where(keep, s, float("-inf")).softmax(-1) @ v
    q, k, v = _qkv(length=7, s=10)
    keep = torch.rand(2, 1, 7, 10) > 0.3
    keep[..., 0] = True  # no fully masked row (eager's NaN row is not a case worth a kernel)
    check_against_eager(f, q, k, v, keep)
    _rewritten(masks=["keep"], scale=0.125)


class T5(nn.Module):
    """No scale, an additive position bias."""

    def __init__(self, learned: bool):
        super().__init__()
        bias = torch.randn(1, 3, 9, 9)
        if learned:
            self.bias = nn.Parameter(bias)
        else:
            self.register_buffer("bias", bias)

    def forward(self, q, k, v):
        return torch.matmul(F.softmax(torch.matmul(q, k.transpose(3, 2)) + self.bias, dim=-1), v)


def test_unscaled_additive_position_bias_t5_style():
    check_against_eager(T5(learned=False), *_qkv())
    _rewritten(masks=["bias"], scale=1.0)


def test_alibi_bias_with_causal_mask():
    def f(q, k, v):
        t, heads = q.shape[-2], q.shape[1]
        slopes = 2.0 ** (-8.0 * torch.arange(1, heads + 1) / heads)
        distance = torch.arange(t)[None, :] - torch.arange(t)[:, None]
        alibi = slopes[:, None, None] * distance[None]
        s = q @ k.transpose(-2, -1) * 0.25 + alibi
        hidden = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        return s.masked_fill(hidden, float("-inf")).softmax(-1) @ v
    check_against_eager(f, *_qkv(length=12))
    _rewritten(masks=["hide", "bias"], causal=False, scale=0.25)


def test_hf_style_padding_bias():
    def f(q, k, v, attention_mask):
        bias = (1.0 - attention_mask[:, None, None, :].to(q.dtype)) * torch.finfo(q.dtype).min
        return F.softmax(q @ k.transpose(-1, -2) / 4.0 + bias, dim=-1) @ v
    q, k, v = _qkv()
    attention_mask = torch.ones(2, 9, dtype=torch.long)
    attention_mask[0, 6:] = 0
    check_against_eager(f, q, k, v, attention_mask)
    _rewritten(masks=["bias"])


def test_grouped_query_heads_expanded_by_repeat_interleave():
    def f(q, k, v):
        k, v = (z.repeat_interleave(q.shape[1] // z.shape[1], dim=1) for z in (k, v))
        t = q.shape[-2]
        s = q @ k.transpose(-2, -1) * 0.25
        return s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool), 1), float("-inf")).softmax(-1) @ v
    q = torch.randn(2, 4, 6, 16)
    k, v = torch.randn(2, 2, 6, 16), torch.randn(2, 2, 6, 16)
    check_against_eager(f, q, k, v)
    _rewritten(causal=True)


def test_dropout_in_eval_is_folded_and_in_training_kept():
    class Drop(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.25)

        def forward(self, q, k, v):
            return self.drop(F.softmax(q @ k.transpose(-2, -1) * 0.25, -1)) @ v
    model = Drop().eval()
    check_against_eager(model, *_qkv())
    _rewritten(dropout=0.0)
    attention.MATCHES.clear()
    torch._dynamo.reset()
    model.train()
    q, k, v = _qkv(b=1, h=1, length=4, d=8)
    compiled = torch.compile(model, backend="tensorsmith")
    draws = torch.stack([compiled(q, k, v) for _ in range(400)])
    expected = F.softmax(q @ k.transpose(-2, -1) * 0.25, -1) @ v
    assert attention.MATCHES and attention.MATCHES[0].dropout == 0.25
    assert draws.std(0).min() > 0  # it does drop
    # Dropout keeps the expectation: the mean is within 6 standard errors of it everywhere.
    standard_error = draws.std(0) / 400 ** 0.5
    assert ((draws.mean(0) - expected).abs() <= 6 * standard_error + 1e-6).all()


def test_scaled_dot_product_attention_runs_fused():
    def f(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    check_against_eager(f, *_qkv(length=10, d=32))
    assert all(m.form == "sdpa" for m in attention.MATCHES)  # at most moved onto our kernels
    assert _fused_kernels() >= 2  # the forward and backward fused kernels


def test_sdpa_alone_is_retargeted_without_tracing_the_graph(monkeypatch):
    """A graph whose only attention is scaled_dot_product_attention is rewritten as Dynamo gave it
    (no pre-dispatch trace: the trace is refused here), with a mask, a scale given or not, and an
    in-place update whose result nothing reads, which must still happen."""
    monkeypatch.setattr(attention, "trace", lambda *a: pytest.fail("traced an SDPA-only graph"))
    mask = torch.rand(1, 1, 10, 12) > 0.3
    mask[..., 0] = True  # no row fully hidden

    def f(q, k, v, seen):
        seen.add_(1)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=0.3)
        return a + F.scaled_dot_product_attention(q, k, v)
    q, k, v = _qkv(length=10, d=32, s=12)
    seen = torch.zeros(3)
    out = torch.compile(f, backend="tensorsmith")(q, k, v, seen)
    q64, k64, v64 = (t.double() for t in (q, k, v))
    expected = F.scaled_dot_product_attention(q64, k64, v64, attn_mask=mask, scale=0.3) + \
        F.scaled_dot_product_attention(q64, k64, v64)
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-5)
    assert seen.tolist() == [1.0, 1.0, 1.0]
    assert [m.form for m in attention.MATCHES] == ["sdpa", "sdpa"]
    assert _fused_kernels() >= 2
    check_against_eager(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                        *_qkv(length=10, d=32))


def test_sdpa_with_a_learned_mask_stays_pytorchs():
    bias = torch.randn(1, 3, 10, 10, requires_grad=True)

    def f(q, k, v, bias):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    check_against_eager(f, *_qkv(length=10, d=32), bias)
    assert not attention.MATCHES  # the fused op does not differentiate its mask


def test_sdpa_with_a_mask_learned_through_method_calls_stays_pytorchs():
    """T5's relative position bias: a parameter looked up and rearranged by method calls in the
    Dynamo graph, then the mask of SDPA. Its gradient must reach the parameter."""
    class PositionBias(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.randn(19, 3))

        def forward(self, q, k, v):
            positions = torch.arange(10)
            bias = self.table[positions[None, :] - positions[:, None] + 9].permute(2, 0, 1).unsqueeze(0)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    check_against_eager(PositionBias(), *_qkv(length=10, d=32))
    assert not attention.MATCHES


def test_bfloat16_matches_eager():
    check_against_eager(BufferMask(16), *_qkv(length=12, d=32, dtype=torch.bfloat16), tol=2e-2)
    _rewritten(masks=["hide"])


def _saved_shapes(fuse: bool) -> list[tuple]:
    """Shapes of the tensors a compiled training step keeps for its backward."""
    config.fuse_attention = fuse
    torch._dynamo.reset()
    q, k, v = (t.requires_grad_() for t in _qkv(length=32, d=16))
    compiled = torch.compile(BufferMask(32), backend="tensorsmith")
    compiled(q, k, v)  # compile outside the hooks
    shapes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(tuple(t.shape)) or t, lambda t: t):
        out = compiled(q, k, v)
    out.sum().backward()
    return shapes


def test_training_keeps_no_probabilities_for_the_backward(monkeypatch):
    monkeypatch.setattr(config, "fuse_attention", True)
    unfused = _saved_shapes(fuse=False)
    probabilities = (2, 3, 32, 32)
    assert probabilities in unfused, unfused
    fused = _saved_shapes(fuse=True)
    assert probabilities not in fused, fused


NEAR_MISSES = {
    "softmax over the query dim": lambda q, k, v: F.softmax(q @ k.transpose(-2, -1), dim=-2) @ v,
    "probabilities returned too": lambda q, k, v: (lambda p: (p @ v, p))(F.softmax(q @ k.transpose(-2, -1), -1)),
    "finite fill value": lambda q, k, v: F.softmax((q @ k.transpose(-2, -1)).masked_fill(
        torch.eye(q.shape[-2], dtype=torch.bool), -1e4), -1) @ v,
    "scale after the bias": lambda q, k, v: F.softmax((q @ k.transpose(-2, -1) + 1.5) * 0.5, -1) @ v,
    "no value matmul": lambda q, k, v: F.softmax(q @ k.transpose(-2, -1), -1).sum(-1),
    "learned bias": T5(learned=True),
}


@pytest.mark.parametrize("name", sorted(NEAR_MISSES))
def test_near_misses_are_left_alone(name):
    check_against_eager(NEAR_MISSES[name], *_qkv(length=9, d=8))
    assert not attention.MATCHES, name
    assert _fused_kernels() == 0


def test_small_scores_are_left_alone(monkeypatch):
    monkeypatch.setattr(config, "fuse_attention_min_mb", 1)  # 2x3x9x9 floats are far below 1 MiB
    check_against_eager(BufferMask(16), *_qkv())
    assert not attention.MATCHES


def test_fusion_can_be_turned_off(monkeypatch):
    monkeypatch.setattr(config, "fuse_attention", False)
    check_against_eager(BufferMask(16), *_qkv(length=8))
    assert not attention.MATCHES and _fused_kernels() == 0
