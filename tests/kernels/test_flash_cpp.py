"""The C++ flash attention kernel (tensorsmith/kernels/flash_cpp.py) against an independent float64
reference written here with plain torch ops (double matmul, masks, softmax, @ v; gradients by
autograd on float64 copies).

Error measure: relative Frobenius error ||ours - ref|| / ||ref|| <= 2e-6 for out, lse, dq, dk, dv
(float32 accumulation over <= 200 keys and a head dim <= 128 lands around 1e-7 .. 6e-7; 5e-5 where
masks leave rows one or two keys, test_few_queries_against_a_long_cache says why). Where the
exact gradient is zero (one key: softmax is constant), the float32 result is rounding noise and is
held to an absolute bound instead.
"""
from __future__ import annotations

import math

import pytest
import torch

from tensorsmith.errors import FlashKernelError
from tensorsmith.kernels import flash_cpp

TOL = 2e-6
FEW_KEYS_TOL = 5e-5  # rows with one or two visible keys (test_few_queries_against_a_long_cache)


def reference(q, k, v, mask, is_causal, scale, grad_out):
    """(out, lse, dq, dk, dv) in float64. Rows with no visible key: out 0, lse -inf, zero grads."""
    q, k, v = (t.detach().double().requires_grad_() for t in (q, k, v))
    s = scale * (q @ k.transpose(-1, -2))
    Lq, Lk = s.shape[-2:]
    visible = torch.ones(s.shape, dtype=torch.bool)
    if mask is not None:
        if mask.dtype == torch.bool:
            visible = visible & mask
        else:
            s = s + mask.double()
    if is_causal:
        visible = visible & torch.ones(Lq, Lk, dtype=torch.bool).tril()
    s = s.masked_fill(~visible, float("-inf"))
    row_max = s.detach().amax(-1, keepdim=True) if Lk else torch.zeros(s.shape[:-1] + (1,))
    row_max = torch.where(torch.isinf(row_max), torch.zeros_like(row_max), row_max)
    e = torch.exp(s - row_max)
    total = e.sum(-1, keepdim=True)
    p = e / torch.where(total == 0, torch.ones_like(total), total)
    out = p @ v
    lse = (torch.log(total) + row_max).squeeze(-1)
    dq, dk, dv = torch.autograd.grad(out, (q, k, v), grad_out.double())
    return out.detach(), lse.detach(), dq, dk, dv


def rel_err(actual, expected):
    actual, expected = actual.double(), expected.double()
    finite = torch.isfinite(expected)
    assert torch.equal(finite, torch.isfinite(actual)), "non-finite entries differ"
    assert torch.equal(actual[~finite], expected[~finite])
    num = (actual[finite] - expected[finite]).norm().item()
    den = expected[finite].norm().item()
    return num / den if den > 0 else num


def check(q, k, v, mask=None, is_causal=False, scale=None, grad_out=None, tol=TOL):
    D = q.shape[-1]
    scale = 1 / math.sqrt(D) if scale is None else scale
    out, lse = flash_cpp.forward(q, k, v, mask, is_causal, scale)
    assert out.dtype == lse.dtype == torch.float32 and out.is_contiguous() and lse.is_contiguous()
    assert out.shape == q.shape and lse.shape == q.shape[:3]
    if grad_out is None:
        grad_out = torch.randn(out.shape)
    dq, dk, dv = flash_cpp.backward(grad_out, q, k, v, out, lse, mask, is_causal, scale)
    for t in (dq, dk, dv):
        assert t.dtype == torch.float32 and t.is_contiguous()
    assert dq.shape == q.shape and dk.shape == k.shape and dv.shape == v.shape
    expected = reference(q, k, v, mask, is_causal, scale, grad_out)
    for name, a, e in zip(("out", "lse", "dq", "dk", "dv"), (out, lse, dq, dk, dv), expected):
        assert not torch.isnan(a).any(), name
        if e.numel() and e.abs().max() == 0:  # zero in exact arithmetic: rounding noise only
            assert a.abs().max() <= 1e-5, (name, a.abs().max().item())
            continue
        err = rel_err(a, e)
        assert err <= tol, (name, err)
    return (out, lse, dq, dk, dv), expected


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float32)


