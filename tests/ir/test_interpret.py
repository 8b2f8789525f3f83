"""The reference interpreter against independent computations of each op's documented meaning.

Each test builds a one-op graph with `Graph.add` on fresh random inputs, checks it verifies and that
the interpreter's result has the type the shape rule inferred, and compares the values with a NumPy
(or plain-loop) computation in float64.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ir_builders import rand_tensor
from tensorsmith.errors import TensorsmithError, TypeInferenceError
from tensorsmith.ir import OPS, Graph, Operand, TensorType, TorchEnum, TupleType, infer_type, interpret, verify
from tensorsmith.ir.types import ALL_DTYPES, BF16, BOOL, DTYPES_BY_NAME, F16, F32, F64, I8, I32, I64, dtype_from_torch



COVERED: set[str] = set()


def covers(*ops):
    """Marks a test as checking `ops` (collected at import, for the every-op coverage test)."""
    COVERED.update(ops)
    return lambda f: f


def run(op, inputs, attrs=None, float64=False, type=None):
    """Interpret the one-node graph `op(inputs)`; check it verifies and the result has its type."""
    graph = Graph()
    params = [graph.add_param(f"a{i}", TensorType.of(x)) for i, x in enumerate(inputs)]
    node = graph.add(op, params, attrs, type=type)
    graph.outputs = [node]
    verify(graph)
    (out,) = interpret(graph, inputs, float64=float64)
    if not float64:
        assert TensorType.of(out) == node.type, f"interpreter gave {TensorType.of(out)}, shape rule {node.type}"
    return out


def np_of(x: torch.Tensor) -> np.ndarray:
    x = x.detach()
    return (x.double() if x.dtype in (torch.bfloat16, torch.float16) else x).numpy()


def close(actual: torch.Tensor, expected, rtol=1e-5, atol=1e-6):
    expected = np.asarray(expected)
    assert tuple(actual.shape) == expected.shape, f"shape {tuple(actual.shape)} vs expected {expected.shape}"
    np.testing.assert_allclose(np_of(actual).astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol)


def exact(actual: torch.Tensor, expected):
    expected = np.asarray(expected)
    assert tuple(actual.shape) == expected.shape, f"shape {tuple(actual.shape)} vs expected {expected.shape}"
    np.testing.assert_array_equal(np_of(actual), expected)


def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=torch.float64).to(dtype)


def positive(*shape):
    return torch.rand(*shape) * 4 + 0.1


def unit(*shape):
    return torch.rand(*shape) * 1.8 - 0.9


def randint(*shape, dtype=torch.int32, low=1, high=10):
    return rand_tensor(TensorType(shape, dtype_from_torch(dtype)), low, high)


def halves(*shape):
    """Multiples of 0.5 (ties for round), with some random fractions."""
    x = torch.randint(-10, 11, shape).float() / 2
    return torch.where(torch.rand(shape) < 0.3, randn(*shape) * 5, x)


# ---- elementwise ----------------------------------------------------------------------------

def _erfinv(y):
    x = np.zeros_like(y)
    for _ in range(60):  # Newton on erf(x) = y
        x = x - (np.vectorize(math.erf)(x) - y) / (2 / math.sqrt(math.pi) * np.exp(-x * x))
    return x


UNARY = {
    "neg": (randn, np.negative), "abs": (randn, np.abs), "sign": (randn, np.sign),
    "exp": (randn, np.exp), "log": (positive, np.log), "log1p": (positive, np.log1p),
    "expm1": (randn, np.expm1), "sqrt": (positive, np.sqrt), "rsqrt": (positive, lambda x: 1 / np.sqrt(x)),
    "sin": (randn, np.sin), "cos": (randn, np.cos), "tan": (randn, np.tan), "tanh": (randn, np.tanh),
    "sigmoid": (randn, lambda x: 1 / (1 + np.exp(-x))), "erf": (randn, np.vectorize(math.erf)),
    "erfinv": (unit, _erfinv), "asin": (unit, np.arcsin), "acos": (unit, np.arccos), "atan": (randn, np.arctan),
    "sinh": (randn, np.sinh), "cosh": (randn, np.cosh), "asinh": (randn, np.arcsinh),
    "acosh": (lambda *s: 1 + positive(*s), np.arccosh), "atanh": (unit, np.arctanh),
    "log2": (positive, np.log2), "exp2": (randn, np.exp2), "reciprocal": (randn, lambda x: 1 / x),
    "floor": (halves, np.floor), "ceil": (halves, np.ceil), "round": (halves, np.round),  # half to even
    "trunc": (halves, np.trunc),
}


@covers(*UNARY)
@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_unary(op, dtype):
    make, reference = UNARY[op]
    x = make(3, 5).to(dtype)
    out = run(op, [x])
    close(out, reference(np_of(x)), rtol=1e-5 if dtype == torch.float32 else 1e-12)


def test_round_is_half_to_even():
    exact(run("round", [torch.tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6])]),
          np.array([0, 2, 2, -0, -2, -2, 2, 3], dtype=np.float32))


@covers("neg", "abs", "sign")
@pytest.mark.parametrize("op, reference", [("neg", np.negative), ("abs", np.abs), ("sign", np.sign)])
@pytest.mark.parametrize("dtype", [torch.int32, torch.int8, torch.int64])
def test_numeric_unary_on_integers(op, reference, dtype):
    x = randint(4, 3, dtype=dtype)
    exact(run(op, [x]), reference(np_of(x)))


@covers("not")
def test_not():
    b = torch.rand(3, 4) < 0.5
    exact(run("not", [b]), np.logical_not(np_of(b)))
    i = randint(3, 4, dtype=torch.int16, high=1000)
    exact(run("not", [i]), np.invert(np_of(i)))


@covers("is_finite")
def test_is_finite():
    x = randn(2, 5)
    x[0, 0], x[0, 1], x[1, 2] = math.inf, math.nan, -math.inf
    exact(run("is_finite", [x]), np.isfinite(np_of(x)))
    exact(run("is_finite", [randint(3)]), np.ones(3, dtype=bool))


def _np_trunc_div(a, b):
    return np.sign(a) * np.sign(b) * (np.abs(a) // np.abs(b))


FLOAT_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "max": np.maximum,
    "min": np.minimum, "fmod": np.fmod, "remainder": np.remainder, "atan2": np.arctan2,
}
INT_BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _np_trunc_div, "max": np.maximum,
    "min": np.minimum, "fmod": np.fmod, "remainder": np.remainder,
    "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor,
}


@covers(*FLOAT_BINARY)
@pytest.mark.parametrize("op", sorted(FLOAT_BINARY))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_binary(op, dtype):
    a, b = randn(4, 6, dtype=dtype) * 3, randn(4, 6, dtype=dtype)
    close(run(op, [a, b]), FLOAT_BINARY[op](np_of(a), np_of(b)), rtol=1e-5 if dtype == torch.float32 else 1e-12)


@covers("pow")
def test_pow():
    a, b = positive(3, 4), randn(3, 4)
    close(run("pow", [a, b]), np.power(np_of(a).astype(np.float64), np_of(b)))


@covers(*INT_BINARY)
@pytest.mark.parametrize("op", sorted(INT_BINARY))
@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.int8])
def test_integer_binary(op, dtype):
    a, b = randint(5, 6, dtype=dtype, high=100), randint(5, 6, dtype=dtype)
    exact(run(op, [a, b]), INT_BINARY[op](np_of(a), np_of(b)).astype(np_of(a).dtype))


def test_integer_div_truncates_toward_zero():
    a = torch.tensor([7, -7, 7, -7, 1, -1], dtype=torch.int64)
    b = torch.tensor([2, 2, -2, -2, 3, 3], dtype=torch.int64)
    exact(run("div", [a, b]), np.array([3, -3, -3, 3, 0, 0]))
    exact(run("remainder", [a, b]), np.array([1, 1, -1, -1, 1, 2]))
    exact(run("fmod", [a, b]), np.array([1, -1, 1, -1, 1, -1]))


@covers("and", "or", "xor")
@pytest.mark.parametrize("op, reference", [("and", np.logical_and), ("or", np.logical_or), ("xor", np.logical_xor)])
def test_logical_binary_on_bool(op, reference):
    a, b = torch.rand(4, 5) < 0.5, torch.rand(4, 5) < 0.5
    exact(run(op, [a, b]), reference(np_of(a), np_of(b)))


@covers("compare")
@pytest.mark.parametrize("direction, reference", [("EQ", np.equal), ("NE", np.not_equal), ("LT", np.less),
                                                  ("LE", np.less_equal), ("GT", np.greater),
                                                  ("GE", np.greater_equal)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int32])
def test_compare(direction, reference, dtype):
    a = randint(4, 5, dtype=dtype) if not dtype.is_floating_point else randn(4, 5)
    b = torch.where(torch.rand(4, 5) < 0.4, a, randint(4, 5, dtype=dtype) if not dtype.is_floating_point else randn(4, 5))
    exact(run("compare", [a, b], {"dir": direction}), reference(np_of(a), np_of(b)))


@covers("select")
def test_select():
    p, a, b = torch.rand(3, 4) < 0.5, randn(3, 4), randn(3, 4)
    exact(run("select", [p, a, b]), np.where(np_of(p), np_of(a), np_of(b)))


@covers("convert")
@pytest.mark.parametrize("src, dst", [(torch.float32, I32), (torch.float32, BOOL), (torch.bool, F32),
                                      (torch.int64, F16), (torch.float32, F64), (torch.float64, BF16),
                                      (torch.int32, I8)])
def test_convert(src, dst):
    x = (randn(3, 4) * 5).to(src) if src.is_floating_point else rand_tensor(TensorType((3, 4), dtype_from_torch(src)))
    out = run("convert", [x], {"dtype": dst})
    xs = np_of(x)
    if dst == BOOL:
        expected = xs != 0
    elif not dst.is_float:
        expected = np.trunc(xs).astype(np.int64).astype(np.int8 if dst == I8 else np.int32)
    else:
        expected = xs.astype(np.float64)
    if dst in (F16, BF16):
        close(out, expected, rtol=1e-2)
    else:
        exact(out, expected)


# ---- shape ops ------------------------------------------------------------------------------

@covers("broadcast_in_dim")
@pytest.mark.parametrize("in_shape, shape, dims", [
    ((3, 1), (2, 3, 4), (1, 2)), ((), (2, 3), ()), ((2,), (2, 5), (0,)), ((2,), (5, 2), (1,)),
    ((1, 1), (4, 2, 3), (0, 2)), ((2, 3), (2, 3), (0, 1)), ((1,), (0, 3), (0,)),
])
def test_broadcast_in_dim(in_shape, shape, dims):
    x = randn(*in_shape)
    out = run("broadcast_in_dim", [x], {"shape": list(shape), "dims": list(dims)})
    xs = np_of(x)
    expected = np.empty(shape, dtype=xs.dtype)
    for idx in np.ndindex(*shape):  # out[idx] = x[idx at dims, 0 where x has size 1]
        expected[idx] = xs[tuple(idx[d] if xs.shape[i] != 1 else 0 for i, d in enumerate(dims))]
    exact(out, expected)


@covers("reshape")
def test_reshape():
    x = randn(2, 3, 4)
    exact(run("reshape", [x], {"shape": [4, 6]}), np_of(x).reshape(4, 6))
    one = randn(1, 1)
    exact(run("reshape", [one], {"shape": []}), np_of(one).reshape(()))
    s = randn()
    exact(run("reshape", [s], {"shape": [1, 1, 1]}), np_of(s).reshape(1, 1, 1))


@covers("transpose")
def test_transpose():
    x = randn(2, 3, 4)
    exact(run("transpose", [x], {"perm": [2, 0, 1]}), np.transpose(np_of(x), (2, 0, 1)))
    exact(run("transpose", [x], {"perm": [0, 1, 2]}), np_of(x))


@covers("reverse")
def test_reverse():
    x = randn(3, 4, 2)
    exact(run("reverse", [x], {"dims": [0, 2]}), np.flip(np_of(x), (0, 2)))
    exact(run("reverse", [x], {"dims": []}), np_of(x))


@covers("slice")
@pytest.mark.parametrize("starts, limits, strides", [
    ([1, 0], [5, 4], [2, 1]), ([0, 1], [6, 4], [3, 2]), ([2, 2], [2, 3], [1, 1]), ([5, 0], [6, 4], [7, 5]),
])
def test_slice(starts, limits, strides):
    x = randn(6, 4)
    out = run("slice", [x], {"starts": starts, "limits": limits, "strides": strides})
    exact(out, np_of(x)[tuple(slice(a, b, c) for a, b, c in zip(starts, limits, strides))])


@covers("concat")
def test_concat():
    a, b, c = randn(2, 3), randn(2, 0), randn(2, 5)
    exact(run("concat", [a, b, c], {"dim": 1}), np.concatenate([np_of(a), np_of(b), np_of(c)], 1))
    i = randint(4, dtype=torch.int64)
    exact(run("concat", [i], {"dim": 0}), np_of(i))


def _pad_reference(x, low, high, value):
    shape = [s + lo + hi for s, lo, hi in zip(x.shape, low, high)]
    out = np.full(shape, value, dtype=x.dtype)
    for idx in np.ndindex(*shape):  # out[i] = x[i - low] where that is inside x
        src = tuple(i - lo for i, lo in zip(idx, low))
        if all(0 <= s < n for s, n in zip(src, x.shape)):
            out[idx] = x[src]
    return out


@covers("pad")
@pytest.mark.parametrize("low, high", [
    ([1, 2], [0, 3]), ([-1, 0], [2, -2]), ([-2, -1], [-1, -1]), ([0, 0], [0, 0]), ([-5, 1], [5, 0]),
    ([3, -6], [-4, 6]), ([-4, 0], [0, 0]),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.int64, torch.bool])
def test_pad_including_negative(low, high, dtype):
    x = rand_tensor(TensorType((4, 3), dtype_from_torch(dtype)))
    value = {torch.float32: -1.5, torch.int64: 7, torch.bool: True}[dtype]
    out = run("pad", [x], {"low": low, "high": high, "value": value})
    exact(out, _pad_reference(np_of(x), low, high, value))


@covers("reduce")
@pytest.mark.parametrize("kind, reference", [("sum", np.sum), ("prod", np.prod), ("max", np.max), ("min", np.min)])
@pytest.mark.parametrize("dims", [[0], [2], [0, 2], [0, 1, 2], [1, 2], []])
def test_reduce_float(kind, reference, dims):
    x = 1 + 0.2 * randn(3, 4, 5) if kind == "prod" else randn(3, 4, 5)
    out = run("reduce", [x], {"kind": kind, "dims": dims})
    close(out, reference(np_of(x).astype(np.float64), axis=tuple(dims)) if dims else np_of(x), atol=1e-5)


@covers("reduce")
@pytest.mark.parametrize("kind, reference", [("any", np.any), ("all", np.all)])
@pytest.mark.parametrize("dims", [[1], [0, 2], [0, 1, 2], []])
def test_reduce_bool(kind, reference, dims):
    x = torch.rand(3, 4, 2) < (0.2 if kind == "any" else 0.8)
    x[0] = kind == "all"  # some slices constant, so both outcomes appear
    exact(run("reduce", [x], {"kind": kind, "dims": dims}), reference(np_of(x), axis=tuple(dims)) if dims else np_of(x))


@covers("reduce")
@pytest.mark.parametrize("kind, reference", [("sum", np.sum), ("prod", np.prod), ("max", np.max), ("min", np.min)])
def test_reduce_integer_keeps_its_dtype(kind, reference):
    x = randint(3, 4, 2, dtype=torch.int8, high=100)
    out = run("reduce", [x], {"kind": kind, "dims": [0, 2]})
    exact(out, reference(np_of(x), axis=(0, 2), **({"dtype": np.int8} if kind in ("sum", "prod") else {})))


@covers("argmax", "argmin")
@pytest.mark.parametrize("op, reference", [("argmax", np.argmax), ("argmin", np.argmin)])
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_arg_reduce(op, reference, dim):
    x = randn(3, 4, 5)
    exact(run(op, [x], {"dim": dim}), reference(np_of(x), axis=dim))
    i = randint(6, dtype=torch.int32, high=1000)
    exact(run(op, [i], {"dim": 0}), reference(np_of(i)))


@covers("dot")
@pytest.mark.parametrize("a_shape, b_shape", [((2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((2, 3, 4, 5), (2, 3, 5, 1)),
                                              ((3, 0), (0, 2))])
def test_dot(a_shape, b_shape):
    a, b = randn(*a_shape), randn(*b_shape)
    close(run("dot", [a, b]), np.matmul(np_of(a).astype(np.float64), np_of(b)))
    ai, bi = randint(*a_shape, dtype=torch.int64), randint(*b_shape, dtype=torch.int64)
    exact(run("dot", [ai, bi]), np.matmul(np_of(ai), np_of(bi)))


def _conv_reference(x, w, stride, padding, dilation, groups):
    """Direct N-d convolution, NC... layout, weight [O, C/groups, K...]."""
    n, c = x.shape[:2]
    o, kernel = w.shape[0], w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    sizes = [(xp.shape[2 + i] - dilation[i] * (k - 1) - 1) // stride[i] + 1 for i, k in enumerate(kernel)]
    cg, og = c // groups, o // groups
    out = np.zeros((n, o, *sizes))
    for oc in range(o):
        g = oc // og
        for pos in np.ndindex(*sizes):
            for ic in range(cg):
                for k in np.ndindex(*kernel):
                    at = tuple(p * s + kk * d for p, s, kk, d in zip(pos, stride, k, dilation))
                    out[(slice(None), oc, *pos)] += xp[(slice(None), g * cg + ic, *at)] * w[(oc, ic, *k)]
    return out


def _conv_transposed_reference(x, w, stride, padding, dilation, groups, output_padding):
    """Each input element spreads x * w over the output, weight [C, O/groups, K...]."""
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    og, kernel = w.shape[1], w.shape[2:]
    sizes = [(s - 1) * st - 2 * p + d * (k - 1) + op + 1
             for s, st, p, d, k, op in zip(spatial, stride, padding, dilation, kernel, output_padding)]
    cg = c // groups
    out = np.zeros((n, og * groups, *sizes))
    for ic in range(c):
        g = ic // cg
        for pos in np.ndindex(*spatial):
            for k in np.ndindex(*kernel):
                at = tuple(p * s + kk * d - pad for p, s, kk, d, pad in zip(pos, stride, k, dilation, padding))
                if all(0 <= a < size for a, size in zip(at, sizes)):
                    for oc in range(og):
                        out[(slice(None), g * og + oc, *at)] += x[(slice(None), ic, *pos)] * w[(ic, oc, *k)]
    return out


@covers("convolution")
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", [
    ((2, 4, 9), (6, 2, 3), [2], [1], [2], 2),
    ((1, 3, 7), (2, 3, 3), [1], [0], [1], 1),
    ((2, 3, 5, 6), (4, 3, 3, 2), [1, 2], [1, 0], [1, 1], 1),
    ((1, 4, 6, 5), (4, 1, 2, 3), [2, 1], [0, 2], [2, 1], 4),
])
def test_convolution(x_shape, w_shape, stride, padding, dilation, groups):
    x, w = randn(*x_shape), randn(*w_shape)
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "transposed": False,
             "output_padding": [0] * len(stride)}
    close(run("convolution", [x, w], attrs), _conv_reference(np_of(x), np_of(w), stride, padding, dilation, groups),
          atol=1e-5)


@covers("convolution")
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups, output_padding", [
    ((2, 4, 5), (4, 3, 3), [2], [1], [1], 2, [1]),
    ((1, 3, 4), (3, 2, 2), [1], [0], [2], 1, [0]),
    ((1, 2, 3, 4), (2, 3, 3, 2), [2, 3], [1, 0], [1, 2], 1, [1, 2]),
])
def test_convolution_transposed(x_shape, w_shape, stride, padding, dilation, groups, output_padding):
    x, w = randn(*x_shape), randn(*w_shape)
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups, "transposed": True,
             "output_padding": output_padding}
    close(run("convolution", [x, w], attrs),
          _conv_transposed_reference(np_of(x), np_of(w), stride, padding, dilation, groups, output_padding), atol=1e-5)


# ---- indexing -------------------------------------------------------------------------------

INDEX_DTYPES = [torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8]


@covers("take")
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dim, index_shape", [(0, (2, 3)), (1, (4,)), (2, ()), (1, (2, 2, 2))])
def test_take(index_dtype, dim, index_shape):
    x = randn(3, 4, 5)
    index = torch.randint(0, x.shape[dim], index_shape).to(index_dtype)
    exact(run("take", [x, index], {"dim": dim}), np.take(np_of(x), np_of(index).astype(np.int64), axis=dim))


@covers("take")
def test_take_from_scalar():
    x = randn()
    exact(run("take", [x, torch.zeros(3, dtype=torch.int64)], {"dim": 0}), np.full(3, np_of(x)))


def _np_positions(index, dim):
    """(position in index, position it addresses) pairs for gather/scatter along `dim`."""
    for idx in np.ndindex(*index.shape):
        target = list(idx)
        target[dim] = int(index[idx])
        yield idx, tuple(target)


@covers("gather")
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dim, index_shape", [(0, (2, 4)), (1, (3, 7)), (0, (5, 2)), (1, (1, 1))])
def test_gather(index_dtype, dim, index_shape):
    x = randn(5, 4)
    index = torch.randint(0, x.shape[dim], index_shape).to(index_dtype)
    xs, expected = np_of(x), np.empty(index_shape, dtype=np.float32)
    for idx, at in _np_positions(np_of(index), dim):
        expected[idx] = xs[at]
    exact(run("gather", [x, index], {"dim": dim}), expected)


@covers("scatter")
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter(index_dtype, dim):
    x = randn(5, 4)
    src = randn(4, 6) if dim == 0 else randn(5, 6)
    index_shape = (3, 4) if dim == 0 else (4, 3)
    # Distinct positions within each line along dim, so no two writes race.
    lines = [torch.randperm(x.shape[dim])[:index_shape[dim]] for _ in range(index_shape[1 - dim])]
    index = (torch.stack(lines, 1) if dim == 0 else torch.stack(lines, 0)).to(index_dtype)
    expected, s = np_of(x).copy(), np_of(src)
    for idx, at in _np_positions(np_of(index), dim):
        expected[at] = s[idx]
    exact(run("scatter", [x, index, src], {"dim": dim}), expected)


@covers("scatter_add")
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add(index_dtype, dim):
    x, src = randn(3, 4), randn(6, 5)
    index_shape = (6, 4) if dim == 0 else (3, 5)
    index = torch.randint(0, x.shape[dim], index_shape).to(index_dtype)  # with duplicates: they add up
    expected, s = np_of(x).astype(np.float64), np_of(src)
    for idx, at in _np_positions(np_of(index), dim):
        expected[at] += s[idx]
    close(run("scatter_add", [x, index, src], {"dim": dim}), expected)


@covers("index_add")
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dim, index_shape", [(0, (5,)), (1, (2, 3)), (2, ()), (1, (7,))])
def test_index_add(index_dtype, dim, index_shape):
    x = randn(3, 4, 2)
    index = torch.randint(0, x.shape[dim], index_shape).to(index_dtype)  # with duplicates
    src = randn(*x.shape[:dim], *index_shape, *x.shape[dim + 1:])
    expected = np_of(x).astype(np.float64)
    np.add.at(expected, (slice(None),) * dim + (np_of(index).astype(np.int64),), np_of(src))
    close(run("index_add", [x, index, src], {"dim": dim}), expected)


# ---- sources ------------------------------------------------------------------------------

@covers("iota")
@pytest.mark.parametrize("shape, dim, dtype", [([5], 0, I64), ([2, 3, 4], 1, F32), ([3, 0], 0, I32), ([2, 3], 1, F16)])
def test_iota(shape, dim, dtype):
    out = run("iota", [], {"shape": shape, "dim": dim, "dtype": dtype, "device": "cpu"})
    view = [1] * len(shape)
    view[dim] = shape[dim]
    exact(out, np.broadcast_to(np.arange(shape[dim]).reshape(view), shape))


@covers("constant")
def test_constant():
    out = run("constant", [], {"value": -2.5, "shape": [2, 3], "dtype": F32, "device": "cpu"})
    exact(out, np.full((2, 3), -2.5, dtype=np.float32))
    values = [1.0, -0.0, math.inf, -math.inf, math.nan, 1e-05]
    out = run("constant", [], {"value": values, "shape": [3, 2], "dtype": F64, "device": "cpu"})
    exact(out, np.array(values).reshape(3, 2))
    assert math.copysign(1, out[0, 1].item()) == -1
    exact(run("constant", [], {"value": True, "shape": [], "dtype": BOOL, "device": "cpu"}), np.array(True))
    big = 2**62 + 1
    exact(run("constant", [], {"value": [big, -big], "shape": [2], "dtype": I64, "device": "cpu"}), np.array([big, -big]))
    exact(run("constant", [], {"value": 3, "shape": [0, 4], "dtype": I8, "device": "cpu"}), np.zeros((0, 4)))


@covers("random")
def test_random():
    uniform = run("random", [], {"dist": "uniform", "shape": [100, 100], "dtype": F32, "device": "cpu"})
    assert 0 <= uniform.min() and uniform.max() < 1 and abs(uniform.mean() - 0.5) < 0.02
    normal = run("random", [], {"dist": "normal", "shape": [10000], "dtype": F64, "device": "cpu"})
    assert abs(normal.mean()) < 0.05 and abs(normal.std() - 1) < 0.05
    again = run("random", [], {"dist": "normal", "shape": [10000], "dtype": F64, "device": "cpu"})
    assert not torch.equal(normal, again)
    assert run("random", [], {"dist": "uniform", "shape": [2], "dtype": BF16, "device": "cpu"}).dtype == torch.bfloat16


# ---- fallback and get ------------------------------------------------------------------------

def fallback(inputs, target, args, kwargs, type):
    return run("fallback", inputs, {"target": target, "args": args, "kwargs": kwargs}, type=type)


@covers("fallback", "get")
def test_fallback_tuple_and_get():
    x = randn(3, 5)
    graph = Graph()
    p = graph.add_param("x", TensorType.of(x))
    pair = graph.add("fallback", [p], {"target": "aten.sort.default", "args": [Operand(0), 1], "kwargs": {}},
                     type=TupleType((TensorType((3, 5), F32), TensorType((3, 5), I64))))
    values, indices = graph.add("get", [pair], {"index": 0}), graph.add("get", [pair], {"index": 1})
    graph.outputs = [indices, values]
    verify(graph)
    got_indices, got_values = interpret(graph, [x])
    exact(got_values, np.sort(np_of(x), axis=1))
    exact(got_indices, np.argsort(np_of(x), axis=1))


@covers("fallback")
def test_fallback_arguments():
    x, y = randn(2, 3), randn(2, 4)
    close(fallback([x], "aten.cumsum.default", [Operand(0), 1], {"dtype": F64}, TensorType((2, 3), F64)),
          np.cumsum(np_of(x).astype(np.float64), axis=1), rtol=1e-12)
    exact(fallback([x, y], "aten.cat.default", [[Operand(1), Operand(0), Operand(1)], -1], {}, TensorType((2, 11), F32)),
          np.concatenate([np_of(y), np_of(x), np_of(y)], -1))
    exact(fallback([x], "aten.clamp.default", [Operand(0), None, 0.25], {}, TensorType((2, 3), F32)),
          np.minimum(np_of(x), np.float32(0.25)))
    out = fallback([], "aten.full.default", [[2, 2], 1.5], {"dtype": F16, "layout": TorchEnum("layout", "strided"),
                                                             "device": TorchEnum("device", "cpu"), "pin_memory": False},
                   TensorType((2, 2), F16))
    exact(out, np.full((2, 2), 1.5))
    exact(fallback([x], "aten.clone.default", [Operand(0)], {"memory_format": TorchEnum("memory_format", "contiguous_format")},
                   TensorType((2, 3), F32)), np_of(x))


def test_fallback_result_unlike_declared_type_raises():
    x = randn(2, 3)
    with pytest.raises(TensorsmithError, match="aten.cumsum.default returned torch.float32\\[2, 3\\], the graph declared f64"):
        fallback([x], "aten.cumsum.default", [Operand(0), 1], {}, TensorType((2, 3), F64))
    with pytest.raises(TensorsmithError, match="declared f32\\[3,2\\]@cpu"):
        fallback([x], "aten.cumsum.default", [Operand(0), 1], {}, TensorType((3, 2), F32))


def test_wrong_number_of_inputs_raises():
    graph = Graph()
    graph.outputs = [graph.add_param("x", TensorType((2,), F32))]
    with pytest.raises(TensorsmithError, match="takes 1 inputs, got 2"):
        interpret(graph, [randn(2), randn(2)])


def test_every_op_has_an_interpreter_test():
    assert set(OPS) - COVERED == set()


# ---- float64 mode ---------------------------------------------------------------------------

def _float64_graph():
    """sum(exp(x) * sin(x) / 3 + 0.1) per row, on f32 parameters, with an f16 convert in the middle."""
    graph = Graph()
    x = graph.add_param("x", TensorType((4, 500), F32))
    three = graph.add("constant", [], {"value": 3.0, "shape": [4, 500], "dtype": F32, "device": "cpu"})
    tenth = graph.add("constant", [], {"value": 0.1, "shape": [4, 500], "dtype": F32, "device": "cpu"})
    y = graph.add("div", [graph.add("mul", [graph.add("exp", [x]), graph.add("sin", [x])]), three])
    y = graph.add("convert", [graph.add("convert", [graph.add("add", [y, tenth])], {"dtype": F16})], {"dtype": F32})
    graph.outputs = [graph.add("reduce", [y], {"kind": "sum", "dims": [1]}), graph.add("argmax", [y], {"dim": 1})]
    verify(graph)
    return graph


def test_float64_mode_is_more_accurate():
    graph = _float64_graph()
    x = randn(4, 500)
    xs = np_of(x).astype(np.float64)
    expected = (np.exp(xs) * np.sin(xs) / 3 + 0.1).sum(1)
    out64, arg64 = interpret(graph, [x], float64=True)
    out32, arg32 = interpret(graph, [x])
    assert out64.dtype == torch.float64 and out32.dtype == torch.float32
    assert arg64.dtype == torch.int64 and arg32.dtype == torch.int64
    err64 = np.abs(np_of(out64) - expected).max() / np.abs(expected).max()
    err32 = np.abs(np_of(out32) - expected).max() / np.abs(expected).max()
    assert err64 < 1e-13, err64
    assert err32 > 1e-6 and err64 < err32 / 1000, (err32, err64)  # f32 mode rounds through f16 on the way


def test_float64_mode_constants_iota_random_and_fallback_dtypes():
    graph = Graph()
    c = graph.add("constant", [], {"value": 0.1, "shape": [], "dtype": F32, "device": "cpu"})
    i = graph.add("iota", [], {"shape": [3], "dim": 0, "dtype": BF16, "device": "cpu"})
    r = graph.add("random", [], {"dist": "uniform", "shape": [3], "dtype": F16, "device": "cpu"})
    n = graph.add("iota", [], {"shape": [3], "dim": 0, "dtype": I32, "device": "cpu"})
    f = graph.add("fallback", [n], {"target": "aten.cumsum.default", "args": [Operand(0), 0], "kwargs": {"dtype": F32}},
                  type=TensorType((3,), F32))
    graph.outputs = [c, i, r, n, f]
    verify(graph)
    c64, i64, r64, n64, f64 = interpret(graph, [], float64=True)
    assert c64.item() == 0.1 and c64.dtype == torch.float64
    assert i64.dtype == r64.dtype == f64.dtype == torch.float64 and n64.dtype == torch.int32
    c32, _, r32, _, f32 = interpret(graph, [])
    assert c32.item() != 0.1 and c32.dtype == torch.float32 and r32.dtype == torch.float16 and f32.dtype == torch.float32
    exact(f64, np.array([0.0, 1.0, 3.0]))


def test_float64_mode_params():
    graph = Graph()
    x = graph.add_param("x", TensorType((3,), F16))
    k = graph.add_param("k", TensorType((3,), I64))
    graph.outputs = [graph.add("neg", [x]), graph.add("neg", [k])]
    fx, fk = interpret(graph, [randn(3, dtype=torch.float16), randint(3, dtype=torch.int64)], float64=True)
    assert fx.dtype == torch.float64 and fk.dtype == torch.int64


# ---- the interpreter runs whatever the shape rules accept ------------------------------------

def _elementwise_ops():
    from tensorsmith.ir.ops import (FLOAT_BINARY as FB, FLOAT_UNARY as FU, LOGICAL_BINARY as LB,
                                    LOGICAL_UNARY as LU, NUMERIC_BINARY as NB, NUMERIC_UNARY as NU)
    return [(op, 1) for op in FU + NU + LU + ("is_finite",)] + [(op, 2) for op in FB + NB + LB] + \
        [(f"compare-{d}", 2) for d in ("EQ", "NE", "LT", "LE", "GT", "GE")] + [("select", 3)]


@pytest.mark.parametrize("op, arity", _elementwise_ops())
def test_interpreter_runs_every_dtype_the_shape_rule_accepts(op, arity):
    """For each element type the op's shape rule accepts, the interpreter runs and gives that type."""
    attrs = {"dir": op.split("-")[1]} if op.startswith("compare") else {}
    name = op.split("-")[0]
    accepted = 0
    for dtype in ALL_DTYPES:
        types = [TensorType((2, 3), dtype)] * arity
        if name == "select":
            types[0] = TensorType((2, 3), BOOL)
        try:
            infer_type(name, types, attrs)
        except TypeInferenceError:
            continue
        accepted += 1
        inputs = [rand_tensor(t) if not t.dtype.is_complex else torch.randn(2, 3, dtype=t.dtype.torch_dtype)
                  for t in types]
        run(name, inputs, attrs)  # checks the result type against the shape rule
    assert accepted


