"""print -> parse -> print gives identical text; malformed text gives a ParseError with line/column."""
from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ir_builders import assert_same_tensors, random_graphs, random_inputs, roundtrip, text
from tensorsmith.errors import ParseError
from tensorsmith.ir import OPS, Graph, Operand, TensorType, TorchEnum, TupleType, interpret, parse_graph, print_graph, verify
from tensorsmith.ir.ops import FLOAT_BINARY, FLOAT_UNARY, LOGICAL_BINARY, LOGICAL_UNARY, NUMERIC_BINARY, NUMERIC_UNARY
from tensorsmith.ir.types import ALL_DTYPES, F32, I64



# Every op that is not elementwise, with the attribute forms the printer can write.
STRUCTURAL = text(r'''
    graph @forward(%x: f32[2,3]@cpu, %w: f32[3,4]@cpu, %i: i64[2,3]@cpu, %b: bool[2,3]@cpu, %s: f64[]@cpu, %e: f32[0,3]@cpu, %c: f32[1,4,5]@cpu, %k: f32[4,2,3]@cpu, %kt: f32[4,3,3]@cpu, %g: f16[7]@cuda:0) {
      %0 = is_finite(%x) : bool[2,3]@cpu
      %1 = compare(%x, %x) {dir="LT"} : bool[2,3]@cpu loc("model.py:12 in forward")
      %2 = select(%1, %x, %x) : f32[2,3]@cpu
      %3 = convert(%x) {dtype=bf16} : bf16[2,3]@cpu
      %4 = broadcast_in_dim(%s) {shape=[4, 0, 2], dims=[]} : f64[4,0,2]@cpu
      %5 = reshape(%x) {shape=[3, 1, 2]} : f32[3,1,2]@cpu
      %6 = transpose(%5) {perm=[2, 0, 1]} : f32[2,3,1]@cpu
      %7 = reverse(%x) {dims=[0, 1]} : f32[2,3]@cpu
      %8 = slice(%x) {starts=[0, 1], limits=[2, 3], strides=[2, 1]} : f32[1,2]@cpu
      %9 = concat(%x, %e, %x) {dim=0} : f32[4,3]@cpu
      %10 = pad(%x) {low=[1, -1], high=[0, 2], value=-inf} : f32[3,4]@cpu
      %11 = reduce(%x) {kind="prod", dims=[0, 1]} : f32[]@cpu
      %12 = reduce(%b) {kind="any", dims=[1]} : bool[2]@cpu
      %13 = argmax(%x) {dim=1} : i64[2]@cpu
      %14 = argmin(%x) {dim=0} : i64[3]@cpu
      %15 = dot(%x, %w) : f32[2,4]@cpu
      %16 = convolution(%c, %k) {stride=[2], padding=[1], dilation=[1], groups=2, transposed=false, output_padding=[0]} : f32[1,4,3]@cpu
      %17 = convolution(%c, %kt) {stride=[2], padding=[0], dilation=[1], groups=1, transposed=true, output_padding=[1]} : f32[1,3,12]@cpu
      %18 = take(%w, %i) {dim=0} : f32[2,3,4]@cpu
      %19 = gather(%x, %i) {dim=1} : f32[2,3]@cpu
      %20 = scatter_add(%x, %i, %x) {dim=0} : f32[2,3]@cpu
      %21 = scatter(%x, %i, %x) {dim=1} : f32[2,3]@cpu
      %22 = index_add(%w, %i, %18) {dim=0} : f32[3,4]@cpu
      %23 = iota() {shape=[2, 3], dim=1, dtype=i32, device="cuda:0"} : i32[2,3]@cuda:0
      %24 = constant() {value=[1.0, -0.0, inf, -inf, nan, 1e-05], shape=[2, 3], dtype=f32, device="cpu"} : f32[2,3]@cpu
      %25 = constant() {value=9223372036854775807, shape=[], dtype=i64, device="cpu"} : i64[]@cpu
      %26 = constant() {value=true, shape=[0, 5], dtype=bool, device="cpu"} : bool[0,5]@cpu
      %27 = random() {dist="normal", shape=[0], dtype=f16, device="cpu"} : f16[0]@cpu
      %28 = fallback(%x) {target="aten.sort.stable", args=[$0], kwargs={"stable": true, "dim": -1, "descending": false}} : (f32[2,3]@cpu, i64[2,3]@cpu)
      %29 = get(%28) {index=1} : i64[2,3]@cpu
      %30 = fallback(%x) {target="aten.full_like.default", args=[$0, 0.1], kwargs={"dtype": f64, "layout": layout("strided"), "device": device("cpu"), "pin_memory": false, "memory_format": memory_format("preserve_format")}} : f64[2,3]@cpu
      %31 = fallback(%x, %x) {target="aten.cat.default", args=[[$0, $1], -1], kwargs={}} : f32[2,6]@cpu
      %32 = fallback(%x) {target="aten.gelu.default", args=[$0], kwargs={"approximate": "tanh"}} : f32[2,3]@cpu loc("a \"quoted\" C:\\path\twith tab, caf\u00e9")
      %33 = fallback(%x) {target="aten.clamp.default", args=[$0, none, -1e+16], kwargs={}} : f32[2,3]@cpu
      %34 = fallback(%i) {target="aten.add.Scalar", args=[$0, 123456789012345678901234567890], kwargs={}} : i64[2,3]@cpu
      %35 = fallback(%g) {target="aten.to.dtype", args=[$0, f32], kwargs={"device": device("cuda:0"), "copy": false, "nested": [[[]], {}, {"a": [1, -2.5, "s"]}]}} : f32[7]@cuda:0
      %36 = fallback() {target="aten.empty.memory_format", args=[[2, 0]], kwargs={"dtype": c64, "device": device("cpu")}} : c64[2,0]@cpu
      %37 = fallback(%x) {target="aten.aminmax.default", args=[$0], kwargs={}} : (f32[]@cpu)
      %38 = fallback(%x) {target="aten._assert_async.default", args=[$0], kwargs={}} : ()
      %39 = reduce(%w) {kind="sum", dims=[0]} : f32[4]@cpu
      %40 = addmm(%39, %x, %w) : f32[2,4]@cpu
      return %2, %x, %29, %36
    }
''')