@pytest.fixture(params=["fused", "two-pass"])
def backward_mode(request, monkeypatch):
    """The backward's two schedules: one pass per (batch, head), or separate dk/dv and dq passes."""
    fused = request.param == "fused"
    monkeypatch.setattr(flash_cpp, "_use_fused", lambda bh, threads: fused)
    return request.param


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("B, H, Lq, Lk, D", [
    (2, 3, 37, 37, 64),
    (1, 2, 19, 45, 40),   # odd head dim, Lq < Lk
    (1, 2, 45, 19, 32),   # Lq > Lk
    (2, 2, 1, 1, 32),
    (1, 2, 70, 70, 128),  # two blocks each way, a partial one
    (1, 1, 130, 131, 64),
])
def test_shapes(B, H, Lq, Lk, D, is_causal, backward_mode):
    check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), is_causal=is_causal)


def test_two_threads(backward_mode):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        check(rand(2, 3, 100, 64), rand(2, 3, 100, 64), rand(2, 3, 100, 64), is_causal=True)
    finally:
        torch.set_num_threads(before)


def test_scale():
    check(rand(1, 2, 37, 32), rand(1, 2, 37, 32), rand(1, 2, 37, 32), scale=0.3)


def test_large_scores_as_accurate_as_pytorch_flash():
    """Scores of magnitude ~50: rounding the float32 scores alone moves softmax by ~1e-6, so the
    bound is PyTorch's own float32 CPU flash kernel's error against the same reference (x1.5)."""
    q, k, v = rand(1, 2, 37, 32) * 4, rand(1, 2, 37, 32) * 4, rand(1, 2, 37, 32)
    grad_out = rand(1, 2, 37, 32)
    expected = reference(q, k, v, None, False, 0.5, grad_out)
    out, lse = flash_cpp.forward(q, k, v, None, False, 0.5)
    ours = (out, lse, *flash_cpp.backward(grad_out, q, k, v, out, lse, None, False, 0.5))
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, False,
                                                                           scale=0.5)
    theirs = (out, lse, *torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
        grad_out, q, k, v, out, lse, 0.0, False, scale=0.5))
    for name, a, b, e in zip(("out", "lse", "dq", "dk", "dv"), ours, theirs, expected):
        assert rel_err(a, e) <= max(TOL, 1.5 * rel_err(b, e)), name


@pytest.mark.parametrize("is_causal", [False, True])
def test_bool_padding_mask_broadcast(is_causal, backward_mode):
    B, H, Lq, Lk, D = 3, 2, 37, 70, 32
    lengths = torch.tensor([70, 23, 1])
    keep = torch.arange(Lk)[None, :] < lengths[:, None]          # (B, Lk)
    mask = keep[:, None, None, :].expand(B, H, Lq, Lk)           # stride 0 over heads and queries
    assert mask.stride()[1:3] == (0, 0)
    check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), mask, is_causal)


def test_bool_mask_strided_keys():
    B, H, Lq, Lk, D = 1, 2, 19, 45, 40
    mask = (torch.rand(B, H, Lk, Lq) > 0.3).transpose(-1, -2)    # key stride != 1
    mask[..., 0] = True
    check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), mask)


@pytest.mark.parametrize("is_causal", [False, True])
def test_float_bias_broadcast_over_batch(is_causal, backward_mode):
    B, H, L, D = 2, 4, 37, 64
    slopes = torch.tensor([2.0 ** -(i + 1) for i in range(H)])
    distance = (torch.arange(L)[None, :] - torch.arange(L)[:, None]).float()
    bias = (slopes[:, None, None] * distance)[None].expand(B, H, L, L)  # ALiBi-like, stride 0 on B
    assert bias.stride(0) == 0
    check(rand(B, H, L, D), rand(B, H, L, D), rand(B, H, L, D), bias, is_causal)


def test_float64_bias_and_neg_inf():
    B, H, L, D = 1, 2, 37, 32
    bias = torch.randn(1, 1, L, L, dtype=torch.float64)
    bias[..., 5:9] = float("-inf")
    check(rand(B, H, L, D), rand(B, H, L, D), rand(B, H, L, D), bias.expand(B, H, L, L))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_fully_masked_rows(kind, backward_mode):
    B, H, Lq, Lk, D = 2, 2, 37, 45, 32
    keep = torch.rand(1, 1, Lq, Lk) > 0.2
    keep[..., 3, :] = False        # query 3 sees no key
    keep[..., 30:, :] = False      # nor do the last queries (a whole tile tail)
    mask = keep if kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))
    mask = mask.expand(B, H, Lq, Lk)
    (out, lse, dq, _dk, _dv), _ = check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), mask)
    dead = ~keep[0, 0].any(-1)
    assert torch.equal(out[:, :, dead], torch.zeros_like(out[:, :, dead]))
    assert torch.isneginf(lse[:, :, dead]).all() and torch.isfinite(lse[:, :, ~dead]).all()
    assert torch.equal(dq[:, :, dead], torch.zeros_like(dq[:, :, dead]))