@covers("addmm")
def test_addmm():
    bias, a, b = randn(4), randn(2, 3), randn(3, 4)
    close(run("addmm", [bias, a, b]), np_of(bias).astype(np.float64) + np.matmul(np_of(a).astype(np.float64), np_of(b)))


def _operand(dtype, shape):
    t = TensorType(shape, dtype)
    return torch.randn(shape, dtype=dtype.torch_dtype) if dtype.is_complex else rand_tensor(t)


_CONV = {"stride": [1], "padding": [1], "dilation": [1], "groups": 1, "output_padding": [0]}
STRUCTURAL_TEMPLATES = {  # op -> (operand shapes, x the first operand's element type, attrs)
    **{f"reduce-{k}": ("reduce", [(2, 3)], {"kind": k, "dims": [1]}) for k in ("sum", "prod", "max", "min", "any", "all")},
    "argmax": ("argmax", [(2, 3)], {"dim": 1}), "argmin": ("argmin", [(2, 3)], {"dim": 0}),
    "dot": ("dot", [(2, 3), (3, 4)], {}),
    "addmm": ("addmm", [(4,), (2, 3), (3, 4)], {}),
    "convolution": ("convolution", [(1, 2, 5), (3, 2, 3)], {**_CONV, "transposed": False}),
    "convolution-transposed": ("convolution", [(1, 2, 5), (2, 3, 3)], {**_CONV, "transposed": True}),
    "pad": ("pad", [(2, 3)], {"low": [1, -1], "high": [0, 2], "value": 1}),
    "concat": ("concat", [(2, 3), (2, 1)], {"dim": 1}),
    "reverse": ("reverse", [(2, 3)], {"dims": [1]}),
    "transpose": ("transpose", [(2, 3)], {"perm": [1, 0]}),
    "reshape": ("reshape", [(2, 3)], {"shape": [3, 2]}),
    "broadcast_in_dim": ("broadcast_in_dim", [(3,)], {"shape": [2, 3], "dims": [1]}),
    "slice": ("slice", [(4, 3)], {"starts": [1, 0], "limits": [4, 3], "strides": [2, 2]}),
}