ELEMENTWISE = {
    **{op: ("f32", 1) for op in FLOAT_UNARY + ("is_finite",)},
    **{op: ("i32", 1) for op in NUMERIC_UNARY + LOGICAL_UNARY},
    **{op: ("f64", 2) for op in FLOAT_BINARY},
    **{op: ("i8", 2) for op in NUMERIC_BINARY},
    **{op: ("bool", 2) for op in LOGICAL_BINARY},
}


def ops_in(ir_text: str) -> set[str]:
    return set(re.findall(r"= ([a-z_0-9]+)\(", ir_text))


def test_structural_text_round_trips_and_verifies():
    graph = parse_graph(STRUCTURAL)
    verify(graph)
    assert print_graph(graph) == STRUCTURAL
    assert str(graph) == STRUCTURAL


def test_round_trip_texts_cover_every_op():
    assert ops_in(STRUCTURAL) | set(ELEMENTWISE) == set(OPS)


@pytest.mark.parametrize("op", sorted(ELEMENTWISE))
def test_elementwise_op_round_trips(op):
    dtype, arity = ELEMENTWISE[op]
    result = "bool" if op == "is_finite" else dtype
    operands = ", ".join(["%a", "%b"][:arity])
    ir = text(f"""
        graph @main(%a: {dtype}[4,0]@cpu, %b: {dtype}[4,0]@cpu) {{
          %0 = {op}({operands}) : {result}[4,0]@cpu loc("model.py:3")
          %1 = {op}({operands.replace('%a', '%0') if result == dtype else operands}) : {result}[4,0]@cpu
          return %1, %0, %1
        }}
    """)
    graph = parse_graph(ir)
    verify(graph)
    assert print_graph(graph) == ir