def test_all_keys_masked_for_a_batch():
    B, H, L, D = 2, 2, 37, 32
    mask = torch.tensor([True, False])[:, None, None, None].expand(B, H, L, L)
    (out, lse, dq, dk, dv), _ = check(rand(B, H, L, D), rand(B, H, L, D), rand(B, H, L, D), mask)
    assert torch.equal(out[1], torch.zeros_like(out[1])) and torch.isneginf(lse[1]).all()
    for g in (dq, dk, dv):
        assert torch.equal(g[1], torch.zeros_like(g[1]))


# Masks and the kernel's per-tile mask summary (64 x 64 tiles): tiles the mask hides entirely are
# skipped, tiles it leaves wholly visible are not masked, the rest are masked row by row.

def tril(Lq, Lk):
    """(1, 1, Lq, Lk) bool: query i sees keys j <= i (top-left aligned, as is_causal)."""
    return torch.ones(Lq, Lk, dtype=torch.bool).tril()[None, None]


def as_kind(keep, kind):
    """The bool mask `keep`, or the same as an additive float mask (0 where kept, -inf elsewhere)."""
    return keep if kind == "bool" else torch.zeros(keep.shape).masked_fill(~keep, float("-inf"))


@pytest.mark.parametrize("kind", ["bool", "float"])
@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("Lq, Lk", [(130, 130), (45, 19), (19, 45), (64, 150)])
def test_causal_mask_broadcast(Lq, Lk, is_causal, kind, backward_mode):
    """nanoGPT's masked_fill(bias[:, :, :T, :T] == 0, -inf): one (1, 1, L, L) tril, stride 0 over
    batch and heads. 130 x 130 has empty, full and partial tiles, and a short last block."""
    B, H, D = 2, 3, 32
    mask = as_kind(tril(Lq, Lk), kind).expand(B, H, Lq, Lk)
    assert mask.stride()[:2] == (0, 0)
    check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), mask, is_causal)


@pytest.mark.parametrize("lo, hi", [(-39, 0), (0, 39), (-1000, -10)])
@pytest.mark.parametrize("Lq, Lk", [(200, 200), (45, 19), (19, 45)])
def test_band_masks(lo, hi, Lq, Lk, backward_mode):
    """Query i sees keys j with lo <= j - i <= hi: a sliding window, a look-ahead window, a causal
    mask lagged by 10 (the first queries see nothing). At 200: empty tiles on both sides of the
    band, and tiles whose first row is all visible or all hidden while later rows are not."""
    B, H, D = 1, 2, 32
    i, j = torch.arange(Lq)[:, None], torch.arange(Lk)[None, :]
    keep = (j - i >= lo) & (j - i <= hi)
    check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), keep.expand(B, H, Lq, Lk))