@pytest.mark.parametrize("case", sorted(STRUCTURAL_TEMPLATES))
def test_interpreter_runs_every_dtype_the_structural_rules_accept(case):
    op, shapes, attrs = STRUCTURAL_TEMPLATES[case]
    accepted = 0
    for dtype in ALL_DTYPES:
        try:
            infer_type(op, [TensorType(s, dtype) for s in shapes], attrs)
        except TypeInferenceError:
            continue
        accepted += 1
        run(op, [_operand(dtype, s) for s in shapes], attrs)
    assert accepted


@pytest.mark.parametrize("op", ["take", "gather", "scatter", "scatter_add", "index_add", "select"])
def test_interpreter_runs_indexing_ops_on_every_accepted_dtype(op):
    for dtype in ALL_DTYPES:
        x = _operand(dtype, (3, 4))
        index = torch.randint(0, 3, (2, 4))
        operands = {"take": [x, index], "gather": [x, index], "scatter": [x, index, x[:2]],
                    "scatter_add": [x, index, x[:2]], "index_add": [x, index[0], _operand(dtype, (4, 4))],
                    "select": [torch.rand(3, 4) < 0.5, x, x]}[op]
        attrs = {} if op == "select" else {"dim": 0}
        try:
            infer_type(op, [TensorType.of(o) for o in operands], attrs)
        except TypeInferenceError:
            continue
        run(op, operands, attrs)


