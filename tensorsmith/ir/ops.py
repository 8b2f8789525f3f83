"""The op set, in the spirit of StableHLO: each op's attributes and its shape rule.

Elementwise ops take operands of one shape and dtype (the importer inserts explicit broadcasts and
converts); `select` takes a bool predicate. Shape rules raise TypeInferenceError with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import TypeInferenceError
from .attrs import check_kind
from .types import BOOL, C64, C128, F32, F64, I64, DType, TensorType, TupleType

FLOAT_UNARY = ("exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
               "sigmoid", "erf", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
               "log2", "exp2", "reciprocal", "floor", "ceil", "round", "trunc", "erfinv")
NUMERIC_UNARY = ("neg", "abs", "sign")
LOGICAL_UNARY = ("not",)  # logical not on bool, bitwise not on integers
FLOAT_BINARY = ("pow", "atan2")
NUMERIC_BINARY = ("add", "sub", "mul", "div", "max", "min", "fmod", "remainder")
LOGICAL_BINARY = ("and", "or", "xor")  # bool or integer operands
COMPARE_DIRECTIONS = ("EQ", "NE", "LT", "LE", "GT", "GE")
REDUCE_KINDS = ("sum", "prod", "max", "min", "any", "all")
RANDOM_DISTRIBUTIONS = ("uniform", "normal")
REAL_ONLY = ("erf", "erfinv", "floor", "ceil", "round", "trunc", "sign", "atan2", "max", "min",
             "fmod", "remainder")  # elementwise ops PyTorch has no complex form of


@dataclass(frozen=True)
class OpDef:
    """An op: `arity` operands (None: any number), required `attrs` (name -> kind), a shape rule.

    A shape rule of None means the node's declared type is taken as given (fallback, constant data).
    """

    name: str
    arity: int | None
    attrs: dict[str, str]
    infer: Callable[[list, dict], TensorType | TupleType] | None


OPS: dict[str, OpDef] = {}


def _op(name: str, arity: int | None, attrs: dict[str, str] | None = None):
    def register(infer):
        OPS[name] = OpDef(name, arity, attrs or {}, infer)
        return infer
    return register


def _fail(message: str):
    raise TypeInferenceError(message)


def _same_device(types):
    devices = {t.device for t in types}
    if len(devices) > 1:
        _fail(f"operands on different devices {sorted(devices)}")


def _same_shape_and_dtype(types):
    _same_device(types)
    for t in types[1:]:
        if t.shape != types[0].shape:
            _fail(f"operand shapes differ: {list(types[0].shape)} vs {list(t.shape)}")
        if t.dtype != types[0].dtype:
            _fail(f"operand dtypes differ: {types[0].dtype} vs {t.dtype}")
    return types[0]


def _check_dims(dims, rank, what="dims"):
    for d in dims:
        if not 0 <= d < rank:
            _fail(f"{what} {list(dims)} out of range for rank {rank}")
    if len(set(dims)) != len(dims):
        _fail(f"{what} {list(dims)} repeat a dimension")


def _check_shape(shape):
    if any(s < 0 for s in shape):
        _fail(f"shape {list(shape)} has a negative size")


def _unary_rule(accepts: Callable[[DType], bool], what: str):
    def infer(types, attrs):
        (t,) = types
        if not accepts(t.dtype):
            _fail(f"operand must be {what}, got {t.dtype}")
        return t
    return infer


def _binary_rule(accepts: Callable[[DType], bool], what: str):
    def infer(types, attrs):
        t = _same_shape_and_dtype(types)
        if not accepts(t.dtype):
            _fail(f"operands must be {what}, got {t.dtype}")
        return t
    return infer


def _is_numeric(d: DType) -> bool:
    return not d.is_bool


def _is_logical(d: DType) -> bool:
    return d.is_bool or d.is_integer


def _is_floating(d: DType) -> bool:
    return d.is_float or d.is_complex


def _elementwise_rule(make, name: str, accepts: Callable[[DType], bool], what: str):
    if name in REAL_ONLY:
        return make(lambda d: accepts(d) and not d.is_complex, f"real {what}")
    return make(accepts, what)


for _name in FLOAT_UNARY:
    _op(_name, 1)(_elementwise_rule(_unary_rule, _name, _is_floating, "floating point"))
for _name in NUMERIC_UNARY:
    _op(_name, 1)(_elementwise_rule(_unary_rule, _name, _is_numeric, "numeric"))
for _name in LOGICAL_UNARY:
    _op(_name, 1)(_unary_rule(_is_logical, "bool or integer"))
for _name in FLOAT_BINARY:
    _op(_name, 2)(_elementwise_rule(_binary_rule, _name, _is_floating, "floating point"))
for _name in NUMERIC_BINARY:
    _op(_name, 2)(_elementwise_rule(_binary_rule, _name, _is_numeric, "numeric"))
for _name in LOGICAL_BINARY:
    _op(_name, 2)(_binary_rule(_is_logical, "bool or integer"))


@_op("abs", 1)
def _abs(types, attrs):
    """|x|: of a complex operand, its real magnitude (replaces the numeric rule registered above)."""
    t = _unary_rule(_is_numeric, "numeric")(types, attrs)
    return t.with_dtype({C64: F32, C128: F64}.get(t.dtype, t.dtype))


@_op("is_finite", 1)
def _is_finite(types, attrs):
    return types[0].with_dtype(BOOL)


@_op("compare", 2, {"dir": "str"})
def _compare(types, attrs):
    if attrs["dir"] not in COMPARE_DIRECTIONS:
        _fail(f"compare direction {attrs['dir']!r} is not one of {COMPARE_DIRECTIONS}")
    t = _same_shape_and_dtype(types)
    if t.dtype.is_complex and attrs["dir"] not in ("EQ", "NE"):
        _fail(f"compare {attrs['dir']} needs real operands, got {t.dtype}")
    return t.with_dtype(BOOL)


@_op("select", 3)
def _select(types, attrs):
    pred, on_true, on_false = types
    if pred.dtype != BOOL:
        _fail(f"select predicate must be bool, got {pred.dtype}")
    if pred.shape != on_true.shape:
        _fail(f"select predicate shape {list(pred.shape)} differs from {list(on_true.shape)}")
    _same_device(types)
    return _same_shape_and_dtype([on_true, on_false])


@_op("convert", 1, {"dtype": "dtype"})
def _convert(types, attrs):
    return types[0].with_dtype(attrs["dtype"])


@_op("broadcast_in_dim", 1, {"shape": "ints", "dims": "ints"})
def _broadcast_in_dim(types, attrs):
    (t,), shape, dims = types, attrs["shape"], attrs["dims"]
    _check_shape(shape)
    if len(dims) != t.rank:
        _fail(f"dims {list(dims)} must name one output dimension per operand dimension ({t.rank})")
    _check_dims(dims, len(shape))
    if list(dims) != sorted(dims):
        _fail(f"dims {list(dims)} must be increasing")
    for i, d in enumerate(dims):
        if t.shape[i] not in (1, shape[d]):
            _fail(f"operand dimension {i} of size {t.shape[i]} cannot broadcast to {shape[d]}")
    return t.with_shape(shape)


@_op("reshape", 1, {"shape": "ints"})
def _reshape(types, attrs):
    (t,) = types
    new = t.with_shape(attrs["shape"])
    if any(s < 0 for s in new.shape) or new.numel != t.numel:
        _fail(f"cannot reshape {list(t.shape)} ({t.numel} elements) to {list(new.shape)}")
    return new


@_op("transpose", 1, {"perm": "ints"})
def _transpose(types, attrs):
    (t,), perm = types, attrs["perm"]
    if sorted(perm) != list(range(t.rank)):
        _fail(f"perm {list(perm)} is not a permutation of {t.rank} dimensions")
    return t.with_shape([t.shape[p] for p in perm])


@_op("reverse", 1, {"dims": "ints"})
def _reverse(types, attrs):
    _check_dims(attrs["dims"], types[0].rank)
    return types[0]


@_op("slice", 1, {"starts": "ints", "limits": "ints", "strides": "ints"})
def _slice(types, attrs):
    (t,) = types
    starts, limits, strides = attrs["starts"], attrs["limits"], attrs["strides"]
    if not len(starts) == len(limits) == len(strides) == t.rank:
        _fail(f"starts, limits and strides need {t.rank} entries each")
    shape = []
    for d, (lo, hi, st) in enumerate(zip(starts, limits, strides)):
        if st < 1 or not 0 <= lo <= hi <= t.shape[d]:
            _fail(f"slice [{lo}:{hi}:{st}] invalid for dimension {d} of size {t.shape[d]}")
        shape.append((hi - lo + st - 1) // st)
    return t.with_shape(shape)


@_op("concat", None, {"dim": "int"})
def _concat(types, attrs):
    dim = attrs["dim"]
    if not types:
        _fail("concat needs at least one operand")
    _check_dims([dim], types[0].rank, "dim")
    _same_device(types)
    for t in types[1:]:
        if t.dtype != types[0].dtype or t.rank != types[0].rank or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, types[0].shape)) if i != dim):
            _fail(f"concat operands {t} and {types[0]} differ outside dimension {dim}")
    shape = list(types[0].shape)
    shape[dim] = sum(t.shape[dim] for t in types)
    return types[0].with_shape(shape)


@_op("pad", 1, {"low": "ints", "high": "ints", "value": "scalar"})
def _pad(types, attrs):
    (t,), low, high = types, attrs["low"], attrs["high"]
    if not len(low) == len(high) == t.rank:
        _fail(f"low and high need {t.rank} entries each")
    shape = [s + lo + hi for s, lo, hi in zip(t.shape, low, high)]
    if any(s < 0 for s in shape):
        _fail(f"padding {list(low)}, {list(high)} leaves a negative size")
    return t.with_shape(shape)


@_op("reduce", 1, {"kind": "str", "dims": "ints"})
def _reduce(types, attrs):
    (t,), kind, dims = types, attrs["kind"], attrs["dims"]
    if kind not in REDUCE_KINDS:
        _fail(f"reduce kind {kind!r} is not one of {REDUCE_KINDS}")
    if kind in ("any", "all") and t.dtype != BOOL:
        _fail(f"reduce {kind} needs bool operand, got {t.dtype}")
    _check_dims(dims, t.rank)
    if kind in ("max", "min") and (t.dtype.is_complex or any(t.shape[d] == 0 for d in dims)):
        _fail(f"reduce {kind} needs a real operand with no empty reduced dimension, got {t}")
    return t.with_shape([s for i, s in enumerate(t.shape) if i not in dims])


def _arg_reduce(types, attrs):
    (t,), dim = types, attrs["dim"]
    _check_dims([dim], t.rank, "dim")
    if t.dtype.is_bool or t.dtype.is_complex:
        _fail(f"operand must be real numeric, got {t.dtype}")
    if t.shape[dim] == 0:
        _fail(f"dimension {dim} of {t} is empty")
    return TensorType([s for i, s in enumerate(t.shape) if i != dim], I64, t.device)


_op("argmax", 1, {"dim": "int"})(_arg_reduce)
_op("argmin", 1, {"dim": "int"})(_arg_reduce)


@_op("dot", 2)
def _dot(types, attrs):
    """Batched matrix product: [B..., M, K] x [B..., K, N] -> [B..., M, N]."""
    a, b = types
    if a.rank < 2 or a.rank != b.rank:
        _fail(f"dot needs operands of equal rank >= 2, got {a} and {b}")
    if a.shape[:-2] != b.shape[:-2]:
        _fail(f"dot batch dimensions differ: {list(a.shape[:-2])} vs {list(b.shape[:-2])}")
    if a.shape[-1] != b.shape[-2]:
        _fail(f"dot contracting dimensions differ: {a.shape[-1]} vs {b.shape[-2]}")
    if a.dtype != b.dtype:
        _fail(f"dot operand dtypes differ: {a.dtype} vs {b.dtype}")
    if a.dtype.is_bool:
        _fail("dot operands must be numeric, got bool")
    _same_device(types)
    return a.with_shape([*a.shape[:-1], b.shape[-1]])


@_op("addmm", 3)
def _addmm(types, attrs):
    """bias + a @ b, bias [N] over the rows of [M, K] x [K, N]: one library call whose bias add is
    the matrix product's epilogue (as eager's nn.Linear), instead of a separate pass over [M, N]."""
    bias, a, b = types
    if bias.rank != 1 or a.rank != 2 or b.rank != 2:
        _fail(f"addmm needs a bias vector and two matrices, got {bias}, {a} and {b}")
    if a.shape[1] != b.shape[0] or bias.shape[0] != b.shape[1]:
        _fail(f"addmm shapes do not chain: {list(bias.shape)}, {list(a.shape)}, {list(b.shape)}")
    if not bias.dtype == a.dtype == b.dtype or a.dtype.is_bool:
        _fail(f"addmm operand dtypes differ or are bool: {bias.dtype}, {a.dtype}, {b.dtype}")
    _same_device(types)
    return a.with_shape([a.shape[0], b.shape[1]])


@_op("convolution", 2, {"stride": "ints", "padding": "ints", "dilation": "ints", "groups": "int",
                        "transposed": "bool", "output_padding": "ints"})
def _convolution(types, attrs):
    """N-d convolution in NC... layout, weights [O, I/groups, ...] ([I, O/groups, ...] transposed)."""
    x, w = types
    spatial = x.rank - 2
    if spatial < 1 or w.rank != x.rank:
        _fail(f"convolution needs input and weight of equal rank >= 3, got {x} and {w}")
    for key in ("stride", "padding", "dilation", "output_padding"):
        if len(attrs[key]) != spatial:
            _fail(f"{key} needs {spatial} entries, got {list(attrs[key])}")
    if x.dtype != w.dtype:
        _fail(f"convolution operand dtypes differ: {x.dtype} vs {w.dtype}")
    if not x.dtype.is_float:
        _fail(f"convolution operands must be real floating point, got {x.dtype}")
    _same_device(types)
    groups, transposed = attrs["groups"], attrs["transposed"]
    if groups < 1:
        _fail(f"groups must be positive, got {groups}")
    if w.shape[0] % groups:
        _fail(f"weight dimension 0 of size {w.shape[0]} is not divisible by groups={groups}")
    in_channels = w.shape[0] if transposed else w.shape[1] * groups
    if x.shape[1] != in_channels:
        _fail(f"input has {x.shape[1]} channels, weight expects {in_channels}")
    out_channels = w.shape[1] * groups if transposed else w.shape[0]
    sizes = []
    for i in range(spatial):
        n, k = x.shape[2 + i], w.shape[2 + i]
        s, p, d, op = (attrs[key][i] for key in ("stride", "padding", "dilation", "output_padding"))
        if s < 1 or d < 1 or p < 0:
            _fail(f"stride {s}, dilation {d} and padding {p} in spatial dimension {i} must be "
                  f"positive, positive and non-negative")
        if transposed:
            if not 0 <= op < max(s, d):
                _fail(f"output_padding {op} in spatial dimension {i} must be below stride or dilation")
            size = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
        else:
            if n + 2 * p < d * (k - 1) + 1:
                _fail(f"kernel of extent {d * (k - 1) + 1} does not fit the padded input of size "
                      f"{n + 2 * p} in spatial dimension {i}")
            size = (n + 2 * p - d * (k - 1) - 1) // s + 1
        if size < 0:
            _fail(f"convolution output size {size} in spatial dimension {i} is negative")
        sizes.append(size)
    return x.with_shape([x.shape[0], out_channels, *sizes])


def _check_index(t, index, dim):
    _check_dims([dim], max(t.rank, 1), "dim")
    if not index.dtype.is_integer:
        _fail(f"index must be integer, got {index.dtype}")


@_op("take", 2, {"dim": "int"})
def _take(types, attrs):
    """x[..., index, ...] along `dim` with an index tensor of any shape (index_select, embedding)."""
    t, index = types
    dim = attrs["dim"]
    _check_index(t, index, dim)
    return t.with_shape([*t.shape[:dim], *index.shape, *t.shape[dim + 1:]])


@_op("gather", 2, {"dim": "int"})
def _gather(types, attrs):
    """torch.gather: out[i][j] = x[index[i][j]][j] for dim 0, index of the operand's rank."""
    t, index = types
    _check_index(t, index, attrs["dim"])
    if index.rank != t.rank:
        _fail(f"gather index rank {index.rank} differs from operand rank {t.rank}")
    _check_index_fits(index, t, attrs["dim"], "operand")
    return t.with_shape(index.shape)


