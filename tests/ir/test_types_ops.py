"""Types and the shape rules: `infer_type` results for representative cases, and errors for bad ones."""
from __future__ import annotations

import pytest
import torch

from tensorsmith.errors import TypeInferenceError
from tensorsmith.ir import OPS, Graph, TensorType, TupleType, infer_type, parse_graph
from tensorsmith.ir.attrs import Operand, TorchEnum, check_kind, format_value
from tensorsmith.ir.types import (ALL_DTYPES, BF16, BOOL, C64, F16, F32, I8, I32, I64, U8, DTYPES_BY_NAME,
                                  device_name, dtype_from_torch)



def T(spec: str):
    """A type from its IR text, e.g. T("f32[2,3]@cpu") or T("(f32[2]@cpu, i64[]@cpu)")."""
    graph = parse_graph(f"graph @t(%x: f32[]@cpu) {{\n  %0 = fallback() : {spec}\n  return\n}}\n")
    return graph.nodes[0].type


# ---- types ----------------------------------------------------------------------------------

def test_tensor_type_basics():
    t = TensorType([8, 128], F32)
    assert t.shape == (8, 128) and isinstance(t.shape, tuple)
    assert str(t) == "f32[8,128]@cpu" and t.rank == 2 and t.numel == 1024
    assert str(TensorType((), I64, "cuda:0")) == "i64[]@cuda:0"
    assert TensorType((), F32).numel == 1 and TensorType((3, 0), F32).numel == 0
    assert t.with_shape([2]) == TensorType((2,), F32) and t.with_dtype(F16) == TensorType((8, 128), F16)
    assert hash(t) == hash(TensorType((8, 128), F32)) and t != TensorType((8, 128), F32, "cuda:0")
    assert str(T("(f32[4]@cpu, i64[4]@cpu)")) == "(f32[4]@cpu, i64[4]@cpu)"
    assert T("(f32[4]@cpu, i64[4]@cpu)") == TupleType((TensorType((4,), F32), TensorType((4,), I64)))


def test_tensor_type_of_tensor_and_devices():
    assert TensorType.of(torch.zeros(2, 3, dtype=torch.bfloat16)) == TensorType((2, 3), BF16)
    assert TensorType.of(torch.tensor(True)) == TensorType((), BOOL)
    assert device_name("cuda") == "cuda:0" and device_name(torch.device("cuda", 1)) == "cuda:1"
    assert device_name("cpu") == "cpu"


def test_dtypes():
    assert {d.name for d in ALL_DTYPES} == set(DTYPES_BY_NAME) and len(ALL_DTYPES) == len(DTYPES_BY_NAME)
    for d in ALL_DTYPES:
        assert dtype_from_torch(d.torch_dtype) is d
        assert repr(d) == d.name
        assert [d.is_float, d.is_complex, d.is_bool, d.is_integer].count(True) == 1
    assert F16.is_float and C64.is_complex and BOOL.is_bool and U8.is_integer and not BOOL.is_integer
    with pytest.raises(KeyError):
        dtype_from_torch(torch.uint16)


def test_attribute_kinds():
    assert check_kind(3, "int") and not check_kind(True, "int") and not check_kind(3.0, "int")
    assert check_kind([1, 2], "ints") and not check_kind([1, True], "ints") and not check_kind((1, 2), "ints")
    assert check_kind(1.5, "scalar") and check_kind(-2, "scalar") and not check_kind("1", "scalar")
    assert check_kind(F32, "dtype") and not check_kind("f32", "dtype")
    assert check_kind(False, "bool") and not check_kind(0, "bool")
    assert check_kind("x", "str") and not check_kind(None, "str")


def test_format_value():
    assert format_value([1, -2.5, None, True, "a\"b", F32, Operand(2), TorchEnum("device", "cuda:0")]) == \
        '[1, -2.5, none, true, "a\\"b", f32, $2, device("cuda:0")]'
    assert format_value({"k": float("nan"), "m": float("-inf"), "z": -0.0}) == '{"k": nan, "m": -inf, "z": -0.0}'
    assert format_value(1e-05) == "1e-05" and format_value(10**30) == str(10**30)
    with pytest.raises(TypeError):
        format_value(object())


