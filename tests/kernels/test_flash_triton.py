"""The Triton flash-attention kernels (kernels/flash_triton.py) against attention computed here in
float64 with plain torch ops and autograd, run on the CPU by Triton's interpreter (TRITON_INTERPRET=1,
set for this module's tests only; the kernels module loads an interpreted copy of its kernels when
the flag is set after import). Shapes are small and odd: the interpreter is slow, and lengths and
head dims that are not multiples of the tiles exercise the masked loads."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from tensorsmith.kernels import flash_triton
from tensorsmith.kernels.flash_triton_launch import Launch

F32_TOL = 1e-5
BF16_TOL = 2e-2


@pytest.fixture(autouse=True)
def _interpreted_triton(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield


def _reference(q, k, v, mask, is_causal, scale, grad_out):
    """(out, lse, dq, dk, dv) in float64: scores in memory, softmax, autograd."""
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    s = (q64 @ k64.transpose(-2, -1)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, -torch.inf) if mask.dtype == torch.bool else s + mask.double()
    if is_causal:
        lq, lk = s.shape[-2:]
        s = s.masked_fill(~torch.ones(lq, lk, dtype=torch.bool).tril(), -torch.inf)
    lse = torch.logsumexp(s.detach(), dim=-1)
    dead = torch.isinf(lse).unsqueeze(-1)  # rows with every key masked: p = 0
    p = torch.softmax(s.masked_fill(dead, 0.0), dim=-1).masked_fill(dead, 0.0)
    out = p @ v64
    out.backward(grad_out.double())
    return out.detach(), lse, q64.grad, k64.grad, v64.grad


def _rel(got: torch.Tensor, want: torch.Tensor) -> float:
    """Relative Frobenius error of `got` against the float64 `want`."""
    got, want = got.double(), want.double()
    finite = torch.isfinite(want)  # lse's -inf rows are compared exactly by the callers
    assert torch.equal(finite, torch.isfinite(got))
    return ((got - want)[finite].norm() / want[finite].norm().clamp_min(1e-30)).item()


def _check(q, k, v, mask=None, is_causal=False, tol=F32_TOL, backward=True, strided_grad=False):
    scale = q.shape[-1] ** -0.5
    assert flash_triton.unsupported(q, k, v, mask) is None
    out, lse = flash_triton.forward(q, k, v, mask, is_causal, scale)
    grad_out = torch.randn(out.shape).to(q.dtype)
    if strided_grad:  # as autograd hands it over when the output is transposed back to (B, L, H, D)
        grad_out = grad_out.transpose(1, 2).contiguous().transpose(1, 2)
        assert not grad_out.is_contiguous()
    want = _reference(q, k, v, mask, is_causal, scale, grad_out)
    assert out.dtype == q.dtype and out.is_contiguous() and out.shape == q.shape
    assert lse.dtype == torch.float32 and lse.shape == q.shape[:-1]
    assert torch.equal(torch.isneginf(lse), torch.isneginf(want[1]))
    errors = {"out": _rel(out, want[0]), "lse": _rel(lse, want[1])}
    if backward:
        grads = flash_triton.backward(grad_out, q, k, v, out, lse, mask, is_causal, scale)
        for name, g, t, w in zip(("dq", "dk", "dv"), grads, (q, k, v), want[2:]):
            assert g.dtype == t.dtype and g.is_contiguous() and g.shape == w.shape
            assert not g.isnan().any()
            errors[name] = _rel(g, w)
    assert not out.isnan().any()
    assert max(errors.values()) <= tol, errors
    return out, lse, (grads if backward else None)


def _qkv(B, H, Lq, Lk, D, dtype=torch.float32):
    return (torch.randn(B, H, Lq, D, dtype=dtype), torch.randn(B, H, Lk, D, dtype=dtype),
            torch.randn(B, H, Lk, D, dtype=dtype))


@pytest.mark.parametrize("Lq,Lk,D,is_causal", [
    (37, 37, 32, False),
    (37, 37, 64, True),
    (19, 45, 40, True),   # causal with more keys than queries: later keys are never seen
    (45, 19, 32, True),   # more queries than keys: the last queries see every key
])
def test_plain_and_causal(Lq, Lk, D, is_causal):
    _check(*_qkv(2, 2, Lq, Lk, D), is_causal=is_causal)


@pytest.mark.parametrize("is_causal", [False, True])
def test_bool_padding_mask_broadcast_over_heads_and_queries(is_causal):
    B, H, Lq, Lk, D = 2, 2, 19, 37, 40
    lengths = torch.tensor([37, 23])
    keep = torch.arange(Lk)[None, :] < lengths[:, None]  # (B, Lk)
    mask = keep[:, None, None, :].expand(B, H, Lq, Lk)
    assert mask.stride()[1:3] == (0, 0)
    _check(*_qkv(B, H, Lq, Lk, D), mask, is_causal)


def test_float_bias_broadcast_over_batch():
    B, H, L, D = 2, 2, 37, 32
    slopes = torch.tensor([0.5, 0.0625])
    distance = (torch.arange(L)[None, :] - torch.arange(L)[:, None]).abs().float()
    bias = (-slopes[:, None, None] * distance)[None].expand(B, H, L, L)  # ALiBi-like, stride 0 in B
    assert bias.stride(0) == 0
    _check(*_qkv(B, H, L, L, D), bias, is_causal=True)


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_row_is_zero_without_nan(kind):
    B, H, Lq, Lk, D = 1, 2, 19, 21, 32
    keep = torch.rand(B, 1, Lq, Lk) > 0.3
    keep[:, :, 5] = False
    mask = keep if kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, -torch.inf)
    mask = mask.expand(B, H, Lq, Lk)
    out, lse, (dq, _, _) = _check(*_qkv(B, H, Lq, Lk, D), mask)
    assert torch.isneginf(lse[:, :, 5]).all() and torch.isfinite(lse[:, :, :5]).all()
    assert (out[:, :, 5] == 0).all() and (dq[:, :, 5] == 0).all()


def test_multi_query_attention_expanded_kv():
    """k and v expanded over heads (stride 0), as grouped-query attention hands them over; dk and dv
    come back per head, for the expansion's autograd to sum."""
    B, H, L, D = 2, 3, 29, 32
    q = torch.randn(B, H, L, D)
    k, v = (torch.randn(B, 1, L, D).expand(B, H, L, D) for _ in range(2))
    assert k.stride(1) == 0
    _check(q, k, v, is_causal=True)


