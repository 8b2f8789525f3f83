"""Differential tests of the creation lowerings (tensorsmith/frontend/lowering/creation.py: full,
zeros/ones/empty and *_like, scalar_tensor, arange, rand/randn) and of matrix products and
convolution (nn.py)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from op_cases import (FEW, HALF_TOLERANCE, aten, compile_check, direct_check, fresh_compile, ints,
                      lowered, op_executor, randn, strided, transposed)


# -- filled tensors --------------------------------------------------------------------------------
def test_full_zeros_ones():
    def mixed(x):
        return (x + torch.zeros(3, 4), x * torch.ones(4), torch.ones_like(x) * x,
                torch.scalar_tensor(1.5) * x, torch.tensor(2.0) * x, x.new_full((3, 4), -1.5) - x)

    def constants(x):
        return (torch.full((2, 3), 2.5), torch.full_like(x, 7), torch.zeros_like(x, dtype=torch.int32),
                x.new_zeros(5), x.new_ones((2, 2), dtype=torch.float64), torch.full((2,), True),
                torch.full((2, 2), 3), torch.zeros(0, 3), torch.ones(()), torch.scalar_tensor(-2))
    compile_check(mixed, randn(3, 4), native=[aten.full.default, aten.scalar_tensor.default])
    compile_check(constants, randn(3, 4), exact=True,
                  native=[aten.full.default, aten.full_like.default, aten.scalar_tensor.default])


def test_empty_has_the_right_shape_and_type():
    """empty's values are undefined: compare only what they are, and what is computed over them."""
    def fn(x):
        e = torch.empty(3, 4)
        return (e.shape, e.dtype, torch.empty_like(x, dtype=torch.int64).fill_(3),
                torch.empty(2, 4).fill_(1.5) + x[:2], x.new_empty((2,)).zero_() + 1)
    x = randn(3, 4)
    fresh_compile()
    with op_executor():
        compiled = torch.compile(fn, backend="tensorsmith")(x)
    eager = fn(x)
    assert compiled[:2] == eager[:2]
    for a, e in zip(compiled[2:], eager[2:]):
        assert a.dtype == e.dtype and torch.equal(a, e)
    lowered().assert_native(aten.full_like.default)
    fresh_compile()
    with op_executor():
        compiled = torch.compile(lambda x: (torch.empty(3, 4, dtype=torch.float64), x + 1),
                                 backend="tensorsmith")(randn(2))
    assert compiled[0].shape == (3, 4) and compiled[0].dtype == torch.float64
    lowered().assert_native(aten.empty.memory_format)


def test_creation_overloads_directly():
    """The overloads AOTAutograd decomposes into full/full_like before the importer sees them."""
    x = transposed(randn(3, 4))
    direct_check(aten.zeros.default, [2, 3])
    direct_check(aten.zeros.default, [2, 0], dtype=torch.int64)
    direct_check(aten.ones.default, [4], dtype=torch.float64)
    direct_check(aten.ones.default, [2, 2], dtype=torch.bool)
    direct_check(aten.new_zeros.default, x, [5])
    direct_check(aten.new_zeros.default, x, [2, 3], dtype=torch.int32)
    direct_check(aten.new_ones.default, ints(2), [3, 1])
    direct_check(aten.zeros_like.default, x)
    direct_check(aten.ones_like.default, x, dtype=torch.float16)
    direct_check(aten.ones_like.default, ints(2, 2))
    direct_check(aten.full.default, [2, 3], 1.25, dtype=torch.float64)
    direct_check(aten.full.default, [3], 4)
    direct_check(aten.full_like.default, x, -3)
    direct_check(aten.scalar_tensor.default, 2, dtype=torch.int64)
    direct_check(aten.scalar_tensor.default, True, dtype=torch.bool)
    # empty's values are undefined: only its type is compared
    direct_check(aten.empty.memory_format, [2, 3], compare_values=False)
    direct_check(aten.empty.memory_format, [4], dtype=torch.int32, compare_values=False)
    direct_check(aten.new_empty.default, x, [2, 2], compare_values=False)
    direct_check(aten.empty_like.default, x, compare_values=False)
    direct_check(aten.empty_like.default, ints(3), dtype=torch.float64, compare_values=False)


# -- arange ------------------------------------------------------------------------------------------
@FEW
@given(start=st.integers(-20, 20), length=st.integers(1, 40), step=st.sampled_from([1, 2, 3, -1, -4]),
       scale=st.sampled_from([1, 0.5, 0.25, 0.1]))
