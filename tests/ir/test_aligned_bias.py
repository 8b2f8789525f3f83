"""An attention bias handed to PyTorch's memory-efficient kernel is laid out as eager's SDPA lays it
out (unit last stride, 16-element-aligned rows), whatever view the graph made of it (Swin's
relative-position mask arrived broadcast along its last dim: "last dimension must be contiguous")."""
from __future__ import annotations

import torch

from tensorsmith.ir.aten import aligned_bias


def _check(bias, keys=None):
    out = aligned_bias(bias, keys or bias.size(-1))
    assert torch.equal(out, bias.expand_as(out)) and out.size(-1) == (keys or bias.size(-1))
    assert out.stride(-1) == 1
    assert all(s % 16 == 0 for s, n in zip(out.stride()[:-1], out.shape[:-1]) if n > 1)
    return out


def test_broadcast_and_unaligned_biases_are_laid_out_again():
    gen = torch.Generator().manual_seed(4)
    column = torch.randn(2, 3, 7, 1, generator=gen)
    _check(column.expand(2, 3, 7, 7))  # stride 0 along the last dim
    _check(torch.randn(2, 3, 7, 7, generator=gen))  # rows of 7: not aligned
    _check(torch.randn(2, 3, 9, 5, generator=gen).transpose(-1, -2))  # last stride 5
    _check(column, keys=7)  # broadcast along the keys by its size of 1: expanded, laid out
    _check(column.expand(2, 3, 7, 32), keys=32)  # stride 0, rows already multiples of 16 apart


def test_an_aligned_bias_is_passed_as_it_is():
    bias = torch.randn(2, 4, 8, 32, generator=torch.Generator().manual_seed(5))
    assert aligned_bias(bias, 32) is bias
    broadcast_heads = bias[:, :1].expand(2, 4, 8, 32)  # stride 0 over heads: fine for the kernel
    assert aligned_bias(broadcast_heads, 32) is broadcast_heads