def test_non_contiguous_q_and_grad_out():
    B, L, H, D = 2, 23, 2, 32
    q = torch.randn(B, L, H, D).transpose(1, 2)  # (B, H, L, D) view of a (B, L, H, D) tensor
    k, v = (torch.randn(B, L, H, D).transpose(1, 2) for _ in range(2))
    assert not q.is_contiguous()
    _check(q, k, v, is_causal=True, strided_grad=True)


def test_head_dim_128_forward():
    _check(*_qkv(1, 1, 33, 33, 128), is_causal=True, backward=False)


def test_bfloat16():
    q, k, v = _qkv(1, 2, 37, 37, 64, torch.bfloat16)
    keep = (torch.rand(1, 1, 1, 37) > 0.2).expand(1, 2, 37, 37)
    _check(q, k, v, keep, is_causal=True, tol=BF16_TOL)


def test_unsupported():
    q, k, v = _qkv(1, 1, 8, 8, 16)
    assert flash_triton.unsupported(q, k, v, None) is None
    assert "dtype" in flash_triton.unsupported(q.double(), k.double(), v.double(), None)
    big = torch.empty(1, 1, 8, 257)
    assert "head dim" in flash_triton.unsupported(big, big, big, None)
    assert "mask dtype" in flash_triton.unsupported(q, k, v, torch.ones(1, 1, 8, 8, dtype=torch.int32))


# ----------------------------------------------------------------------------------------------
# masks whose tiles the kernels skip (empty) or visit without the mask (full): tile_ranges.py


def _tril(Lq, Lk):
    return torch.ones(Lq, Lk, dtype=torch.bool).tril()


def _additive(keep):
    return torch.zeros(keep.shape).masked_fill(~keep, -torch.inf)


@pytest.mark.parametrize("Lq,Lk", [(37, 37), (45, 19), (19, 45)])
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_tril_mask_broadcast(Lq, Lk, kind):
    """nanoGPT's causal attention: a (1, 1, L, L) tril buffer, broadcast with stride 0."""
    B, H = 2, 2
    keep = _tril(Lq, Lk)
    mask = (keep if kind == "bool" else _additive(keep))[None, None].expand(B, H, Lq, Lk)
    assert mask.stride()[:2] == (0, 0)
    _check(*_qkv(B, H, Lq, Lk, 32), mask)


@pytest.mark.parametrize("Lq,Lk", [(37, 37), (45, 19), (19, 45)])
def test_tril_mask_gives_the_bits_of_is_causal(Lq, Lk):
    """A tril mask leaves the tiles is_causal visits, in the same order, masked where is_causal
    tests j <= i: the same bits (and an all-visible mask those of no mask)."""
    B, H, D = 1, 2, 32
    q, k, v = _qkv(B, H, Lq, Lk, D)
    grad_out = torch.randn(B, H, Lq, D)
    scale = D ** -0.5
    tril = _tril(Lq, Lk)[None, None].expand(B, H, Lq, Lk)
    everything = torch.ones(1, 1, 1, 1, dtype=torch.bool).expand(B, H, Lq, Lk)
    for mask, is_causal in ((tril, True), (everything, False)):
        with_mask = flash_triton.forward(q, k, v, mask, False, scale)
        without = flash_triton.forward(q, k, v, None, is_causal, scale)
        assert all(torch.equal(a, b) for a, b in zip(with_mask, without))
        grads = flash_triton.backward(grad_out, q, k, v, *with_mask, mask, False, scale)
        want = flash_triton.backward(grad_out, q, k, v, *without, None, is_causal, scale)
        assert all(torch.equal(a, b) for a, b in zip(grads, want))