def test_parsed_structure():
    graph = parse_graph(STRUCTURAL)
    assert graph.name == "forward"
    assert [p.name for p in graph.params][:3] == ["x", "w", "i"]
    assert graph.params[4].type == TensorType((), graph.params[4].type.dtype)
    assert graph.params[-1].type.device == "cuda:0"
    nodes = graph.nodes
    assert nodes[1].source == "model.py:12 in forward" and nodes[0].source is None
    assert nodes[10].attrs == {"low": [1, -1], "high": [0, 2], "value": -math.inf}
    value = nodes[24].attrs["value"]
    assert value[:2] == [1.0, -0.0] and math.copysign(1, value[1]) == -1 and math.isnan(value[4])
    assert value[5] == 1e-05 and value[2] == math.inf and isinstance(value[0], float)
    assert nodes[25].attrs["value"] == 2**63 - 1
    assert isinstance(nodes[28].type, TupleType) and nodes[28].type.elements[1].dtype == I64
    assert nodes[29].inputs == [nodes[28]]
    assert nodes[30].attrs["kwargs"]["device"] == TorchEnum("device", "cpu")
    assert nodes[30].attrs["kwargs"]["layout"] == TorchEnum("layout", "strided")
    assert nodes[31].attrs["args"] == [[Operand(0), Operand(1)], -1]
    assert nodes[32].source == 'a "quoted" C:\\path\twith tab, caf\u00e9'
    assert nodes[33].attrs["args"] == [Operand(0), None, -1e16]
    assert nodes[34].attrs["args"][1] == 123456789012345678901234567890
    assert nodes[35].attrs["args"][1] == F32
    assert nodes[35].attrs["kwargs"]["nested"] == [[[]], {}, {"a": [1, -2.5, "s"]}]
    assert nodes[37].type == TupleType((TensorType((), F32),)) and nodes[38].type == TupleType(())
    assert graph.outputs == [nodes[2], graph.params[0], nodes[29], nodes[36]]


def test_empty_graph_and_no_outputs():
    ir = text("""
        graph @main() {
          %0 = iota() {shape=[3], dim=0, dtype=i64, device="cpu"} : i64[3]@cpu
          return
        }
    """)
    assert roundtrip(ir) == ir
    assert roundtrip("graph @f() {\n  return\n}\n") == "graph @f() {\n  return\n}\n"


def test_non_canonical_text_prints_canonically():
    """Free spacing, arbitrary value names and attribute order parse; printing canonicalizes."""
    ir = """graph @main(%x:f32[2 , 3]@cpu){%t=reduce(%x){dims=[1],kind="sum"}:f32[2]@cpu
    %u = neg(%t) : f32[2]@cpu loc( "m.py:1" )  return %u,%t}"""
    expected = text("""
        graph @main(%x: f32[2,3]@cpu) {
          %0 = reduce(%x) {kind="sum", dims=[1]} : f32[2]@cpu
          %1 = neg(%0) : f32[2]@cpu loc("m.py:1")
          return %1, %0
        }
    """)
    assert roundtrip(ir) == expected
    assert roundtrip(expected) == expected


def test_param_names_with_and_without_names():
    graph = Graph()
    t = TensorType((2,), F32)
    names = ["p1", None, "x", "x", "1abc", "_y", "with space", "p7", "0", "p3"]
    params = [graph.add_param(n, t) for n in names]
    graph.outputs = list(params)
    printed = print_graph(graph)
    header = printed.splitlines()[0]
    assert header == "graph @main(" + ", ".join(
        f"%{n}: f32[2]@cpu" for n in ["p1", "p1_", "x", "p3", "p4", "_y", "p6", "p7", "p8", "p9"]) + ") {"
    assert roundtrip(printed) == printed
    reparsed = parse_graph(printed)
    assert len(set(map(id, reparsed.outputs))) == len(names)


def test_duplicate_outputs_and_param_outputs():
    ir = text("""
        graph @main(%x: f32[]@cpu) {
          %0 = exp(%x) : f32[]@cpu
          return %x, %0, %x, %0
        }
    """)
    graph = parse_graph(ir)
    assert graph.outputs[0] is graph.outputs[2] is graph.params[0]
    assert roundtrip(ir) == ir