def test_key_padding_mask_expanded(backward_mode):
    """(B, 1, 1, Lk) padding: lengths on a block boundary (64) and 0 (a batch that sees nothing)."""
    B, H, Lq, Lk, D = 3, 2, 70, 150, 32
    keep = torch.arange(Lk)[None, :] < torch.tensor([150, 64, 0])[:, None]
    mask = keep[:, None, None, :].expand(B, H, Lq, Lk)
    (out, lse, dq, dk, dv), _ = check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), mask)
    assert torch.equal(out[2], torch.zeros_like(out[2])) and torch.isneginf(lse[2]).all()
    for g in (dq[2], dk[2], dv[2], dk[1, :, 64:], dv[1, :, 64:]):
        assert torch.equal(g, torch.zeros_like(g))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masked_out_query_and_key_blocks(kind, backward_mode):
    """Whole query blocks that see no key and key blocks that no query sees: out 0, lse -inf and
    zero gradients there, as when they were computed."""
    B, H, Lq, Lk, D = 1, 2, 200, 150, 32
    keep = torch.rand(Lq, Lk) > 0.3
    keep[:64, :64] = True               # a full tile
    keep[64:128] = False                # a query block that sees nothing
    keep[190:] = False                  # and the tail of the last one
    keep[:, 64:128] = False             # a key block nobody sees
    keep[:, 140:] = False               # and the tail of the last one
    mask = as_kind(keep, kind)[None, None].expand(B, H, Lq, Lk)
    (out, lse, dq, dk, dv), _ = check(rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), mask)
    dead, unseen = ~keep.any(1), ~keep.any(0)
    assert torch.equal(out[:, :, dead], torch.zeros_like(out[:, :, dead]))
    assert torch.isneginf(lse[:, :, dead]).all() and torch.isfinite(lse[:, :, ~dead]).all()
    for g in (dq[:, :, dead], dk[:, :, unseen], dv[:, :, unseen]):
        assert torch.equal(g, torch.zeros_like(g))


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_all_visible_mask_equals_no_mask(kind, backward_mode):
    """A mask that hides nothing (all True; all exactly 0.0) gives the no-mask result bit for bit."""
    B, H, Lq, Lk, D = 2, 2, 100, 130, 32
    q, k, v, grad_out = rand(B, H, Lq, D), rand(B, H, Lk, D), rand(B, H, Lk, D), rand(B, H, Lq, D)
    mask = as_kind(torch.ones(B, H, Lq, Lk, dtype=torch.bool), kind)
    results = []
    for m in (mask, None):
        out, lse = flash_cpp.forward(q, k, v, m, False, 0.125)
        results.append((out, lse, *flash_cpp.backward(grad_out, q, k, v, out, lse, m, False, 0.125)))
    for name, a, b in zip(("out", "lse", "dq", "dk", "dv"), *results):
        assert torch.equal(a, b), name


def test_masks_two_threads(backward_mode):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        B, H, L, D = 2, 3, 150, 32
        i, j = torch.arange(L)[:, None], torch.arange(L)[None, :]
        for keep in (tril(L, L), ((j <= i) & (j > i - 40))[None, None]):
            check(rand(B, H, L, D), rand(B, H, L, D), rand(B, H, L, D), keep.expand(B, H, L, L))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("is_causal", [False, True])
def test_gqa_expanded_kv(is_causal, backward_mode):
    B, H, L, D = 2, 4, 37, 64
    k = rand(B, 1, L, D).expand(B, H, L, D)    # one K/V head shared by all query heads: stride 0
    v = rand(B, 1, L, D).expand(B, H, L, D)
    assert k.stride(1) == 0
    check(rand(B, H, L, D), k, v, is_causal=is_causal)


@pytest.mark.parametrize("is_causal", [False, True])
def test_non_contiguous_inputs(is_causal):
    B, H, Lq, Lk, D = 2, 3, 37, 45, 40
    q = rand(B, Lq, H, D).transpose(1, 2)      # (B, L, H, D) seen as (B, H, L, D)
    k = rand(B, Lk, H, D).transpose(1, 2)
    v = rand(B, H, D, Lk).transpose(2, 3)      # element stride != 1
    grad_out = rand(B, Lq, H, D).transpose(1, 2)
    assert not (q.is_contiguous() or k.is_contiguous() or v.is_contiguous())
    check(q, k, v, is_causal=is_causal, grad_out=grad_out)


def test_empty_keys():
    q, k, v = rand(1, 2, 5, 32), rand(1, 2, 0, 32), rand(1, 2, 0, 32)
    out, lse = flash_cpp.forward(q, k, v, None, False, 0.5)
    assert torch.equal(out, torch.zeros_like(out)) and torch.isneginf(lse).all()
    dq, dk, _dv = flash_cpp.backward(torch.ones_like(out), q, k, v, out, lse, None, False, 0.5)
    assert torch.equal(dq, torch.zeros_like(dq)) and dk.shape == k.shape