@pytest.mark.parametrize("kind,is_causal", [("bool", False), ("float", True)])
def test_sliding_window_mask(kind, is_causal):
    B, H, L, width = 1, 2, 70, 20
    i, j = torch.arange(L)[:, None], torch.arange(L)[None, :]
    keep = (j <= i) & (j > i - width)  # whole tiles left of the window are empty
    mask = (keep if kind == "bool" else _additive(keep))[None, None].expand(B, H, L, L)
    _check(*_qkv(B, H, L, L, 32), mask, is_causal)


def test_key_padding_mask_skips_padded_tiles():
    B, H, Lq, Lk = 3, 2, 23, 45
    keep = torch.arange(Lk)[None, :] < torch.tensor([45, 5, 17])[:, None]  # (B, Lk)
    mask = keep[:, None, None, :].expand(B, H, Lq, Lk)
    _, _, (_, dk, dv) = _check(*_qkv(B, H, Lq, Lk, 32), mask)
    assert (dk[1, :, 5:] == 0).all() and (dv[2, :, 17:] == 0).all()


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("Lq,Lk", [(45, 19), (19, 45)])
def test_dead_query_rows_and_unseen_keys(kind, Lq, Lk):
    B, H = 2, 2
    keep = torch.rand(1, H, Lq, Lk) > 0.3
    keep[:, :, 13:32] = False  # rows no key is visible to: the query tile [16, 32) among them
    keep[:, :, :, 16:] = False  # keys no query sees: whole key tiles
    mask = (keep if kind == "bool" else _additive(keep)).expand(B, H, Lq, Lk)
    out, lse, (dq, dk, dv) = _check(*_qkv(B, H, Lq, Lk, 32), mask)
    assert (out[:, :, 13:32] == 0).all() and torch.isneginf(lse[:, :, 13:32]).all()
    assert (dq[:, :, 13:32] == 0).all() and (dk[:, :, 16:] == 0).all() and (dv[:, :, 16:] == 0).all()


def test_bfloat16_tril_and_window_masks():
    B, H, L = 1, 2, 45
    q, k, v = _qkv(B, H, L, L, 64, torch.bfloat16)
    i, j = torch.arange(L)[:, None], torch.arange(L)[None, :]
    _check(q, k, v, _tril(L, L)[None, None].expand(B, H, L, L), tol=BF16_TOL)
    window = _additive((j <= i) & (j > i - 17)).to(torch.bfloat16)[None, None].expand(B, H, L, L)
    _check(q, k, v, window, is_causal=True, tol=BF16_TOL)


# ----------------------------------------------------------------------------------------------
# precompile


def _fake_cuda(*tensors):
    from torch._subclasses.fake_tensor import FakeTensorMode

    mode = FakeTensorMode(allow_non_fake_inputs=True)
    with mode:
        return [torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="cuda")
                .as_strided(t.shape, t.stride(), t.storage_offset()) for t in tensors]


def test_precompile_is_a_no_op_under_the_interpreter():
    q, k, v = _qkv(2, 2, 19, 19, 32)
    mask = _tril(19, 19)[None, None]
    assert flash_triton.precompile(*_fake_cuda(q, k, v, mask), is_causal=False) is None
    assert flash_triton.precompile(q, k, v, None, True) is None


@pytest.mark.parametrize("mask_kind,is_causal", [(None, True), ("bool", False), ("float", True)])
def test_planned_launches_are_the_launches(monkeypatch, mask_kind, is_causal):
    """What precompile compiles (built from fake CUDA tensors) is what forward and backward launch:
    the same kernels, grids, constexprs and argument types, alignments and values."""
    B, L, H, D = 2, 37, 3, 40
    qkv = torch.randn(B, L, 3 * H * D)  # nanoGPT's layout: views with storage offsets
    q, k, v = (t.view(B, L, H, D).transpose(1, 2) for t in qkv.split(H * D, dim=2))
    keep = _tril(L, L)[None, None]
    mask = None if mask_kind is None else keep if mask_kind == "bool" else _additive(keep)

    ran = []
    run = Launch.run
    monkeypatch.setattr(Launch, "run", lambda self: (ran.append(self), run(self)))
    full = None if mask is None else mask.expand(B, H, L, L)
    out, lse = flash_triton.forward(q, k, v, full, is_causal, 0.1)
    flash_triton.backward(torch.randn(out.shape), q, k, v, out, lse, full, is_causal, 0.1)
    fakes = _fake_cuda(*(t for t in (q, k, v, mask) if t is not None))
    planned = flash_triton.planned_launches(*fakes[:3], fakes[3] if mask is not None else None,
                                            is_causal)

    def signature(launch):  # floats (the scale) are not specialized on: the plan's is a stand-in
        args = tuple((a.dtype, a.storage_offset() * a.element_size() % 16) if isinstance(a, torch.Tensor)
                     else float if isinstance(a, float) else a for a in launch.args)
        return launch.kernel, launch.grid, args, launch.options

    assert len(ran) == len(planned) == (4 if mask is None else 8)
    assert [signature(a) for a in ran] == [signature(b) for b in planned]