def _check_index_fits(index, t, skip_dim, what):
    """torch.gather/scatter: the index may be no larger than `t` in every dimension but `skip_dim`."""
    for d, (i, s) in enumerate(zip(index.shape, t.shape)):
        if d != skip_dim and i > s:
            _fail(f"index shape {list(index.shape)} exceeds {what} shape {list(t.shape)} in dimension {d}")


def _scatter_rule(types, attrs):
    t, index, src = types
    _check_index(t, index, attrs["dim"])
    if src.dtype != t.dtype:
        _fail(f"scattered values have dtype {src.dtype}, operand {t.dtype}")
    _same_device(types)
    return t


def _scatter_like_gather(types, attrs):
    t, index, src = types
    if not index.rank == src.rank == t.rank:
        _fail(f"scatter operand, index and source ranks differ: {t.rank}, {index.rank}, {src.rank}")
    _check_index_fits(index, src, None, "source")
    _check_index_fits(index, t, attrs["dim"], "operand")
    return _scatter_rule(types, attrs)


@_op("scatter_add", 3, {"dim": "int"})
def _scatter_add(types, attrs):
    """torch.scatter_add: the inverse of gather, accumulating."""
    return _scatter_like_gather(types, attrs)


@_op("scatter", 3, {"dim": "int"})
def _scatter(types, attrs):
    """torch.scatter: x with src written at index along dim (duplicates: one of them wins)."""
    return _scatter_like_gather(types, attrs)