# ---- shape rules: accepted ------------------------------------------------------------------

GOOD = [
    ("exp", ["f32[2,3]@cpu"], {}, "f32[2,3]@cpu"),
    ("sqrt", ["c64[4]@cpu"], {}, "c64[4]@cpu"),
    ("neg", ["i8[]@cpu"], {}, "i8[]@cpu"),
    ("abs", ["f16[0,2]@cuda:0"], {}, "f16[0,2]@cuda:0"),
    ("not", ["bool[3]@cpu"], {}, "bool[3]@cpu"),
    ("not", ["i32[3]@cpu"], {}, "i32[3]@cpu"),
    ("is_finite", ["f64[3]@cpu"], {}, "bool[3]@cpu"),
    ("pow", ["f32[3]@cpu", "f32[3]@cpu"], {}, "f32[3]@cpu"),
    ("add", ["i64[2,2]@cpu", "i64[2,2]@cpu"], {}, "i64[2,2]@cpu"),
    ("remainder", ["u8[5]@cpu", "u8[5]@cpu"], {}, "u8[5]@cpu"),
    ("xor", ["bool[1]@cpu", "bool[1]@cpu"], {}, "bool[1]@cpu"),
    ("and", ["i16[1]@cpu", "i16[1]@cpu"], {}, "i16[1]@cpu"),
    ("compare", ["f32[2]@cpu", "f32[2]@cpu"], {"dir": "GE"}, "bool[2]@cpu"),
    ("select", ["bool[2]@cpu", "i32[2]@cpu", "i32[2]@cpu"], {}, "i32[2]@cpu"),
    ("convert", ["f32[2]@cpu"], {"dtype": I8}, "i8[2]@cpu"),
    ("broadcast_in_dim", ["f32[3,1]@cpu"], {"shape": [2, 3, 4], "dims": [1, 2]}, "f32[2,3,4]@cpu"),
    ("broadcast_in_dim", ["f32[]@cpu"], {"shape": [0, 5], "dims": []}, "f32[0,5]@cpu"),
    ("broadcast_in_dim", ["f32[1]@cpu"], {"shape": [0], "dims": [0]}, "f32[0]@cpu"),
    ("reshape", ["f32[2,3]@cpu"], {"shape": [3, 1, 2]}, "f32[3,1,2]@cpu"),
    ("reshape", ["f32[1,1]@cpu"], {"shape": []}, "f32[]@cpu"),
    ("reshape", ["f32[0,3]@cpu"], {"shape": [3, 0, 7]}, "f32[3,0,7]@cpu"),
    ("transpose", ["f32[2,3,4]@cpu"], {"perm": [2, 0, 1]}, "f32[4,2,3]@cpu"),
    ("transpose", ["f32[]@cpu"], {"perm": []}, "f32[]@cpu"),
    ("reverse", ["f32[2,3]@cpu"], {"dims": [1]}, "f32[2,3]@cpu"),
    ("slice", ["f32[10,4]@cpu"], {"starts": [1, 0], "limits": [8, 4], "strides": [3, 1]}, "f32[3,4]@cpu"),
    ("slice", ["f32[10]@cpu"], {"starts": [4], "limits": [4], "strides": [2]}, "f32[0]@cpu"),
    ("slice", ["f32[10]@cpu"], {"starts": [9], "limits": [10], "strides": [5]}, "f32[1]@cpu"),
    ("concat", ["f32[2,3]@cpu", "f32[2,0]@cpu", "f32[2,1]@cpu"], {"dim": 1}, "f32[2,4]@cpu"),
    ("concat", ["i64[5]@cpu"], {"dim": 0}, "i64[5]@cpu"),
    ("pad", ["f32[2,3]@cpu"], {"low": [1, -1], "high": [0, 2], "value": 0.5}, "f32[3,4]@cpu"),
    ("pad", ["f32[3]@cpu"], {"low": [-3], "high": [0], "value": 0}, "f32[0]@cpu"),
    ("reduce", ["f32[2,3,4]@cpu"], {"kind": "sum", "dims": [0, 2]}, "f32[3]@cpu"),
    ("reduce", ["bool[2,3]@cpu"], {"kind": "all", "dims": [0, 1]}, "bool[]@cpu"),
    ("reduce", ["f32[2,3]@cpu"], {"kind": "max", "dims": []}, "f32[2,3]@cpu"),
    ("reduce", ["f32[2,0]@cpu"], {"kind": "max", "dims": [0]}, "f32[0]@cpu"),
    ("reduce", ["f32[2,0]@cpu"], {"kind": "sum", "dims": [1]}, "f32[2]@cpu"),
    ("reduce", ["c64[2,3]@cpu"], {"kind": "prod", "dims": [1]}, "c64[2]@cpu"),
    ("compare", ["c64[2]@cpu", "c64[2]@cpu"], {"dir": "NE"}, "bool[2]@cpu"),
    ("add", ["c64[2]@cpu", "c64[2]@cpu"], {}, "c64[2]@cpu"),
    ("abs", ["c64[2]@cpu"], {}, "f32[2]@cpu"),
    ("abs", ["c128[2]@cpu"], {}, "f64[2]@cpu"),
    ("neg", ["c64[2]@cpu"], {}, "c64[2]@cpu"),
    ("argmax", ["f32[2,3]@cpu"], {"dim": 1}, "i64[2]@cpu"),
    ("argmin", ["i32[2,3]@cuda:0"], {"dim": 0}, "i64[3]@cuda:0"),
    ("dot", ["f32[2,3]@cpu", "f32[3,4]@cpu"], {}, "f32[2,4]@cpu"),
    ("dot", ["f64[5,2,3]@cpu", "f64[5,3,4]@cpu"], {}, "f64[5,2,4]@cpu"),
    ("addmm", ["f32[4]@cpu", "f32[2,3]@cpu", "f32[3,4]@cpu"], {}, "f32[2,4]@cpu"),
    ("convolution", ["f32[2,4,9]@cpu", "f32[6,2,3]@cpu"],
     {"stride": [2], "padding": [1], "dilation": [2], "groups": 2, "transposed": False, "output_padding": [0]},
     "f32[2,6,4]@cpu"),
    ("convolution", ["f32[1,3,5,5]@cpu", "f32[8,3,3,3]@cpu"],
     {"stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1, "transposed": False,
      "output_padding": [0, 0]}, "f32[1,8,3,3]@cpu"),
    ("convolution", ["f32[1,4,5]@cpu", "f32[4,3,3]@cpu"],
     {"stride": [2], "padding": [1], "dilation": [1], "groups": 2, "transposed": True, "output_padding": [1]},
     "f32[1,6,10]@cpu"),
    ("take", ["f32[5,4]@cpu", "i64[2,3]@cpu"], {"dim": 0}, "f32[2,3,4]@cpu"),
    ("take", ["f32[5,4]@cpu", "i32[]@cpu"], {"dim": 1}, "f32[5]@cpu"),
    ("gather", ["f32[5,4]@cpu", "i64[2,4]@cpu"], {"dim": 0}, "f32[2,4]@cpu"),
    ("gather", ["f32[5,4]@cpu", "i64[5,9]@cpu"], {"dim": 1}, "f32[5,9]@cpu"),
    ("scatter", ["f32[5,4]@cpu", "i64[2,3]@cpu", "f32[2,4]@cpu"], {"dim": 0}, "f32[5,4]@cpu"),
    ("scatter_add", ["f32[5,4]@cpu", "i64[5,6]@cpu", "f32[5,6]@cpu"], {"dim": 1}, "f32[5,4]@cpu"),
    ("index_add", ["f32[5,4]@cpu", "i64[2,3]@cpu", "f32[2,3,4]@cpu"], {"dim": 0}, "f32[5,4]@cpu"),
    ("iota", [], {"shape": [2, 3], "dim": 1, "dtype": F32, "device": "cuda:0"}, "f32[2,3]@cuda:0"),
    ("constant", [], {"value": 1.5, "shape": [2], "dtype": F16, "device": "cpu"}, "f16[2]@cpu"),
    ("constant", [], {"value": [1, 2, 3, 4, 5, 6], "shape": [2, 3], "dtype": I32, "device": "cpu"}, "i32[2,3]@cpu"),
    ("constant", [], {"value": True, "shape": [], "dtype": BOOL, "device": "cpu"}, "bool[]@cpu"),
    ("random", [], {"dist": "uniform", "shape": [3], "dtype": BF16, "device": "cpu"}, "bf16[3]@cpu"),
    ("get", ["(f32[4]@cpu, i64[4]@cpu)"], {"index": 1}, "i64[4]@cpu"),
]


