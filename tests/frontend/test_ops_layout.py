"""as_strided, slice_scatter and index assignment: lowered where exact, else a safe fallback."""
from __future__ import annotations

import pytest
import torch
from helpers import check_against_eager

from tensorsmith import records


def _native():
    names = set()
    for r in records.RECORDS:
        names.update(r.native)
    return names


def test_slice_assignment_becomes_slice_scatter():
    records.reset()

    def f(x, z):
        y = x * 2
        y[:, 1:3] = z  # functionalized into slice_scatter
        return y.sin()

    check_against_eager(f, torch.randn(4, 5), torch.randn(4, 2))
    assert "aten.slice_scatter.default" in _native()


@pytest.mark.parametrize("size,start,end,step", [(8, 1, None, 2), (8, 0, None, 2), (7, 1, None, 2),
                                                  (9, 2, 8, 3), (6, 0, None, 5), (5, 4, None, 2)])
def test_strided_slice_assignment_becomes_slice_scatter(size, start, end, step):
    """x[:, 1::2] = z (Mamba's associative scan), spans that end inside the tensor and past it."""
    records.reset()
    count = len(range(start, size if end is None else end, step))

    def f(x, z):
        y = x * 2
        y[:, start:end:step] = z  # functionalized into slice_scatter with a step
        return y.sin()

    gen = torch.Generator().manual_seed(size * 100 + start * 10 + step)
    check_against_eager(f, torch.randn(3, size, 2, generator=gen), torch.randn(3, count, 2, generator=gen))
    assert "aten.slice_scatter.default" in _native()
    assert not any(r.fallbacks or r.whole_graph_fallback for r in records.RECORDS)


def test_index_assignment_is_imported_without_fallback():
    records.reset()

    def f(x, z):
        y = x + 1
        y[:, -1] = z * 3  # functionalized into select_scatter, which is decomposed
        return y.exp()

    check_against_eager(f, torch.randn(3, 4), torch.randn(3))
    assert not any(r.fallbacks or r.whole_graph_fallback for r in records.RECORDS)


def test_group_norm_as_strided_is_a_reshape():
    records.reset()
    check_against_eager(torch.nn.GroupNorm(3, 6), torch.randn(2, 6, 5, 4))
    assert "aten.as_strided.default" in _native()
    assert not any(r.fallbacks or r.whole_graph_fallback for r in records.RECORDS)


def test_as_strided_of_a_non_contiguous_eager_value_runs_the_graph_through_aten():
    records.reset()

    def f(x):
        y = x.t() * 2  # eager keeps x.t()'s transposed layout for y
        return torch.as_strided(y, (6,), (1,)) + 1  # reads y's memory in storage order

    x = torch.randn(2, 3)
    out = torch.compile(f, backend="tensorsmith")(x)
    torch.testing.assert_close(out, f(x))
    assert any("not contiguous" in (r.whole_graph_fallback or "") for r in records.RECORDS)
