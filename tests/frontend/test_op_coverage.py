"""Every ATen op the importer claims (every key of LOWERINGS) is exercised natively, and correctly,
by at least one case of the table below.

Most cases go through torch.compile (Dynamo, AOTAutograd's decompositions, forward and backward
graphs), a batch of ops per compiled function; the union of the ops those graphs lowered natively is
collected. Ops that AOTAutograd decomposes before the importer sees them, and the rare overloads
only some graphs contain, are imported directly as one-op FX graphs and run on the reference
interpreter. The sweep then asserts that the union covers LOWERINGS: a new lowering without a case
here fails this test by name.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import op_cases
from op_cases import (aten, bools, compile_check, direct_check, ints, nonzero_ints, positive, prims,
                      randn, transposed, unit)
from tensorsmith.frontend.lowering import LOWERINGS
from tensorsmith.ir.aten import target_name


# -- compiled batches: (name, function, inputs, compile_check options) -------------------------------
def _unary(x, p, u, a):
    return (x.exp(), p.log(), p.log1p(), x.expm1(), p.sqrt(), p.rsqrt(), x.sin(), x.cos(), u.tan(),
            x.tanh(), x.sigmoid(), x.erf(), u.erfinv(), u.asin(), u.acos(), x.atan(), x.sinh(),
            x.cosh(), x.asinh(), a.acosh(), u.atanh(), p.log2(), x.exp2(), p.reciprocal(), -x,
            x.abs(), x.sign(), x.floor(), x.ceil(), x.round(), x.trunc())


def _binary(a, b):
    return (a + b, a - b, a * b, a / b, torch.maximum(a, b), torch.minimum(a, b), torch.fmod(a, b),
            torch.remainder(a, b), torch.atan2(a, b), torch.pow(a.abs() + 0.5, b), a ** 3, 2 ** a,
            torch.fmod(a, 1.5), torch.remainder(a, 0.7), torch.add(a, b, alpha=2), torch.relu(a),
            torch.where(a > b, a, b), a.double(), a.clone())


def _discrete(i, j, m, n):
    return (i == j, i != j, i < j, i <= j, i > j, i >= j, i == 1, i != 2, i < 0, i <= 3, i > -1,
            i >= 2, i & j, i | j, i ^ j, ~i, i & 3, i | 5, i ^ 6, m.logical_and(n), m.logical_or(n),
            m.logical_xor(n), m.logical_not(), i.float().isnan(), i.float().isinf(),
            torch.div(i, j, rounding_mode="floor"), torch.div(i, j, rounding_mode="trunc"))


def _reductions(x, p):
    return (x.sum(1), x.prod(0), p.prod(), x.mean(1), x.mean(), x.amax(0), x.max(), x.amin(1),
            x.min(), torch.var(x, 1), torch.var_mean(x, 0), x.argmax(1), x.argmin(), (x > 0).any(),
            (x > 0).any(1), torch.any(x > 0, (0, 1)))


def _views(x, y):
    return (x.contiguous().view(4, 3), x.expand(2, 3, 4), x.permute(1, 0), x.unsqueeze(1), x[None].squeeze(0),
            x[1:, ::2], x[1], x.split([1, 2]), torch.cat([x, y]), F.pad(x, (1, 2), value=0.5),
            x.flip(1))


def _indexing(x, i, g, s, src):
    return (x[i], x.index_select(1, i.abs()), torch.gather(x, 1, g), torch.scatter(x, 1, s, src),
            torch.scatter(x, 1, s, 2.0), torch.scatter_add(x, 1, g, x[:, :2]))


def _creation(x):
    return (x + torch.full((3, 4), 2.0), torch.full_like(x, 3) * x, torch.scalar_tensor(2.0) * x,
            torch.arange(4) * x, torch.rand(3) * 0, torch.randn(2) * 0, torch.rand_like(x) * 0,
            torch.randn_like(x) * 0)


def _products(a, b, bias, x, w):
    return a @ b, torch.bmm(a[None], b[None]), torch.addmm(bias, a, b), F.conv2d(x, w, bias[:2])


def _layout(x, z):
    y = x * 2
    y[:, 1:3] = z  # slice_scatter
    return y, torch.nn.functional.group_norm(x[None, :, :, None], 2)  # as_strided


def _g():
    return torch.randint(0, 4, (3, 2))


COMPILED = [
    ("unary", _unary, lambda: (randn(3, 4), positive(3, 4), unit(3, 4), positive(3, 4, low=1.2)), {}),
    ("binary", _binary, lambda: (randn(3, 4), positive(4) * torch.tensor([1.0, -1, 1, -1])), {}),
    ("discrete", _discrete, lambda: (nonzero_ints(3, 4), nonzero_ints(4), bools(3, 4), bools(4)),
     {"exact": True}),
    ("reductions", _reductions, lambda: (randn(3, 4), positive(3, 4)), {}),
    ("views", _views, lambda: (transposed(randn(3, 4)), randn(2, 4)), {}),
    ("indexing", _indexing, lambda: (randn(3, 4), torch.tensor([2, 0, -1]), _g(),
                                     torch.stack([torch.randperm(4)[:2] for _ in range(3)]),
                                     randn(3, 2)), {}),
    ("creation", _creation, lambda: (randn(3, 4),), {"grads": False}),
    ("products", _products, lambda: (randn(3, 4), randn(4, 5), randn(5), randn(1, 3, 5, 5),
                                     randn(2, 3, 3, 3)), {}),
    ("layout", _layout, lambda: (randn(4, 5), randn(4, 2)), {}),
]


# -- direct one-op imports: (op, args, kwargs) ------------------------------------------------------
def _direct_cases():
    x, n, b = randn(3, 4), nonzero_ints(3, 4), bools(3, 4)
    cases = [
        # decomposed before import
        (aten.zeros.default, ([2, 3],), {}), (aten.ones.default, ([3],), {}),
        (aten.new_zeros.default, (x, [2]), {}), (aten.new_ones.default, (x, [2]), {}),
        (aten.zeros_like.default, (x,), {}), (aten.ones_like.default, (n,), {}),
        (aten.arange.start, (1, 6), {}), (aten.arange.default, (5,), {}),
        (aten.where.ScalarSelf, (b, 1.5, x), {}), (aten.where.ScalarOther, (b, x, -1), {}),
        (aten.where.Scalar, (b, 1.5, 2.5), {}), (aten.masked_fill.Scalar, (x, b, 2.0), {}),
        (aten.masked_fill.Tensor, (x, b, torch.tensor(3.0)), {}),
        (aten.clamp.default, (x, -0.5, 0.5), {}), (aten.clamp.Tensor, (x, x - 1, x.abs()), {}),
        (aten.clamp_min.default, (x, 0.1), {}), (aten.clamp_min.Tensor, (x, randn(4)), {}),
        (aten.clamp_max.default, (x, 0.1), {}), (aten.clamp_max.Tensor, (x, randn(4)), {}),
        (aten.detach.default, (x,), {}), (aten.embedding.default, (x, torch.tensor([[0, 2]])), {}),
        (aten._unsafe_index.Tensor, (x, [None, torch.tensor([3, 0])]), {}),
        (aten._unsafe_index_put.default, (x, [torch.tensor([0, 0])], randn(2, 4), True), {}),
        (aten._unsafe_view.default, (x, [2, 6]), {}), (aten.t.default, (x,), {}),
        (aten.transpose.int, (x, 0, 1), {}), (aten.squeeze.default, (randn(1, 3, 1),), {}),
        (aten.squeeze.dim, (randn(1, 3), 0), {}), (aten.split.Tensor, (x, 2, 1), {}),
        (aten.unbind.int, (x, 1), {}), (aten.stack.default, ([x, x], 1), {}),
        (aten.sum.default, (n,), {}), (aten.all.default, (n,), {}), (aten.all.dim, (x, 1), {}),
        (aten.all.dims, (b, [0, 1]), {}),
        # in graphs from some functions only
        (aten.add.Scalar, (x, 2), {}), (aten.sub.Scalar, (n, 3), {}), (aten.mul.Scalar, (x, 1.5), {}),
        (aten.div.Scalar, (n, 4), {}), (aten.div.Scalar_mode, (n, -3), {"rounding_mode": "floor"}),
        (aten.div.Tensor_mode, (x, x.flip(0), ), {"rounding_mode": "floor"}),
        (aten.pow.Tensor_Scalar, (x, 3), {}), (aten.pow.Scalar, (2.0, x), {}),
        (aten.pow.Tensor_Tensor, (positive(3, 4), x), {}),
        (aten.fmod.Scalar, (n, 4), {}), (aten.remainder.Scalar, (n, 4), {}),
        (aten.bitwise_and.Scalar, (n, 6), {}), (aten.bitwise_or.Scalar, (n, 6), {}),
        (aten.bitwise_xor.Scalar, (n, 6), {}), (aten.eq.Scalar, (n, 1), {}),
        (aten.ne.Scalar, (n, 1), {}), (aten.lt.Scalar, (n, 1), {}), (aten.le.Scalar, (n, 1), {}),
        (aten.gt.Scalar, (n, 1), {}), (aten.ge.Scalar, (n, 1), {}),
        (aten.alias.default, (x,), {}), (aten.lift_fresh_copy.default, (x,), {}),
        (aten.contiguous.default, (transposed(x),), {}), (aten.clone.default, (x,), {}),
        (aten._to_copy.default, (x,), {"dtype": torch.float16}),
        (aten.reshape.default, (transposed(x), [12]), {}), (aten.squeeze.dims, (randn(1, 3), [0]), {}),
        (aten.index_put.default, (x, [torch.tensor([1, 1])], randn(4), True), {}),
        (aten.sum.dim_IntList, (n, [1]), {}), (aten.mean.default, (x,), {}),
        (aten.cumsum.default, (n, 1), {}), (aten.cumsum.default, (b, -1), {}),
        (aten.prod.default, (n,), {}), (aten.var_mean.correction, (x, [1]), {"correction": 0}),
        # prims left by some decompositions
        (prims.convert_element_type.default, (x, torch.float64), {}),
        (prims.broadcast_in_dim.default, (randn(3, 1), [2, 3, 4], [1, 2]), {}),
        (prims.sum.default, (x, [0]), {}), (prims.var.default, (x, [1], 1.0), {}),
        (prims.div.default, (x, positive(3, 4)), {}),
        # layout
        (aten.slice_scatter.default, (x, randn(3, 2), 1, 1, 3), {}),
        (aten.copy.default, (x, ints(4)), {}),
        (aten.as_strided.default, (x, [4, 3], [3, 1]), {}),
    ]
    undefined = [  # values are undefined: only the type is compared
        (aten.empty.memory_format, ([2, 3],), {}), (aten.new_empty.default, (x, [4]), {}),
        (aten.empty_like.default, (x,), {}), (aten.empty_strided.default, ([2, 3], [3, 1]), {}),
        (aten.new_empty_strided.default, (x, [2, 3], [3, 1]), {}),
    ]
    return cases, undefined


def test_every_lowering_has_a_case():
    """The table names every op the importer claims (a cheap check, with the missing ops named)."""
    cases, undefined = _direct_cases()
    direct = {target_name(op) for op, _, _ in cases + undefined}
    claimed = {target_name(op) for op in LOWERINGS}
    # the compiled batches are checked by the sweep; here only that nothing is unaccounted for
    assert claimed - direct <= _COMPILED_ONLY, sorted(claimed - direct - _COMPILED_ONLY)


# Ops only the compiled batches exercise (the sweep below checks that they really do).
_COMPILED_ONLY = {
    "aten.exp.default", "aten.log.default", "aten.log1p.default", "aten.expm1.default",
    "aten.sqrt.default", "aten.rsqrt.default", "aten.sin.default", "aten.cos.default",
    "aten.tan.default", "aten.tanh.default", "aten.sigmoid.default", "aten.erf.default",
    "aten.erfinv.default", "aten.asin.default", "aten.acos.default", "aten.atan.default",
    "aten.sinh.default", "aten.cosh.default", "aten.asinh.default", "aten.acosh.default",
    "aten.atanh.default", "aten.log2.default", "aten.exp2.default", "aten.reciprocal.default",
    "aten.neg.default", "aten.abs.default", "aten.sign.default", "aten.floor.default",
    "aten.ceil.default", "aten.round.default", "aten.trunc.default", "aten.add.Tensor",
    "aten.sub.Tensor", "aten.mul.Tensor", "aten.maximum.default", "aten.minimum.default",
    "aten.fmod.Tensor", "aten.remainder.Tensor", "aten.bitwise_and.Tensor",
    "aten.bitwise_or.Tensor", "aten.bitwise_xor.Tensor", "aten.atan2.default", "aten.div.Tensor",
    "aten.logical_and.default", "aten.logical_or.default", "aten.logical_xor.default",
    "aten.logical_not.default", "aten.bitwise_not.default", "aten.eq.Tensor", "aten.ne.Tensor",
    "aten.lt.Tensor", "aten.le.Tensor", "aten.gt.Tensor", "aten.ge.Tensor", "aten.isnan.default",
    "aten.isinf.default", "aten.where.self", "aten.relu.default", "aten.index_select.default",
    "aten.index.Tensor", "aten.gather.default", "aten.scatter_add.default", "aten.scatter.src",
    "aten.scatter.value", "aten.mm.default", "aten.bmm.default", "aten.addmm.default",
    "aten.convolution.default", "aten.prod.dim_int", "aten.mean.dim", "aten.amax.default",
    "aten.max.default", "aten.amin.default", "aten.min.default", "aten.any.default",
    "aten.any.dim", "aten.any.dims", "aten.argmax.default", "aten.argmin.default",
    "aten.var.correction", "aten.view.default", "aten.expand.default", "aten.permute.default",
    "aten.unsqueeze.default", "aten.slice.Tensor", "aten.select.int",
    "aten.split_with_sizes.default", "aten.cat.default", "aten.constant_pad_nd.default",
    "aten.flip.default", "aten.full.default", "aten.full_like.default",
    "aten.scalar_tensor.default", "aten.arange.start_step", "aten.rand.default",
    "aten.randn.default", "aten.rand_like.default", "aten.randn_like.default",
}


def test_every_lowering_is_exercised_natively():
    """The sweep: run every case, compare with eager, and collect the ops lowered natively."""
    exercised, failures = set(), []
    for name, fn, make_inputs, options in COMPILED:
        try:
            _, lowered = compile_check(fn, *make_inputs(), **options)
            exercised.update(n for n, count in lowered.native.items() if count)
            exercised.difference_update(lowered.fallbacks)  # native somewhere, fell back elsewhere
        except Exception as e:  # noqa: BLE001 (report every failing case at once)
            failures.append(f"batch {name}: {type(e).__name__}: {str(e).splitlines()[0]}")
    cases, undefined = _direct_cases()
    for cases_, compare in ((cases, True), (undefined, False)):
        for op, args, kwargs in cases_:
            try:
                direct_check(op, *args, compare_values=compare, **kwargs)
                exercised.add(target_name(op))
            except Exception as e:  # noqa: BLE001
                failures.append(f"{target_name(op)}: {type(e).__name__}: {str(e).splitlines()[0]}")
    assert not failures, "\n".join(failures)
    missing = sorted({target_name(op) for op in LOWERINGS} - exercised)
    assert not missing, f"claimed by the importer but never lowered natively here: {missing}"


def test_compiled_batches_match_eager_through_generated_code(monkeypatch):
    """The same sweep run through the C++ code generator instead of the reference interpreter."""
    monkeypatch.setattr(op_cases, "EXECUTOR", "cpp")
    failures = []
    for name, fn, make_inputs, options in COMPILED:
        try:
            compile_check(fn, *make_inputs(), **options)
        except Exception as e:  # noqa: BLE001 (report every failing case at once)
            failures.append(f"batch {name}: {type(e).__name__}: {str(e).splitlines()[0]}")
    assert not failures, "\n".join(failures)