@pytest.mark.parametrize("op, operands, attrs, expected", GOOD, ids=[f"{c[0]}-{i}" for i, c in enumerate(GOOD)])
def test_infer_type(op, operands, attrs, expected):
    assert infer_type(op, [T(o) for o in operands], attrs) == T(expected)


def test_every_op_with_a_shape_rule_has_a_positive_case():
    from tensorsmith.ir.ops import FLOAT_BINARY, FLOAT_UNARY, LOGICAL_BINARY, NUMERIC_BINARY, NUMERIC_UNARY
    elementwise = set(FLOAT_UNARY + FLOAT_BINARY + NUMERIC_UNARY + NUMERIC_BINARY + LOGICAL_BINARY)
    assert {c[0] for c in GOOD} | elementwise | {"fallback"} == set(OPS)


def test_graph_add_infers_types():
    graph = Graph()
    x = graph.add_param("x", TensorType((2, 3), F32))
    y = graph.add("reduce", [x], {"kind": "sum", "dims": [1]})
    z = graph.add("broadcast_in_dim", [y], {"shape": [2, 3], "dims": [0]})
    assert y.type == TensorType((2,), F32) and z.type == TensorType((2, 3), F32)
    assert graph.nodes == [y, z] and graph.users() == {x: [y], y: [z], z: []}
    given = graph.add("fallback", [z], {"target": "aten.cumsum.default", "args": [Operand(0), 1], "kwargs": {}},
                      type=TensorType((2, 3), F32))
    assert given.type == TensorType((2, 3), F32)


