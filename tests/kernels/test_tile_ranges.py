"""The mask pre-pass of the flash-attention kernels (kernels/tile_ranges.py), run by Triton's
interpreter: the [lo, full_lo, full_hi, hi) ranges it writes against ranges worked out here with
torch ops from the definition (a tile is empty if nothing in it is visible, full if everything in it
is visible unchanged), and by hand for a tril mask."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from tensorsmith.kernels.flash_triton_launch import mask_args, mask_ranges
from tensorsmith.kernels.tile_ranges import Job


@pytest.fixture(autouse=True)
def _interpreted_triton(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    yield


def _ranges(mask, is_causal, jobs):
    """Runs the pre-pass on `mask` (B, H, Lq, Lk); the ranges per job as (B, H, n_outer, 4) tensors."""
    B, H, Lq, Lk = mask.shape
    q = torch.empty(B, H, Lq, 16)
    m, m_strides, kind = mask_args(mask, q)
    launches, ranges = mask_ranges(m, m_strides, kind, is_causal, B, H, Lq, Lk, jobs)
    assert len(launches) == (2 if Lq and Lk else 0)  # two launches, whatever the jobs
    for launch in launches:
        launch.run()
    return [r.tensor.as_strided((B, H, r.tensor.shape[1], 4),
                                (r.batch_stride, r.head_stride, 4, 1)) for r in ranges]


def _expected(mask, is_causal, job):
    """The ranges by definition: per outer block, each inner tile empty / full / partial."""
    B, H, Lq, Lk = mask.shape
    if mask.dtype == torch.bool:
        visible, clean = mask, mask
    else:
        visible, clean = mask != -torch.inf, mask == 0
    if is_causal:
        tril = torch.ones(Lq, Lk, dtype=torch.bool).tril()
        visible, clean = visible & tril, clean & tril
    if not job.queries_outer:
        visible, clean = visible.transpose(-2, -1), clean.transpose(-2, -1)
    n_out, n_in = -(-visible.shape[-2] // job.block_outer), -(-visible.shape[-1] // job.block_inner)
    want = torch.zeros(B, H, n_out, 4, dtype=torch.int32)
    for b in range(B):
        for h in range(H):
            for o in range(n_out):
                rows = slice(o * job.block_outer, (o + 1) * job.block_outer)
                seen, full = [], []
                for t in range(n_in):
                    cols = slice(t * job.block_inner, (t + 1) * job.block_inner)
                    seen.append(bool(visible[b, h, rows, cols].any()))
                    full.append(bool(clean[b, h, rows, cols].all()))
                hits = [t for t in range(n_in) if seen[t]]
                lo, hi = (hits[0], hits[-1] + 1) if hits else (0, 0)
                full_lo = next((t for t in range(n_in) if full[t]), hi)
                full_hi = next((t for t in range(full_lo, n_in) if not full[t]), n_in)
                want[b, h, o] = torch.tensor([lo, full_lo, min(full_hi, hi), hi])
    return want


JOBS = [Job(True, 32, 16), Job(False, 32, 16)]  # as the dQ and dK/dV kernels under the interpreter


def test_tril_tiles_above_the_diagonal_are_empty_and_below_full():
    L = 64
    mask = torch.ones(L, L, dtype=torch.bool).tril()[None, None].expand(2, 3, L, L)
    by_queries, by_keys = _ranges(mask, False, JOBS)
    assert by_queries.shape == (2, 3, 2, 4) and by_queries.stride()[:2] == (0, 0)  # summarized once
    # query block i (32 rows) over key tiles of 16: full up to the diagonal, two partial ones on it
    assert by_queries[0, 0].tolist() == [[0, 2, 2, 2], [0, 0, 2, 4]]
    # key block n (32 keys) over query tiles of 16: two partial ones on the diagonal, then full
    assert by_keys[0, 0].tolist() == [[0, 2, 4, 4], [2, 4, 4, 4]]
    for got, job in zip((by_queries, by_keys), JOBS):
        assert torch.equal(got, _expected(mask, False, job))


def _window(Lq, Lk, width):
    i, j = torch.arange(Lq)[:, None], torch.arange(Lk)[None, :]
    return (j <= i) & (j > i - width)


@pytest.mark.parametrize("name", ["tril", "window", "padding", "dead_rows", "random", "alibi"])
@pytest.mark.parametrize("Lq,Lk", [(45, 19), (19, 45), (70, 70)])
@pytest.mark.parametrize("is_causal", [False, True])
def test_ranges_match_the_definition(name, Lq, Lk, is_causal):
    B, H = 2, 2
    if name == "tril":
        mask = torch.ones(Lq, Lk, dtype=torch.bool).tril()[None, None].expand(B, H, Lq, Lk)
    elif name == "window":  # additive
        mask = torch.zeros(Lq, Lk).masked_fill(~_window(Lq, Lk, 20), -torch.inf).expand(B, H, Lq, Lk)
    elif name == "padding":  # per batch, broadcast over heads and queries
        keep = torch.arange(Lk)[None, :] < torch.tensor([Lk, 3])[:, None]
        mask = keep[:, None, None, :].expand(B, H, Lq, Lk)
    elif name == "dead_rows":  # per head: whole query rows and key columns masked
        mask = torch.rand(1, H, Lq, Lk) > 0.2
        mask[:, :, 3:7] = False
        mask[:, :, :, 16:] = False
        mask = mask.expand(B, H, Lq, Lk)
    elif name == "random":
        mask = torch.rand(B, H, Lq, Lk) > 0.9
    else:  # additive, no -inf, a few exact zeros: partial everywhere
        mask = -(torch.arange(Lk)[None, :] - torch.arange(Lq)[:, None]).abs().float()
        mask = (mask * torch.tensor([0.0, 0.5])[:, None, None]).expand(B, H, Lq, Lk)
    for got, job in zip(_ranges(mask, is_causal, JOBS), JOBS):
        assert torch.equal(got.contiguous(), _expected(mask, is_causal, job)), job


def test_summary_covers_only_the_masks_own_batch_and_heads():
    B, H, L = 3, 4, 40
    mask = (torch.rand(1, H, L, L) > 0.5).expand(B, H, L, L)
    (by_queries,) = _ranges(mask, False, JOBS[:1])
    assert by_queries.stride()[:3] == (0, 8, 4)  # stride 0 over the batch; 2 query blocks a head
    assert torch.equal(by_queries.contiguous(), _expected(mask, False, JOBS[0]))


def test_no_keys_gives_empty_ranges():
    (by_queries,) = _ranges(torch.ones(1, 1, 20, 0, dtype=torch.bool), False, JOBS[:1])
    assert (by_queries == 0).all()