def test_arange(start, length, step, scale):
    end = start + length * step

    def fn(x):
        return (torch.arange(length) + x, torch.arange(length, dtype=torch.float32) * x,
                torch.arange(start * scale, end * scale, step * scale)[:length] * x)

    def exact(x):
        return (torch.arange(start, end, step), torch.arange(start, end, step, dtype=torch.float64),
                torch.arange(1, length + 1) * 2, torch.arange(start * scale, end * scale, step * scale))
    compile_check(fn, randn(length), native=[aten.arange.start_step])
    compile_check(exact, randn(length), tol=1e-6, grads=False, native=[aten.arange.start_step])


ARANGES = [(0.5, 600, 1.5), (-3.3, 7.1, 0.01), (0, 5000, 1), (1000.5, 1100, 0.25), (-7, 300, 0.3)]


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_arange_half(dtype):
    """In float16/bfloat16, start + step * i must be computed wide and rounded once (not all the
    indices are representable): never further from the exact values than eager is."""
    def fn(x):
        return tuple(torch.arange(*args, dtype=dtype) for args in ARANGES)
    out, _ = compile_check(fn, torch.tensor(1.0, dtype=dtype), tol=HALF_TOLERANCE[dtype], grads=False,
                           native=[aten.arange.start_step])
    for args, compiled, eager in zip(ARANGES, out, fn(None)):
        start, _, step = args
        exact = start + step * torch.arange(len(eager), dtype=torch.float64)
        error = (compiled.double() - exact).abs().max()
        assert error <= (eager.double() - exact).abs().max(), f"arange{args}: error {error}"


def test_arange_overloads_directly():
    direct_check(aten.arange.default, 5)
    direct_check(aten.arange.default, 7, dtype=torch.float32)
    direct_check(aten.arange.start, 2, 9)
    direct_check(aten.arange.start, -1.5, 2.5)
    direct_check(aten.arange.start_step, 10, 1, -3)
    direct_check(aten.arange.start_step, 0.5, 3.1, 0.7)
    direct_check(aten.arange.start_step, 0, 10, 3, dtype=torch.int32)
    direct_check(aten.arange.start_step, 0, 100000, 1, dtype=torch.float32)


# -- random sampling ----------------------------------------------------------------------------------
def test_random_sampling_has_the_right_distribution():
    def fn(x):
        return (torch.rand(4000), torch.randn(4000), torch.rand_like(x), torch.randn_like(x),
                torch.rand(2, 3, dtype=torch.float64), torch.randn(0, 2))
    fresh_compile()
    x = randn(50, 80)
    compiled = torch.compile(fn, backend="tensorsmith")
    with op_executor():
        u, n, ul, nl, u64, empty = compiled(x)
        again = compiled(x)
    lowered().assert_native(aten.rand.default, aten.randn.default, aten.rand_like.default,
                            aten.randn_like.default)
    assert (u.shape, ul.shape, nl.shape, u64.dtype, empty.shape) == (
        (4000,), x.shape, x.shape, torch.float64, (0, 2))
    for uniform in (u, ul, u64):
        assert 0 <= uniform.min() and uniform.max() < 1
    for uniform in (u, ul):
        assert abs(uniform.mean().item() - 0.5) < 0.05 and abs(uniform.std().item() - 0.2887) < 0.03
    for normal in (n, nl):
        assert abs(normal.mean().item()) < 0.1 and abs(normal.std().item() - 1) < 0.1
    assert not torch.equal(u, again[0]) and not torch.equal(nl, again[3])  # fresh samples per call


def test_dropout_keeps_mask_consistent_with_gradient():
    """Dropout in training mode (rand_like, compare, mul): each output is 0 or x / (1 - p), and the
    gradient is the same mask."""
    fresh_compile()
    x = (randn(40, 50).abs() + 0.1).requires_grad_()
    compiled = torch.compile(lambda x: F.dropout(x, 0.25, training=True), backend="tensorsmith")
    with op_executor():
        out = compiled(x)
        (grad,) = torch.autograd.grad(out.sum(), x)
    kept = out != 0
    assert 0.65 < kept.float().mean().item() < 0.85
    torch.testing.assert_close(out[kept], (x / 0.75)[kept])
    torch.testing.assert_close(grad, kept.float() / 0.75)
    lowered().assert_native(aten.rand_like.default)


# -- matrix products -------------------------------------------------------------------------------------
@FEW
@given(m=st.integers(1, 5), k=st.integers(1, 5), n=st.integers(1, 5), batch=st.integers(1, 3),
       dtype=st.sampled_from([torch.float32, torch.float64]), layout=st.booleans())