@pytest.mark.filterwarnings("ignore:Casting complex values to real")
@pytest.mark.parametrize("source", [d.name for d in ALL_DTYPES])
def test_convert_between_every_pair_of_dtypes(source):
    x = _operand(DTYPES_BY_NAME[source], (2, 3))
    for target in ALL_DTYPES:
        run("convert", [x], {"dtype": target})


@pytest.mark.parametrize("dtype", [d.name for d in ALL_DTYPES])
def test_sources_on_every_accepted_dtype(dtype):
    d = DTYPES_BY_NAME[dtype]
    for op, attrs in [("iota", {"shape": [2, 3], "dim": 1}), ("constant", {"value": 1, "shape": [2, 3]}),
                      ("constant", {"value": [1, 0, 1, 1, 0, 1], "shape": [2, 3]}),
                      ("random", {"dist": "normal", "shape": [2, 3]}), ("random", {"dist": "uniform", "shape": [3]})]:
        attrs = {**attrs, "dtype": d, "device": "cpu"}
        try:
            infer_type(op, [], attrs)
        except TypeInferenceError:
            continue
        run(op, [], attrs)


@covers("abs")
def test_abs_of_complex_is_its_magnitude():
    z = torch.randn(3, 4, dtype=torch.complex64)
    out = run("abs", [z])
    assert out.dtype == torch.float32
    close(out, np.abs(z.numpy()))