@_op("index_add", 3, {"dim": "int"})
def _index_add(types, attrs):
    """The inverse of take, accumulating: src has shape x.shape[:dim] + index.shape + x.shape[dim+1:]."""
    t, index, src = types
    _check_index(t, index, attrs["dim"])
    expected = [*t.shape[:attrs["dim"]], *index.shape, *t.shape[attrs["dim"] + 1:]]
    if list(src.shape) != expected:
        _fail(f"index_add source shape {list(src.shape)} must be {expected}")
    return _scatter_rule(types, attrs)


@_op("iota", 0, {"shape": "ints", "dim": "int", "dtype": "dtype", "device": "str"})
def _iota(types, attrs):
    _check_shape(attrs["shape"])
    _check_dims([attrs["dim"]], len(attrs["shape"]), "dim")
    if attrs["dtype"].is_bool or attrs["dtype"].is_complex:
        _fail(f"iota values must be real numeric, got {attrs['dtype']}")
    return TensorType(attrs["shape"], attrs["dtype"], attrs["device"])


@_op("constant", 0, {"value": "any", "shape": "ints", "dtype": "dtype", "device": "str"})
def _constant(types, attrs):
    """A scalar (value is a number) broadcast to `shape`, or literal data (a flat list)."""
    _check_shape(attrs["shape"])
    t = TensorType(attrs["shape"], attrs["dtype"], attrs["device"])
    value = attrs["value"]
    if not all(check_kind(v, "scalar") for v in (value if isinstance(value, list) else [value])):
        _fail(f"constant value must be a number or a flat list of numbers, got {value!r}")
    if isinstance(value, list) and len(value) != t.numel:
        _fail(f"constant has {len(value)} values for shape {list(t.shape)}")
    return t