def test_matrix_products(m, k, n, batch, dtype, layout):
    a, b, bias = randn(m, k, dtype=dtype), randn(k, n, dtype=dtype), randn(n, dtype=dtype)
    ba, bb = randn(batch, m, k, dtype=dtype), randn(batch, k, n, dtype=dtype)
    if layout:
        a, b, ba = transposed(a), transposed(b), transposed(ba)

    def fn(a, b, bias, ba, bb):
        return (a @ b, torch.mm(a, b), torch.addmm(bias, a, b), torch.addmm(bias, a, b, beta=0.5, alpha=2),
                torch.addmm(bias.expand(m, n), a, b, beta=0), torch.bmm(ba, bb), ba @ b,
                F.linear(a, b.t(), bias), a @ b[:, 0], torch.matmul(ba, bb[0]))
    compile_check(fn, a, b, bias, ba, bb, native=[aten.mm.default, aten.addmm.default, aten.bmm.default])


def test_addmm_with_beta_zero_ignores_nan_bias():
    bias = torch.full((3,), float("nan"))
    compile_check(lambda bias, a, b: torch.addmm(bias, a, b, beta=0), bias, randn(2, 4), randn(4, 3),
                  grads=False, native=[aten.addmm.default])


def test_matrix_products_zero_size_and_half():
    def fn(a, b):
        return a @ b, torch.addmm(b.sum(0), a, b)
    compile_check(fn, randn(0, 3), randn(3, 2), native=[aten.mm.default])
    compile_check(fn, randn(2, 0), randn(0, 2), native=[aten.mm.default])
    compile_check(fn, randn(3, 4, dtype=torch.bfloat16), randn(4, 5, dtype=torch.bfloat16),
                  tol=HALF_TOLERANCE[torch.bfloat16], native=[aten.mm.default, aten.addmm.default])


def test_matrix_product_overloads_directly():
    a, b = transposed(randn(3, 4)), randn(4, 2)
    direct_check(aten.mm.default, a, b)
    direct_check(aten.bmm.default, randn(2, 3, 4), strided(randn(2, 4, 5)))
    direct_check(aten.addmm.default, randn(2), a, b, beta=3, alpha=-1)
    direct_check(aten.addmm.default, randn(3, 1), a, b)


# -- convolution -----------------------------------------------------------------------------------------
CONVOLUTIONS = [
    # (spatial dims, groups, stride, padding, dilation, bias)
    (1, 1, 1, 0, 1, True), (1, 2, 2, 1, 1, False), (2, 1, 1, 1, 1, True), (2, 1, 2, 0, 2, True),
    (2, 3, (2, 1), (1, 0), 1, False), (3, 1, 1, 1, 1, True),
]


@pytest.mark.parametrize("spatial,groups,stride,padding,dilation,bias", CONVOLUTIONS)
def test_convolution(spatial, groups, stride, padding, dilation, bias):
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    x = randn(2, 3 * groups, *[6] * spatial)
    w = randn(2 * groups, 3, *[3] * spatial)
    b = randn(2 * groups) if bias else None
    compile_check(lambda x, w, b: conv(x, w, b, stride=stride, padding=padding, dilation=dilation,
                                       groups=groups), x, w, b, native=[aten.convolution.default])


@pytest.mark.parametrize("spatial,groups,stride,output_padding", [(1, 1, 2, 1), (2, 2, 2, 0),
                                                                  (2, 1, 1, 0)])
def test_transposed_convolution(spatial, groups, stride, output_padding):
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d}[spatial]
    x = randn(2, 2 * groups, *[4] * spatial)
    w = randn(2 * groups, 3, *[3] * spatial)
    compile_check(lambda x, w, b: conv(x, w, b, stride=stride, padding=1, output_padding=output_padding,
                                       groups=groups), x, w, randn(3 * groups),
                  native=[aten.convolution.default])


def test_convolution_module_float64_and_padding_same():
    module = torch.nn.Conv2d(3, 4, 3, padding="same").double()
    compile_check(module, randn(1, 3, 5, 5, dtype=torch.float64), native=[aten.convolution.default])
    compile_check(lambda x, w: F.conv1d(x, w, padding="same"), randn(1, 2, 7), randn(3, 2, 4),
                  native=[aten.convolution.default])


def test_convolution_overload_directly():
    x, w = randn(1, 2, 5, 5), randn(4, 2, 3, 3)
    direct_check(aten.convolution.default, x, w, randn(4), [1], [1], [1], False, [0], 1)
    direct_check(aten.convolution.default, x, w, None, [2, 1], [0, 1], [1, 2], False, [0, 0], 1)
    direct_check(aten.convolution.default, x, randn(2, 3, 3, 3), randn(3), [2, 2], [1, 1], [1, 1],
                 True, [1, 1], 1)