# ---- attribute values ----------------------------------------------------------------------


def _same_value(a, b) -> bool:
    """Structural equality that tells int/float/bool apart, -0.0 from 0.0, and takes nan == nan."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)
    return a == b


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-2**70, 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.1, -0.0, 1e-05, 1e16, -1e-300, 5e-324, 1.7976931348623157e308]),
    st.text(), st.sampled_from(['"', "\\", 'a"b\\c\n\t', "\x00\x1f", "caf\u00e9 \U0001f642"]),
    st.sampled_from(ALL_DTYPES), st.builds(Operand, st.integers(0, 3)),
    st.builds(TorchEnum, st.sampled_from(["device", "layout", "memory_format"]),
              st.sampled_from(["cpu", "cuda:0", "strided", "channels_last", 'we"ird'])),
)
attr_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(args=st.lists(attr_values, max_size=4), kwargs=st.dictionaries(st.text(max_size=6), attr_values, max_size=3),
       source=st.one_of(st.none(), st.text(min_size=1)))
def test_attribute_values_round_trip(args, kwargs, source):
    graph = Graph()
    x = graph.add_param("x", TensorType((3,), F32))
    node = graph.add("fallback", [x, x, x, x], {"target": "aten.foo.default", "args": args, "kwargs": kwargs},
                     type=TensorType((3,), F32), source=source)
    graph.outputs = [node]
    printed = print_graph(graph)
    parsed = parse_graph(printed)
    assert print_graph(parsed) == printed
    (back,) = parsed.nodes
    assert _same_value(back.attrs["args"], args)
    assert _same_value(back.attrs["kwargs"], kwargs)
    assert back.source == source


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs())
def test_random_graphs_round_trip(graph):
    verify(graph)
    printed = print_graph(graph)
    parsed = parse_graph(printed)
    verify(parsed)
    assert print_graph(parsed) == printed
    assert [n.type for n in parsed.nodes] == [n.type for n in graph.nodes]
    assert [n.source for n in parsed.nodes] == [n.source for n in graph.nodes]
    inputs = random_inputs(graph)
    assert_same_tensors(interpret(parsed, inputs), interpret(graph, inputs))


# ---- parse errors --------------------------------------------------------------------------

GOOD_HEADER = "graph @main(%x: f32[2]@cpu) {\n"


@pytest.mark.parametrize("ir, line, column, message", [
    ("", 1, 1, "expected graph, found 'end of text'"),
    ("graph main() {\n  return\n}\n", 1, 7, "expected at, found 'main'"),
    ("graph @main(%x: f33[2]@cpu) {\n  return %x\n}\n", 1, 17, "unknown element type 'f33'"),
    ("graph @main(%x: f32[2]) {\n  return %x\n}\n", 1, 23, "expected at"),
    ("graph @main(%x: f32[2.5]@cpu) {\n  return %x\n}\n", 1, 21, "dimension"),
    ("graph @main(%x: f32[-2]@cpu) {\n  return %x\n}\n", 1, 21, "dimension"),
    ("graph @main(%x: f32[2]@cpu, %x: f32[2]@cpu) {\n  return %x\n}\n", 1, 29, "%x is defined twice"),
    (GOOD_HEADER + "  %0 = neg(%y) : f32[2]@cpu\n  return %0\n}\n", 2, 12, "undefined value %y"),
    (GOOD_HEADER + "  %0 = neg(%x) : f32[2]@cpu\n  %0 = neg(%x) : f32[2]@cpu\n  return %0\n}\n", 3, 3,
     "%0 is defined twice"),
    (GOOD_HEADER + "  %x = neg(%x) : f32[2]@cpu\n  return %x\n}\n", 2, 3, "%x is defined twice"),
    (GOOD_HEADER + "  %0 = neg(%x) f32[2]@cpu\n  return %0\n}\n", 2, 16, "expected :, found 'f32'"),
    (GOOD_HEADER + "  %0 = neg(%x) : f32[2]@cpu\n  return %0\n", 4, 1, "expected }, found 'end of text'"),
    (GOOD_HEADER + "  %0 = neg(%x) : f32[2]@cpu\n  return %0\n}\n}", 5, 1, "expected end, found '}'"),
    (GOOD_HEADER + "  %0 = neg(%x) : f32[2]@cpu ~\n  return %0\n}\n", 2, 29, "unexpected character '~'"),
    (GOOD_HEADER + "  %0 = constant() {value=[1, 2, shape=[2]} : f32[2]@cpu\n  return %0\n}\n", 2, 33,
     "unknown word 'shape'"),
    (GOOD_HEADER + "  %0 = constant() {value=[1, 2 shape=[2]} : f32[2]@cpu\n  return %0\n}\n", 2, 32,
     "expected ], found 'shape'"),
    (GOOD_HEADER + "  %0 = constant() {value=bogus} : f32[2]@cpu\n  return %0\n}\n", 2, 26, "unknown word 'bogus'"),
    (GOOD_HEADER + "  %0 = constant() {value=} : f32[2]@cpu\n  return %0\n}\n", 2, 26, "expected an attribute value"),
    (GOOD_HEADER + '  %0 = fallback(%x) {target="a\\qb"} : f32[2]@cpu\n  return %0\n}\n', 2, 29, "string"),
    (GOOD_HEADER + '  %0 = fallback(%x) {target="a\tb"} : f32[2]@cpu\n  return %0\n}\n', 2, 29, "string"),
    (GOOD_HEADER + '  %0 = fallback(%x) {target="ab} : f32[2]@cpu\n  return %0\n}\n', 2, 29, "unexpected character"),
    (GOOD_HEADER + '  %0 = neg(%x) : f32[2]@cpu loc(12)\n  return %0\n}\n', 2, 33, "expected string"),
    (GOOD_HEADER + '  %0 = fallback(%x) {args=[device(cpu)]} : f32[2]@cpu\n  return %0\n}\n', 2, 35,
     "expected string"),
    (GOOD_HEADER + '  %0 = fallback(%x) {kwargs={a: 1}} : f32[2]@cpu\n  return %0\n}\n', 2, 30, "expected string"),
    (GOOD_HEADER + "  %0 = neg(%x) : (f32[2]@cpu, ) \n  return %0\n}\n", 2, 31, "expected ident"),
])
def test_parse_errors_name_line_and_column(ir, line, column, message):
    with pytest.raises(ParseError) as info:
        parse_graph(ir)
    error = str(info.value)
    assert error.startswith(f"line {line}, column {column}: "), error
    assert message in error.splitlines()[0], error
    # The message quotes the offending line with a caret under the column.
    quoted, caret = error.splitlines()[1:3]
    assert quoted == "  " + (ir.split("\n") + [""])[line - 1]
    assert caret == "  " + " " * (column - 1) + "^"


def test_parse_error_is_a_tensorsmith_error():
    from tensorsmith.errors import TensorsmithError
    with pytest.raises(TensorsmithError):
        parse_graph("graph")


def test_tensor_type_text():
    assert str(TensorType((8, 128), F32)) == "f32[8,128]@cpu"
    assert str(TupleType((TensorType((4,), F32), TensorType((), I64, "cuda:0")))) == "(f32[4]@cpu, i64[]@cuda:0)"


def test_printer_output_is_deterministic_for_attribute_order():
    graph = Graph()
    x = graph.add_param("x", TensorType((2, 3), F32))
    node = graph.add("slice", [x], {"strides": [1, 1], "limits": [2, 3], "starts": [0, 0]})
    graph.outputs = [node]
    assert "{starts=[0, 0], limits=[2, 3], strides=[1, 1]}" in print_graph(graph)


def test_printed_floats_round_trip_exactly():
    values = [0.1, 1 / 3, 1e-05, 2.5e-08, 1e22, 123456789.0, -0.0, torch.finfo(torch.float32).eps]
    graph = Graph()
    node = graph.add("fallback", [], {"target": "aten.x.default", "args": values, "kwargs": {}},
                     type=TensorType((), F32))
    graph.outputs = [node]
    back = parse_graph(print_graph(graph)).nodes[0].attrs["args"]
    assert _same_value(back, values)