# ---- shape rules: rejected ------------------------------------------------------------------

CONV = {"stride": [1], "padding": [0], "dilation": [1], "groups": 1, "transposed": False, "output_padding": [0]}
BAD = [
    ("nosuchop", ["f32[2]@cpu"], {}, "unknown op 'nosuchop'"),
    ("add", ["f32[2]@cpu"], {}, "add takes 2 operands, got 1"),
    ("iota", ["f32[2]@cpu"], {"shape": [2], "dim": 0, "dtype": F32, "device": "cpu"}, "iota takes 0 operands"),
    ("reduce", ["f32[2]@cpu"], {"kind": "sum"}, "missing attributes ['dims']"),
    ("neg", ["f32[2]@cpu"], {"alpha": 1}, "does not take attributes ['alpha']"),
    ("transpose", ["f32[2,3]@cpu"], {"perm": 1}, "perm"),
    ("transpose", ["f32[2,3]@cpu"], {"perm": (1, 0)}, "perm"),
    ("reduce", ["f32[2,3]@cpu"], {"kind": "sum", "dims": [0.0]}, "dims"),
    ("compare", ["f32[2]@cpu", "f32[2]@cpu"], {"dir": 1}, "dir"),
    ("convert", ["f32[2]@cpu"], {"dtype": "f32"}, "dtype"),
    ("pad", ["f32[2]@cpu"], {"low": [0], "high": [0], "value": "0"}, "value"),
    ("neg", ["(f32[2]@cpu, f32[2]@cpu)"], {}, "tuples"),
    ("fallback", ["f32[2]@cpu"], {"target": "aten.x.default", "args": [], "kwargs": {}}, "must be declared"),
    ("exp", ["i32[2]@cpu"], {}, "floating point, got i32"),
    ("neg", ["bool[2]@cpu"], {}, "numeric, got bool"),
    ("not", ["f32[2]@cpu"], {}, "bool or integer, got f32"),
    ("add", ["f32[2]@cpu", "f32[3]@cpu"], {}, "shapes differ: [2] vs [3]"),
    ("add", ["f32[2]@cpu", "f64[2]@cpu"], {}, "dtypes differ: f32 vs f64"),
    ("add", ["f32[2]@cpu", "f32[2]@cuda:0"], {}, "different devices"),
    ("add", ["bool[2]@cpu", "bool[2]@cpu"], {}, "numeric, got bool"),
    ("atan2", ["i32[2]@cpu", "i32[2]@cpu"], {}, "floating point"),
    ("or", ["f32[2]@cpu", "f32[2]@cpu"], {}, "bool or integer"),
    ("compare", ["f32[2]@cpu", "f32[2]@cpu"], {"dir": "LESS"}, "compare direction 'LESS'"),
    ("compare", ["f32[2]@cpu", "i32[2]@cpu"], {"dir": "LT"}, "dtypes differ"),
    ("select", ["i32[2]@cpu", "f32[2]@cpu", "f32[2]@cpu"], {}, "predicate must be bool, got i32"),
    ("select", ["bool[3]@cpu", "f32[2]@cpu", "f32[2]@cpu"], {}, "predicate shape [3] differs"),
    ("select", ["bool[2]@cpu", "f32[2]@cpu", "f64[2]@cpu"], {}, "dtypes differ"),
    ("select", ["bool[2]@cuda:0", "f32[2]@cpu", "f32[2]@cpu"], {}, "different devices"),
    ("broadcast_in_dim", ["f32[3]@cpu"], {"shape": [3, 4], "dims": []}, "one output dimension per operand"),
    ("broadcast_in_dim", ["f32[3]@cpu"], {"shape": [3, 4], "dims": [2]}, "out of range"),
    ("broadcast_in_dim", ["f32[3,4]@cpu"], {"shape": [4, 3], "dims": [1, 0]}, "must be increasing"),
    ("broadcast_in_dim", ["f32[3,3]@cpu"], {"shape": [3, 3], "dims": [0, 0]}, "repeat"),
    ("broadcast_in_dim", ["f32[3]@cpu"], {"shape": [2, 4], "dims": [1]}, "size 3 cannot broadcast to 4"),
    ("broadcast_in_dim", ["f32[]@cpu"], {"shape": [2, -1], "dims": []}, "negative"),
    ("reshape", ["f32[2,3]@cpu"], {"shape": [5]}, "cannot reshape [2, 3] (6 elements) to [5]"),
    ("reshape", ["f32[2,3]@cpu"], {"shape": [-1, -6]}, "cannot reshape"),
    ("reshape", ["f32[2,3]@cpu"], {"shape": [-1, 6]}, "cannot reshape"),
    ("transpose", ["f32[2,3]@cpu"], {"perm": [0, 0]}, "not a permutation"),
    ("transpose", ["f32[2,3]@cpu"], {"perm": [1, 2]}, "not a permutation"),
    ("transpose", ["f32[2,3]@cpu"], {"perm": [0]}, "not a permutation"),
    ("reverse", ["f32[2,3]@cpu"], {"dims": [2]}, "out of range"),
    ("reverse", ["f32[2,3]@cpu"], {"dims": [-1]}, "out of range"),
    ("slice", ["f32[10]@cpu"], {"starts": [0], "limits": [11], "strides": [1]}, "invalid for dimension 0"),
    ("slice", ["f32[10]@cpu"], {"starts": [5], "limits": [4], "strides": [1]}, "invalid"),
    ("slice", ["f32[10]@cpu"], {"starts": [-1], "limits": [4], "strides": [1]}, "invalid"),
    ("slice", ["f32[10]@cpu"], {"starts": [0], "limits": [4], "strides": [0]}, "invalid"),
    ("slice", ["f32[10,2]@cpu"], {"starts": [0], "limits": [4], "strides": [1]}, "2 entries each"),
    ("concat", [], {"dim": 0}, "at least one operand"),
    ("concat", ["f32[2,3]@cpu", "f32[3,3]@cpu"], {"dim": 1}, "differ outside dimension 1"),
    ("concat", ["f32[2,3]@cpu", "f64[2,3]@cpu"], {"dim": 0}, "differ"),
    ("concat", ["f32[2,3]@cpu", "f32[2]@cpu"], {"dim": 0}, "differ"),
    ("concat", ["f32[2]@cpu", "f32[2]@cpu"], {"dim": 1}, "out of range"),
    ("concat", ["f32[2]@cpu", "f32[2]@cuda:0"], {"dim": 0}, "different devices"),
    ("pad", ["f32[2]@cpu"], {"low": [0, 0], "high": [0, 0], "value": 0}, "1 entries each"),
    ("pad", ["f32[2]@cpu"], {"low": [-2], "high": [-1], "value": 0}, "negative size"),
    ("reduce", ["f32[2]@cpu"], {"kind": "mean", "dims": [0]}, "reduce kind 'mean'"),
    ("reduce", ["f32[2]@cpu"], {"kind": "any", "dims": [0]}, "needs bool operand, got f32"),
    ("reduce", ["f32[2]@cpu"], {"kind": "sum", "dims": [1]}, "out of range"),
    ("reduce", ["f32[2,2]@cpu"], {"kind": "sum", "dims": [1, 1]}, "repeat"),
    ("argmax", ["f32[2]@cpu"], {"dim": 1}, "out of range"),
    ("argmin", ["f32[]@cpu"], {"dim": 0}, "out of range"),
    ("argmax", ["bool[3]@cpu"], {"dim": 0}, "bool"),
    ("argmax", ["c64[3]@cpu"], {"dim": 0}, "real numeric, got c64"),
    ("argmin", ["f32[2,0]@cpu"], {"dim": 1}, "empty"),
    ("reduce", ["f32[2,0]@cpu"], {"kind": "max", "dims": [0, 1]}, "no empty reduced dimension"),
    ("reduce", ["c64[2]@cpu"], {"kind": "min", "dims": [0]}, "real operand"),
    ("floor", ["c64[2]@cpu"], {}, "real floating point, got c64"),
    ("erf", ["c128[2]@cpu"], {}, "real floating point"),
    ("sign", ["c64[2]@cpu"], {}, "real numeric, got c64"),
    ("max", ["c64[2]@cpu", "c64[2]@cpu"], {}, "real numeric"),
    ("remainder", ["c64[2]@cpu", "c64[2]@cpu"], {}, "real numeric"),
    ("atan2", ["c64[2]@cpu", "c64[2]@cpu"], {}, "real floating point"),
    ("compare", ["c64[2]@cpu", "c64[2]@cpu"], {"dir": "LT"}, "compare LT needs real operands"),
    ("dot", ["f32[3]@cpu", "f32[3]@cpu"], {}, "rank >= 2"),
    ("dot", ["f32[2,3]@cpu", "f32[2,3,4]@cpu"], {}, "equal rank"),
    ("dot", ["f32[2,3]@cpu", "f32[4,5]@cpu"], {}, "contracting dimensions differ: 3 vs 4"),
    ("dot", ["f32[2,2,3]@cpu", "f32[3,3,4]@cpu"], {}, "batch dimensions differ: [2] vs [3]"),
    ("dot", ["f32[2,3]@cpu", "f64[3,4]@cpu"], {}, "dtypes differ"),
    ("dot", ["f32[2,3]@cpu", "f32[3,4]@cuda:0"], {}, "different devices"),
    ("dot", ["bool[2,3]@cpu", "bool[3,4]@cpu"], {}, "bool"),
    ("addmm", ["f32[2,4]@cpu", "f32[2,3]@cpu", "f32[3,4]@cpu"], {}, "bias vector"),
    ("addmm", ["f32[5]@cpu", "f32[2,3]@cpu", "f32[3,4]@cpu"], {}, "do not chain"),
    ("addmm", ["f64[4]@cpu", "f32[2,3]@cpu", "f32[3,4]@cpu"], {}, "dtypes differ"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,2,3]@cpu"], CONV, "input has 3 channels, weight expects 2"),
    ("convolution", ["f32[1,4,5]@cpu", "f32[6,2,3]@cpu"], {**CONV, "groups": 3}, "channels"),
    ("convolution", ["f32[1,4,5]@cpu", "f32[5,2,3]@cpu"], {**CONV, "groups": 2}, "divisible"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[3,2,3]@cpu"], {**CONV, "groups": 2, "transposed": True}, "divisible"),
    ("convolution", ["f32[1,4,5]@cpu", "f32[8,4,3]@cpu"], {**CONV, "groups": 0}, "groups"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,3,3,3]@cpu"], CONV, "equal rank >= 3"),
    ("convolution", ["f32[3,5]@cpu", "f32[8,3]@cpu"], {**CONV, "stride": [], "padding": [], "dilation": [],
                                                      "output_padding": []}, "equal rank >= 3"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,3,3]@cpu"], {**CONV, "stride": [1, 1]}, "stride needs 1 entries"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,3,3]@cpu"], {**CONV, "stride": [0]}, "stride"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,3,3]@cpu"], {**CONV, "dilation": [0]}, "dilation"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,3,3]@cpu"], {**CONV, "padding": [-1]}, "padding"),
    ("convolution", ["f32[1,3,2]@cpu", "f32[8,3,3]@cpu"], CONV, "kernel"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,3,7]@cpu"], CONV, "kernel"),
    ("convolution", ["f32[1,3,5]@cpu", "f64[8,3,3]@cpu"], CONV, "dtypes differ"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[8,3,3]@cuda:0"], CONV, "different devices"),
    ("convolution", ["f32[1,3,5]@cpu", "f32[3,2,3]@cpu"], {**CONV, "transposed": True, "stride": [2],
                                                         "output_padding": [2]}, "output_padding"),
    ("take", ["f32[5,4]@cpu", "f32[2]@cpu"], {"dim": 0}, "index must be integer, got f32"),
    ("take", ["f32[5,4]@cpu", "i64[2]@cpu"], {"dim": 2}, "out of range"),
    ("take", ["f32[5,4]@cpu", "i64[2]@cpu"], {"dim": -1}, "out of range"),
    ("gather", ["f32[5,4]@cpu", "i64[5]@cpu"], {"dim": 0}, "index rank 1 differs from operand rank 2"),
    ("gather", ["f32[5,4]@cpu", "i64[2,5]@cpu"], {"dim": 0}, "index"),
    ("gather", ["f32[5,4]@cpu", "bool[2,4]@cpu"], {"dim": 0}, "integer"),
    ("scatter", ["f32[5,4]@cpu", "i64[2,3]@cpu", "f64[2,3]@cpu"], {"dim": 0}, "dtype f64, operand f32"),
    ("scatter", ["f32[5,4]@cpu", "i64[2]@cpu", "f32[2]@cpu"], {"dim": 0}, "rank"),
    ("scatter", ["f32[5,4]@cpu", "i64[2,3]@cpu", "f32[2,2]@cpu"], {"dim": 0}, "index"),
    ("scatter_add", ["f32[5,4]@cpu", "i64[2,5]@cpu", "f32[2,5]@cpu"], {"dim": 0}, "index"),
    ("scatter_add", ["f32[5,4]@cpu", "i64[2,3]@cpu", "f32[2,3]@cpu"], {"dim": 2}, "out of range"),
    ("index_add", ["f32[5,4]@cpu", "i64[2]@cpu", "f32[2,3]@cpu"], {"dim": 0}, "source shape [2, 3] must be [2, 4]"),
    ("index_add", ["f32[5,4]@cpu", "i64[2]@cpu", "f32[2,4]@cpu"], {"dim": 2}, "out of range"),
    ("index_add", ["f32[5,4]@cpu", "f32[2]@cpu", "f32[2,4]@cpu"], {"dim": 0}, "integer"),
    ("index_add", ["f32[5,4]@cpu", "i64[2]@cpu", "i64[2,4]@cpu"], {"dim": 0}, "dtype i64, operand f32"),
    ("iota", [], {"shape": [2, 3], "dim": 2, "dtype": F32, "device": "cpu"}, "out of range"),
    ("iota", [], {"shape": [], "dim": 0, "dtype": F32, "device": "cpu"}, "out of range"),
    ("iota", [], {"shape": [-3], "dim": 0, "dtype": F32, "device": "cpu"}, "negative"),
    ("iota", [], {"shape": [3], "dim": 0, "dtype": BOOL, "device": "cpu"}, "bool"),
    ("iota", [], {"shape": [3], "dim": 0, "dtype": C64, "device": "cpu"}, "real numeric, got c64"),
    ("convolution", ["i64[1,3,5]@cpu", "i64[8,3,3]@cpu"], CONV, "real floating point, got i64"),
    ("convolution", ["c64[1,3,5]@cpu", "c64[8,3,3]@cpu"], CONV, "real floating point"),
    ("constant", [], {"value": [1, 2, 3], "shape": [2, 2], "dtype": F32, "device": "cpu"},
     "constant has 3 values for shape [2, 2]"),
    ("constant", [], {"value": 1.0, "shape": [-1], "dtype": F32, "device": "cpu"}, "negative"),
    ("constant", [], {"value": "1.0", "shape": [], "dtype": F32, "device": "cpu"}, "value"),
    ("constant", [], {"value": None, "shape": [], "dtype": F32, "device": "cpu"}, "value"),
    ("constant", [], {"value": [[1.0, 2.0]], "shape": [1, 2], "dtype": F32, "device": "cpu"}, "value"),
    ("random", [], {"dist": "cauchy", "shape": [3], "dtype": F32, "device": "cpu"}, "distribution 'cauchy'"),
    ("random", [], {"dist": "normal", "shape": [3], "dtype": I64, "device": "cpu"}, "floating point, got i64"),
    ("random", [], {"dist": "normal", "shape": [2, -3], "dtype": F32, "device": "cpu"}, "negative"),
    ("get", ["(f32[4]@cpu, i64[4]@cpu)"], {"index": 2}, "get index 2 out of range"),
    ("get", ["(f32[4]@cpu, i64[4]@cpu)"], {"index": -1}, "out of range"),
    ("get", ["f32[4]@cpu"], {"index": 0}, "out of range"),
]


@pytest.mark.parametrize("op, operands, attrs, message", BAD, ids=[f"{c[0]}-{i}" for i, c in enumerate(BAD)])
def test_infer_type_rejects(op, operands, attrs, message):
    with pytest.raises(TypeInferenceError) as info:
        infer_type(op, [T(o) for o in operands], attrs)
    assert message in str(info.value)


def test_graph_add_raises_type_inference_error_and_adds_nothing():
    graph = Graph()
    x = graph.add_param("x", TensorType((2, 3), F32))
    with pytest.raises(TypeInferenceError, match="not a permutation"):
        graph.add("transpose", [x], {"perm": [0, 2]})
    assert graph.nodes == []


def test_shape_rules_do_not_mutate_attributes():
    shape, dims = [2, 3], [1]
    attrs = {"shape": shape, "dims": dims}
    infer_type("broadcast_in_dim", [TensorType((3,), F32)], attrs)
    assert attrs == {"shape": [2, 3], "dims": [1]} and attrs["shape"] is shape