@_op("random", 0, {"dist": "str", "shape": "ints", "dtype": "dtype", "device": "str"})
def _random(types, attrs):
    if attrs["dist"] not in RANDOM_DISTRIBUTIONS:
        _fail(f"random distribution {attrs['dist']!r} is not one of {RANDOM_DISTRIBUTIONS}")
    if not attrs["dtype"].is_float:
        _fail(f"random values must be floating point, got {attrs['dtype']}")
    _check_shape(attrs["shape"])
    return TensorType(attrs["shape"], attrs["dtype"], attrs["device"])


@_op("get", 1, {"index": "int"})
def _get(types, attrs):
    (t,), i = types, attrs["index"]
    if not isinstance(t, TupleType) or not 0 <= i < len(t.elements):
        _fail(f"get index {i} out of range for {t}")
    return t.elements[i]


# A call of an ATen op the IR does not model: `target` names it ("aten.cumsum.default"), `args` and
# `kwargs` hold its arguments, with tensor operands written as Operand(i). Its type is declared.
OPS["fallback"] = OpDef("fallback", None, {"target": "str", "args": "any", "kwargs": "any"}, None)


def infer_type(op: str, types: list, attrs: dict):
    """The result type of `op` on operand `types`; raises TypeInferenceError when they do not fit."""
    opdef = OPS.get(op)
    if opdef is None:
        _fail(f"unknown op {op!r}")
    _check_arity(opdef, types)
    missing = [a for a in opdef.attrs if a not in attrs]
    if missing:
        _fail(f"{op} is missing attributes {missing}")
    extra = [a for a in attrs if a not in opdef.attrs]
    if extra:
        _fail(f"{op} does not take attributes {extra}")
    for key, kind in opdef.attrs.items():
        if not check_kind(attrs[key], kind):
            _fail(f"attribute {key}={attrs[key]!r} is not of kind {kind}")
    return _apply_rule(opdef, types, attrs)


def infer_type_of_checked(opdef: OpDef, types: list, attrs: dict):
    """infer_type for attributes known to be those `opdef` takes, of their kinds (the verifier
    checks them first, with its own messages): the same result without checking them again."""
    _check_arity(opdef, types)
    return _apply_rule(opdef, types, attrs)


def _check_arity(opdef: OpDef, types: list):
    if opdef.arity is not None and len(types) != opdef.arity:
        _fail(f"{opdef.name} takes {opdef.arity} operands, got {len(types)}")


def _apply_rule(opdef: OpDef, types: list, attrs: dict):
    if opdef.name != "get" and any(isinstance(t, TupleType) for t in types):
        _fail(f"{opdef.name} operands must be tensors, not tuples (use get)")
    if opdef.infer is None:
        _fail(f"{opdef.name} has no shape rule; its type must be declared")
    return opdef.infer(types, attrs)