def test_unsupported():
    q, k, v = rand(1, 2, 8, 16), rand(1, 2, 8, 16), rand(1, 2, 8, 16)
    assert flash_cpp.unsupported(q, k, v, None) is None
    assert flash_cpp.unsupported(q, k, v, torch.ones(1, 2, 8, 8, dtype=torch.bool)) is None
    assert flash_cpp.unsupported(q, k, v, torch.zeros(1, 1, 1, 8)) is None
    assert "float32" in flash_cpp.unsupported(q.double(), k.double(), v.double(), None)
    assert "float32" in flash_cpp.unsupported(q.bfloat16(), k.bfloat16(), v.bfloat16(), None)
    assert "float32" in flash_cpp.unsupported(q, k, v.half(), None)
    meta = torch.empty(1, 2, 8, 16, device="meta")
    assert "CPU" in flash_cpp.unsupported(meta, k, v, None)
    assert "CPU" in flash_cpp.unsupported(q, k, v, torch.ones(1, 2, 8, 8, device="meta"))
    assert "mask" in flash_cpp.unsupported(q, k, v, torch.ones(1, 2, 8, 8, dtype=torch.int64))
    assert "broadcast" in flash_cpp.unsupported(q, k, v, torch.ones(1, 2, 8, 7, dtype=torch.bool))
    # a mask with more batches than q: it broadcasts with q's shape, but not to it
    assert "broadcast" in flash_cpp.unsupported(q, k, v, torch.ones(3, 2, 8, 8, dtype=torch.bool))
    assert "dimensions" in flash_cpp.unsupported(q[0], k[0], v[0], None)
    assert "match" in flash_cpp.unsupported(q, k[..., :8], v, None)
    with pytest.raises(FlashKernelError, match="float32"):
        flash_cpp.forward(q.double(), k.double(), v.double(), None, False, 0.25)


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("Lq, Lk", [(1, 1), (1, 300), (3, 17), (4, 129)])
@pytest.mark.parametrize("mask", ["none", "bool", "float"])
def test_few_queries_against_a_long_cache(Lq, Lk, mask, is_causal):
    """Decoding (up to FEW_QUERIES query rows, flash_attention.cpp `few_queries_fwd`): every key
    read where it is, through a padding mask with a hidden row, one shared K/V head (stride 0) and
    keys whose head dim is strided. A causal random mask leaves rows one or two keys: there the
    backward's dP - rowsum(dO * O) cancels, and the gradients' error has a long tail, so those
    cases are held to FEW_KEYS_TOL (figures: docs/BENCHMARKS.md), still orders of magnitude below a
    wrong kernel's error; the others keep TOL."""
    B, H, D = 2, 4, 40
    q = rand(B, H, Lq, D)
    k = rand(B, Lk, 1, D).transpose(1, 2).expand(B, H, Lk, D)  # stride 0 over heads
    v = rand(B, 1, D, Lk).transpose(2, 3).expand(B, H, Lk, D)  # head dim strided
    m = None
    if mask != "none":
        visible = torch.rand(B, 1, Lq, Lk) > 0.3
        visible[0, 0, 0] = False  # a query that sees no key
        m = visible if mask == "bool" else torch.zeros(visible.shape).masked_fill(~visible, float("-inf")) \
            + 0.5 * torch.randn(visible.shape)
        m = m.expand(B, H, Lq, Lk)
    few_keys = is_causal and m is not None  # rows left one or two keys
    check(q, k, v, mask=m, is_causal=is_causal, tol=FEW_KEYS_TOL if few_keys else TOL)


def test_few_queries_on_two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        check(rand(1, 3, 1, 64), rand(1, 3, 257, 64), rand(1, 3, 257, 64))
    finally:
        torch.set_num_threads(before)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return set(next((line for line in f if line.startswith("flags")), "").split())
    except OSError:
        return set()


# Each x86-64 level the kernel has a path for: 16-float vectors with AVX-512, 8 with AVX2 and FMA,
# and plain vector extensions split over SSE registers. -march=native picks one; the others are
# built here, where the processor can run them, so that every path is checked on some machine.
_LEVELS = {"x86-64": {"sse2"}, "x86-64-v3": {"avx2", "fma"},
           "x86-64-v4": {"avx512f", "avx512bw", "avx512dq", "avx512vl"}}


@pytest.mark.parametrize("level", sorted(_LEVELS))
def test_every_vector_width_this_processor_runs(level, monkeypatch):
    import platform

    from tensorsmith.codegen.cpp import build
    if platform.machine() != "x86_64" or not _LEVELS[level] <= _cpu_flags():
        pytest.skip(f"this processor does not run {level}")
    monkeypatch.setattr(build, "FLAGS", [f"-march={level}" if f == "-march=native" else f for f in build.FLAGS])
    flash_cpp._library.cache_clear()
    try:
        check(rand(1, 2, 70, 40), rand(1, 2, 131, 40), rand(1, 2, 131, 40), is_causal=True)
        check(rand(2, 2, 37, 64), rand(2, 2, 37, 64), rand(2, 2, 37, 64),
              mask=torch.rand(2, 1, 37, 37) > 0.3)
        check(rand(1, 3, 1, 64), rand(1, 3, 257, 64), rand(1, 3, 257, 64))  # few queries
    finally:
        flash_cpp._library.cache_clear()
