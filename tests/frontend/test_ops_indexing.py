"""Differential tests of the indexing lowerings (tensorsmith/frontend/lowering/indexing.py):
embedding, index_select, indexing with one index tensor, index_put (accumulating), gather, scatter."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from op_cases import (FEW, aten, bools, compile_check, direct_check, ints, lay_out, layouts,
                      lowering_declines, randn, shapes, strided, transposed)


def indices(size: int, *shape, negative: bool = True):
    """Random valid indices into a dimension of `size`, some negative (counted from the end)."""
    idx = torch.randint(0, size, shape)
    if negative:
        idx = torch.where(torch.rand(shape) > 0.5, idx - size, idx)
    return idx


@FEW
@given(shape=shapes(1, 3, 1, 5), index_shape=shapes(1, 2, 1, 4), layout=layouts(),
       dtype=st.sampled_from([torch.float32, torch.float64]), data=st.data())
def test_index_with_one_tensor(shape, index_shape, layout, dtype, data):
    """x[idx], x[:, idx], x[..., idx] with index tensors of any rank, negative entries included;
    the backward is an accumulating index_put (repeated indices add up)."""
    dim = data.draw(st.integers(0, len(shape) - 1))
    x = lay_out(randn(*shape, dtype=dtype), layout)
    idx = indices(shape[dim], *index_shape)
    key = (slice(None),) * dim + (idx,)

    def fn(x, idx):
        return x[key] * 2, x[..., idx % x.shape[-1]]
    compile_check(fn, x, idx, native=[aten.index.Tensor, aten.index_put.default])


@FEW
@given(shape=shapes(1, 3, 1, 5), count=st.integers(0, 6), layout=layouts(), data=st.data())
def test_index_select(shape, count, layout, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = lay_out(randn(*shape), layout)
    idx = indices(shape[dim], count, negative=False)  # index_select rejects negative indices

    def fn(x, idx):
        return torch.index_select(x, dim, idx) * 3, torch.index_select(x, dim, idx.int())
    compile_check(fn, x, idx, native=[aten.index_select.default])


def test_indexing_integer_and_bool_tensors():
    def fn(x, b, idx):
        return x[idx], x[:, idx], b[idx], b.index_select(1, idx), x.index_select(0, idx[:2])
    compile_check(fn, ints(5, 5), bools(5, 5), indices(5, 3, negative=False), exact=True,
                  native=[aten.index.Tensor, aten.index_select.default])


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_embedding(padding_idx):
    """F.embedding: decomposed to index_select for 1-d indices, to indexing for others; its backward
    is an accumulating index_put, in which the padding row gets no gradient."""
    weight = randn(7, 4)
    idx = torch.randint(0, 7, (3, 5))
    idx[0, 0], idx[1, 1], idx[2, 2] = 0, 6, 6  # the padding row is used, some rows repeat
    compile_check(lambda w, i: F.embedding(i, w, padding_idx=padding_idx) * 2, weight, idx,
                  native=[aten.index.Tensor, aten.index_put.default])
    compile_check(lambda w, i: F.embedding(i, w, padding_idx=padding_idx) * 2, weight, idx[0],
                  native=[aten.index_select.default, aten.index_put.default])
    module = torch.nn.Embedding(7, 4, padding_idx=padding_idx)
    compile_check(module, idx, native=[aten.index.Tensor, aten.index_put.default])


def test_embedding_overload_directly():
    weight = transposed(randn(7, 4))
    direct_check(aten.embedding.default, weight, indices(7, 2, 3, negative=False))
    direct_check(aten.embedding.default, weight, indices(7, 5, negative=False), 0)
    direct_check(aten.embedding.default, ints(5, 2), torch.tensor(3))


def test_index_put_accumulate():
    """index_put with accumulate=True (index_add_, embedding backward); repeated indices add."""
    x = randn(5, 3)
    idx = torch.tensor([0, 2, 0, -1, 4, 2])
    values, row = randn(6, 3), randn(3)

    def fn(x, idx, values, row):
        return (torch.index_put(x, (idx,), values, accumulate=True),
                torch.index_put(x, (idx,), row, accumulate=True),
                x.index_add(0, idx.abs(), values))
    compile_check(fn, x, idx, values, row, native=[aten.index_put.default])


def test_index_put_overloads_directly():
    x, idx = randn(5, 3), torch.tensor([[0, 2], [0, -1]])
    direct_check(aten.index_put.default, x, [idx], randn(2, 2, 3), True)
    direct_check(aten.index_put.default, x, [None, idx % 3], randn(5, 2, 2), True)
    direct_check(aten.index_put.default, ints(5, 3), [idx], ints(3), True)
    direct_check(aten._unsafe_index_put.default, x, [idx], randn(1, 3), True)
    direct_check(aten._unsafe_index.Tensor, x, [None, idx % 3])
    direct_check(aten.index.Tensor, transposed(x), [idx])


def test_index_put_without_accumulate_falls_back_correctly():
    """x[idx] = v (no accumulation) is not lowered; its fallback must still be right."""
    def fn(x, idx, v):
        y = x.clone()
        y[idx] = v
        return y * 2
    _, lowered = compile_check(fn, randn(5, 3), torch.tensor([4, 0, 2]), randn(3, 3),
                               native=[aten.mul.Tensor])
    lowered.assert_fallback(aten.index_put.default)


@FEW
@given(shape=shapes(1, 3, 1, 4), layout=layouts(), dtype=st.sampled_from([torch.float32,
                                                                         torch.float64]),
       data=st.data())
def test_gather(shape, layout, dtype, data):
    """gather along any dim with an index smaller than the input in the other dims; its backward
    is scatter_add."""
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    index_shape = [data.draw(st.integers(1, 5)) if d == dim % len(shape) else
                   data.draw(st.integers(1, s)) for d, s in enumerate(shape)]
    x = lay_out(randn(*shape, dtype=dtype), layout)
    idx = indices(shape[dim], *index_shape, negative=False)
    compile_check(lambda x, idx: torch.gather(x, dim, idx) * 2, x, idx,
                  native=[aten.gather.default, aten.scatter_add.default])


def _unique_indices(size: int, rows: int, count: int):
    """Per row, `count` distinct indices into `size` (scatter with duplicates is nondeterministic)."""
    return torch.stack([torch.randperm(size)[:count] for _ in range(rows)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_scatter_and_scatter_add(dtype):
    x = randn(3, 5).to(dtype) if dtype.is_floating_point else ints(3, 5)
    idx = _unique_indices(5, 3, 3)
    src = randn(3, 3).to(dtype) if dtype.is_floating_point else ints(3, 3)
    dup = torch.randint(0, 5, (3, 4))  # repeated indices: scatter_add accumulates them
    dup_src = randn(3, 4).to(dtype) if dtype.is_floating_point else ints(3, 4)

    idx0 = _unique_indices(3, 5, 2).t()  # along dim 0: distinct per column
    src0 = randn(2, 5).to(dtype) if dtype.is_floating_point else ints(2, 5)

    def fn(x, idx, src, dup, dup_src, idx0, src0):
        return (torch.scatter(x, 1, idx, src), torch.scatter(x, 1, idx, 2), x.scatter(-1, idx, -1.5
                if x.dtype.is_floating_point else -1), torch.scatter_add(x, 1, dup, dup_src),
                torch.scatter(x, 0, idx0, src0), torch.scatter_add(x, 0, dup[:2] % 3, dup_src[:2]))
    native = [aten.scatter.src, aten.scatter.value, aten.scatter_add.default]
    if dtype.is_floating_point:
        compile_check(fn, x, idx, src, dup, dup_src, idx0, src0, native=native + [aten.gather.default])
    else:
        compile_check(fn, x, idx, src, dup, dup_src, idx0, src0, exact=True, native=native)


def test_scatter_overloads_directly():
    x = strided(randn(4, 5))
    idx = _unique_indices(5, 4, 2)
    direct_check(aten.scatter.src, x, 1, idx, randn(4, 2))
    direct_check(aten.scatter.value, x, 1, idx, 3.5)
    direct_check(aten.scatter.value, ints(4, 5), 1, idx, 7)
    direct_check(aten.scatter_add.default, x, 0, torch.randint(0, 4, (6, 5)), randn(6, 5))
    direct_check(aten.gather.default, x, 1, torch.randint(0, 5, (4, 7)))
    direct_check(aten.gather.default, x, 0, torch.randint(0, 4, (2, 3)))
    direct_check(aten.index_select.default, x, 1, torch.tensor([4, 0, 0]))


def test_indexing_zero_size():
    def fn(x, idx):
        return x[idx] * 2, x.index_select(1, idx), torch.gather(x, 1, idx.expand(3, 0))
    compile_check(fn, randn(3, 4), torch.empty(0, dtype=torch.int64),
                  native=[aten.index.Tensor, aten.index_select.default])


def test_uint8_index_is_a_mask_not_indices():
    """ATen reads a uint8 index tensor as a boolean mask; the lowerings must not take it for
    indices (an all-ones mask of length 3 has the shape of three indices 1, 1, 1)."""
    x, mask = randn(3, 4), torch.tensor([1, 1, 1], dtype=torch.uint8)
    assert lowering_declines(aten.index.Tensor, x, [mask])
    assert lowering_declines(aten.index_put.default, x, [mask], randn(4), True)
    assert lowering_declines(aten.index.Tensor, x, [mask.bool()])
    assert not lowering_declines(aten.index.Tensor, x, [mask.long()])
    direct_check(aten.index.Tensor, x, [mask.int()])


def test_index_select_with_a_zero_dim_index():
    """A 0-dim index selects a dimension of size 1 (it is not dropped, unlike x[i])."""
    x = randn(3, 4)
    direct_check(aten.index_select.default, x, 1, torch.tensor(2))
    # Forward only: PyTorch's own decomposition of index_select_backward breaks on a 0-dim index
    # (it fails the same way with backend="aot_eager_decomp_partition").
    compile_check(lambda x, i: torch.index_select(x, 0, i) * 2, x, torch.tensor(1), grads=False,
                  native=[aten.index_select.default])


@FEW
@given(shape=shapes(2, 4, 1, 5), index_shape=shapes(1, 2, 1, 4), layout=layouts(), data=st.data())
def test_index_with_adjacent_tensors(shape, index_shape, layout, data):
    """x[i, j], x[:, i, j] with index tensors that broadcast together (Hugging Face's mask
    functions, nearest-neighbour upsampling), negative entries included; the backward is an
    accumulating index_put over the same indices."""
    first = data.draw(st.integers(0, len(shape) - 2))
    count = data.draw(st.integers(2, len(shape) - first))
    x = lay_out(randn(*shape), layout)
    idx = [indices(shape[first + k], *(index_shape if k % 2 == 0 else index_shape[-1:]))
           for k in range(count)]  # shapes that broadcast together, none 0-dim (a Python int to Dynamo)

    def fn(x, *idx):
        return (x[(slice(None),) * first + tuple(idx)] * 2,)
    compile_check(fn, x, *idx, native=[aten.index.Tensor, aten.index_put.default])


def test_index_with_several_tensors_checks_each_range():
    """An index out of its own dim's range raises, even where the combined offset would land inside
    the tensor (x[0, 5] of a 4x4 is x[1, 1] in memory)."""
    x = randn(4, 4)
    f = torch.compile(lambda x, i, j: x[i, j] + 1, backend="tensorsmith")
    i, j = torch.tensor([0, 3, -1]), torch.tensor([1, -4, 2])
    torch.testing.assert_close(f(x, i, j), x[i, j] + 1)
    for bad in (torch.tensor([0, 5, 1]), torch.tensor([0, -5, 1])):
        with pytest.raises(IndexError):
            f(x, i, bad)
