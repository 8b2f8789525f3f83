"""The verifier rejects each kind of malformed graph, naming the node, the op and the source line."""
from __future__ import annotations

import pytest

from ir_builders import text
from tensorsmith.errors import VerifyError
from tensorsmith.ir import Graph, Node, Operand, TensorType, TupleType, parse_graph, verify
from tensorsmith.ir.types import F32, I64



HEADER = ("graph @main(%x: f32[2,3]@cpu, %y: f32[3,2]@cpu, %i: i64[2,3]@cpu, %b: bool[2,3]@cpu, "
          "%c: f32[1,4,5]@cpu, %k: f32[6,3,3]@cpu, %t: f32[4]@cpu) {\n")


def graph_with(*lines: str, outputs: str = "%x") -> Graph:
    """The graph of HEADER with `lines` as its nodes (each marked with a loc) returning `outputs`."""
    body = "".join(f"  {line}\n" for line in lines)
    return parse_graph(HEADER + body + f"  return {outputs}\n}}\n")


def assert_rejected(graph: Graph, op: str, node_text: str, reason: str, source: str | None = None):
    with pytest.raises(VerifyError) as info:
        verify(graph)
    message = str(info.value)
    assert message.startswith(f"{op}: "), message
    assert reason in message.splitlines()[0], message
    assert f"\n  at node: {node_text}" in message, message
    if source:
        assert message.endswith(f"\n  from model source: {source}"), message
    else:
        assert "from model source" not in message, message
    return info.value


def test_well_formed_graph_passes():
    graph = graph_with(
        '%0 = add(%x, %x) : f32[2,3]@cpu loc("model.py:3")',
        '%1 = dot(%0, %y) : f32[2,2]@cpu',
        '%2 = fallback(%1, %x) {target="aten.cat.default", args=[[$0, $1], 1], kwargs={}} : f32[2,5]@cpu',
        '%3 = fallback(%2) {target="aten.sort.default", args=[$0], kwargs={}} : (f32[2,5]@cpu, i64[2,5]@cpu)',
        '%4 = get(%3) {index=1} : i64[2,5]@cpu',
        outputs="%4, %x, %1, %1")
    assert verify(graph) is None


# (node line with its loc, op, printed node prefix, reason)
REJECTED = [
    ('%0 = frobnicate(%x) : f32[2,3]@cpu', "frobnicate", "%0 = frobnicate(%x)", "unknown op 'frobnicate'"),
    ('%0 = add(%x) : f32[2,3]@cpu', "add", "%0 = add(%x)", "add takes 2 operands, got 1"),
    ('%0 = neg(%x, %x) : f32[2,3]@cpu', "neg", "%0 = neg(%x, %x)", "neg takes 1 operands, got 2"),
    ('%0 = iota(%x) {shape=[2], dim=0, dtype=f32, device="cpu"} : f32[2]@cpu', "iota", "%0 = iota(%x)",
     "iota takes 0 operands, got 1"),
    ('%0 = reduce(%x) {kind="sum"} : f32[2]@cpu', "reduce", "%0 = reduce(%x) {kind=\"sum\"}",
     "missing attribute 'dims'"),
    ('%0 = reduce(%x) {kind="sum", dims=[1], keepdim=true} : f32[2]@cpu', "reduce", "%0 = reduce(%x)",
     "does not take attributes ['keepdim']"),
    ('%0 = neg(%x) {alpha=1} : f32[2,3]@cpu', "neg", "%0 = neg(%x) {alpha=1}", "does not take attributes ['alpha']"),
    ('%0 = reduce(%x) {kind="sum", dims=1} : f32[2]@cpu', "reduce", "%0 = reduce(%x)",
     "attribute dims=1 is not of kind ints"),
    ('%0 = convert(%x) {dtype="f16"} : f16[2,3]@cpu', "convert", "%0 = convert(%x)", "is not of kind dtype"),
    ('%0 = transpose(%x) {perm=[1, true]} : f32[3,2]@cpu', "transpose", "%0 = transpose(%x)", "not of kind ints"),
    ('%0 = concat(%x, %x) {dim=0.0} : f32[4,3]@cpu', "concat", "%0 = concat(%x, %x)", "not of kind int"),
    ('%0 = convolution(%c, %k) {stride=[1], padding=[0], dilation=[1], groups=1, transposed=0, output_padding=[0]} : f32[1,6,3]@cpu',
     "convolution", "%0 = convolution(%c, %k)", "transposed=0 is not of kind bool"),
    ('%0 = pad(%x) {low=[0, 0], high=[0, 0], value="0"} : f32[2,3]@cpu', "pad", "%0 = pad(%x)", "not of kind scalar"),
    ('%0 = add(%x, %y) : f32[2,3]@cpu', "add", "%0 = add(%x, %y)", "operand shapes differ: [2, 3] vs [3, 2]"),
    ('%0 = add(%x, %i) : f32[2,3]@cpu', "add", "%0 = add(%x, %i)", "operand dtypes differ: f32 vs i64"),
    ('%0 = exp(%i) : i64[2,3]@cpu', "exp", "%0 = exp(%i)", "operand must be floating point, got i64"),
    ('%0 = transpose(%x) {perm=[0, 0]} : f32[2,2]@cpu', "transpose", "%0 = transpose(%x) {perm=[0, 0]}",
     "perm [0, 0] is not a permutation of 2 dimensions"),
    ('%0 = transpose(%x) {perm=[0, 1, 2]} : f32[2,3]@cpu', "transpose", "%0 = transpose(%x)", "not a permutation"),
    ('%0 = broadcast_in_dim(%x) {shape=[2, 4], dims=[0, 1]} : f32[2,4]@cpu', "broadcast_in_dim",
     "%0 = broadcast_in_dim(%x)", "operand dimension 1 of size 3 cannot broadcast to 4"),
    ('%0 = broadcast_in_dim(%x) {shape=[3, 2], dims=[1, 0]} : f32[3,2]@cpu', "broadcast_in_dim",
     "%0 = broadcast_in_dim(%x)", "must be increasing"),
    ('%0 = broadcast_in_dim(%x) {shape=[2, 3], dims=[0]} : f32[2,3]@cpu', "broadcast_in_dim",
     "%0 = broadcast_in_dim(%x)", "one output dimension per operand dimension"),
    ('%0 = broadcast_in_dim(%x) {shape=[2, 3, 4], dims=[0, 3]} : f32[2,3,4]@cpu', "broadcast_in_dim",
     "%0 = broadcast_in_dim(%x)", "out of range"),
    ('%0 = slice(%x) {starts=[0, 0], limits=[2, 4], strides=[1, 1]} : f32[2,4]@cpu', "slice", "%0 = slice(%x)",
     "slice [0:4:1] invalid for dimension 1 of size 3"),
    ('%0 = slice(%x) {starts=[1, 0], limits=[0, 3], strides=[1, 1]} : f32[0,3]@cpu', "slice", "%0 = slice(%x)",
     "slice [1:0:1] invalid for dimension 0"),
    ('%0 = slice(%x) {starts=[0, 0], limits=[2, 3], strides=[1, 0]} : f32[2,3]@cpu', "slice", "%0 = slice(%x)",
     "invalid for dimension 1"),
    ('%0 = dot(%x, %x) : f32[2,3]@cpu', "dot", "%0 = dot(%x, %x)", "dot contracting dimensions differ: 3 vs 2"),
    ('%0 = dot(%x, %i) : f32[2,3]@cpu', "dot", "%0 = dot(%x, %i)", "contracting dimensions differ"),
    ('%0 = convolution(%c, %k) {stride=[1], padding=[0], dilation=[1], groups=1, transposed=false, output_padding=[0]} : f32[1,6,3]@cpu',
     "convolution", "%0 = convolution(%c, %k)", "input has 4 channels, weight expects 3"),
    ('%0 = reduce(%x) {kind="sum", dims=[2]} : f32[2]@cpu', "reduce", "%0 = reduce(%x)", "out of range for rank 2"),
    ('%0 = reduce(%x) {kind="any", dims=[1]} : bool[2]@cpu', "reduce", "%0 = reduce(%x)", "needs bool operand"),
    ('%0 = select(%x, %x, %x) : f32[2,3]@cpu', "select", "%0 = select(%x, %x, %x)",
     "select predicate must be bool, got f32"),
    ('%0 = select(%b, %x, %i) : f32[2,3]@cpu', "select", "%0 = select(%b, %x, %i)", "operand dtypes differ"),
    ('%0 = compare(%x, %x) {dir="LT"} : f32[2,3]@cpu', "compare", "%0 = compare(%x, %x) {dir=\"LT\"}",
     "declared type f32[2,3]@cpu differs from inferred type bool[2,3]@cpu"),
    ('%0 = add(%x, %x) : f32[2,3]@cuda:0', "add", "%0 = add(%x, %x) : f32[2,3]@cuda:0",
     "declared type f32[2,3]@cuda:0 differs from inferred type f32[2,3]@cpu"),
    ('%0 = reshape(%x) {shape=[6]} : f32[3,2]@cpu', "reshape", "%0 = reshape(%x)", "declared type f32[3,2]@cpu"),
    ('%0 = take(%x, %x) {dim=0} : f32[2,3,3]@cpu', "take", "%0 = take(%x, %x)", "index must be integer, got f32"),
    ('%0 = gather(%x, %t) {dim=0} : f32[4]@cpu', "gather", "%0 = gather(%x, %t)", "integer"),
    ('%0 = index_add(%x, %i, %x) {dim=0} : f32[2,3]@cpu', "index_add", "%0 = index_add(%x, %i, %x)",
     "source shape [2, 3] must be [2, 3, 3]"),
    ('%0 = get(%x) {index=0} : f32[2,3]@cpu', "get", "%0 = get(%x)", "get index 0 out of range for f32[2,3]@cpu"),
    ('%0 = neg(%x) : (f32[2,3]@cpu)', "neg", "%0 = neg(%x) : (f32[2,3]@cpu)", "declared type (f32[2,3]@cpu) differs"),
    ('%0 = fallback(%x) {target="aten.sort.default", args=[$0], kwargs={}} : (f32[2,3]@cpu, i64[2,3]@cpu)\n'
     '  %1 = neg(%0) : f32[2,3]@cpu', "neg", "%1 = neg(%0)", "operands must be tensors, not tuples"),
    ('%0 = fallback(%x) {target="aten.cumsum.default", args=[$0, $1], kwargs={}} : f32[2,3]@cpu', "fallback",
     "%0 = fallback(%x) {target=", "fallback refers to operand $1 but has 1 operands"),
    ('%0 = fallback(%x) {target="aten.cumsum.default", args=[$0], kwargs={"x": [{"y": $3}]}} : f32[2,3]@cpu',
     "fallback", "%0 = fallback(%x)", "refers to operand $3"),
    ('%0 = fallback(%x) {args=[$0], kwargs={}} : f32[2,3]@cpu', "fallback", "%0 = fallback(%x)",
     "missing attribute 'target'"),
    ('%0 = fallback(%x) {target=1, args=[$0], kwargs={}} : f32[2,3]@cpu', "fallback", "%0 = fallback(%x)",
     "attribute target=1 is not of kind str"),
    ('%0 = fallback(%x) {target="aten.neg.default", args=[$0], kwargs={}, extra=1} : f32[2,3]@cpu', "fallback",
     "%0 = fallback(%x)", "does not take attributes ['extra']"),
    ('%0 = fallback(%x) {target="aten.neg.default", args={"a": $0}, kwargs={}} : f32[2,3]@cpu', "fallback",
     "%0 = fallback(%x)", "args"),
    ('%0 = fallback(%x) {target="aten.neg.default", args=[$0], kwargs=[]} : f32[2,3]@cpu', "fallback",
     "%0 = fallback(%x)", "kwargs"),
    ('%0 = fallback(%x) {target="aten.sort.default", args=[$0], kwargs={}} : (f32[2,3]@cpu, i64[2,3]@cpu)\n'
     '  %1 = fallback(%0) {target="aten.neg.default", args=[$0], kwargs={}} : f32[2,3]@cpu', "fallback",
     "%1 = fallback(%0)", "tuples"),
    ('%0 = constant() {value=[1, 2], shape=[3], dtype=f32, device="cpu"} : f32[3]@cpu', "constant",
     "%0 = constant() {value=[1, 2]", "constant has 2 values for shape [3]"),
    ('%0 = constant() {value="1", shape=[], dtype=f32, device="cpu"} : f32[]@cpu', "constant",
     "%0 = constant()", "number or a flat list"),
]


@pytest.mark.parametrize("line, op, node_text, reason", REJECTED, ids=[f"{r[1]}-{i}" for i, r in enumerate(REJECTED)])
@pytest.mark.parametrize("source", [None, "model.py:12 in forward"])
def test_rejects_and_names_node_op_and_source(line, op, node_text, reason, source):
    if source:
        line += f' loc("{source}")'
    graph = graph_with('%p = neg(%x) : f32[2,3]@cpu', line, outputs="%x")
    # The offending node is the last one; its printed text starts with node_text, numbered as printed.
    node_text = node_text.replace("%1", "%2").replace("%0", "%1")
    error = assert_rejected(graph, op, node_text, reason, source)
    assert error.node is graph.nodes[-1]


def test_unquoted_attribute_word_is_a_parse_error_not_a_verify_error():
    from tensorsmith.errors import ParseError
    with pytest.raises(ParseError, match="unknown word 'sum'"):
        graph_with('%0 = reduce(%x) {kind=sum, dims=[1]} : f32[2]@cpu')


def test_first_bad_node_is_reported():
    graph = graph_with('%0 = add(%x, %x) : f32[2,3]@cpu loc("m.py:1")',
                       '%1 = add(%x, %y) : f32[2,3]@cpu loc("m.py:2")',
                       '%2 = add(%y, %x) : f32[3,2]@cpu loc("m.py:3")')
    assert_rejected(graph, "add", "%1 = add(%x, %y)", "shapes differ", "m.py:2")


# ---- malformations the parser cannot express: built directly ---------------------------------

def _base():
    graph = Graph()
    x = graph.add_param("x", TensorType((2, 3), F32))
    return graph, x


def test_use_before_definition():
    graph, x = _base()
    a = graph.add("neg", [x], source="model.py:7")
    b = graph.add("exp", [a])
    graph.nodes = [b, a]
    graph.outputs = [b]
    assert_rejected(graph, "exp", "%0 = exp(%1) : f32[2,3]@cpu", "operand 0 is not defined before its use")


def test_operand_not_in_graph():
    graph, x = _base()
    stray = Node("neg", [x], {}, x.type)
    node = graph.add("add", [x, stray], source="model.py:9")
    graph.outputs = [node]
    assert_rejected(graph, "add", "%0 = add(%x, %<unknown>)", "operand 1 is not defined before its use", "model.py:9")


def test_self_use():
    graph, x = _base()
    node = graph.add("neg", [x])
    node.inputs = [node]
    graph.outputs = [node]
    assert_rejected(graph, "neg", "%0 = neg(%0)", "operand 0 is not defined before its use")


def test_node_listed_twice():
    graph, x = _base()
    node = graph.add("neg", [x], source="m.py:4")
    graph.nodes.append(node)
    graph.outputs = [node]
    assert_rejected(graph, "neg", "%1 = neg(%x)", "node appears twice", "m.py:4")


def test_output_not_in_graph():
    graph, x = _base()
    stray = Node("neg", [x], {}, x.type, source="model.py:5")
    graph.add("neg", [x])
    graph.outputs = [x, stray]
    with pytest.raises(VerifyError) as info:
        verify(graph)
    assert "output 1 is not a value of the graph" in str(info.value)
    assert "model.py:5" in str(info.value)


def test_tuple_output_rejected():
    graph, x = _base()
    pair = graph.add("fallback", [x], {"target": "aten.sort.default", "args": [Operand(0)], "kwargs": {}},
                     type=TupleType((x.type, TensorType((2, 3), I64))), source="model.py:6")
    graph.outputs = [pair]
    with pytest.raises(VerifyError) as info:
        verify(graph)
    message = str(info.value)
    assert "output 0 must be a tensor, not (f32[2,3]@cpu, i64[2,3]@cpu)" in message
    assert "at node: %0 = fallback(%x)" in message and "from model source: model.py:6" in message


def test_param_must_be_tensor_typed_param():
    graph, x = _base()
    graph.params.append(Node("neg", [], {}, x.type, name="q"))
    with pytest.raises(VerifyError, match="parameter %q must be a tensor-typed param"):
        verify(graph)
    graph, x = _base()
    graph.add_param("t", TupleType((x.type,)))
    with pytest.raises(VerifyError, match="parameter %t"):
        verify(graph)


def test_attribute_that_cannot_be_printed_is_rejected():
    graph, x = _base()
    node = graph.add("fallback", [x], {"target": "aten.neg.default", "args": [Operand(0), object()], "kwargs": {}},
                     type=x.type, source="model.py:8")
    graph.outputs = [node]
    with pytest.raises(VerifyError) as info:
        verify(graph)
    message = str(info.value)
    assert message.startswith("fallback: ") and "attribute args" in message and "model.py:8" in message


def test_attribute_tuple_built_in_code_is_rejected():
    graph, x = _base()
    node = graph.add("transpose", [x], {"perm": [1, 0]})
    node.attrs["perm"] = (1, 0)
    graph.outputs = [node]
    with pytest.raises(VerifyError, match=r"transpose: attribute perm=\(1, 0\) is not a printable"):
        verify(graph)


def test_verify_after_parse_of_valid_text():
    graph = parse_graph(text("""
        graph @main(%x: f32[2,3]@cpu) {
          %0 = reduce(%x) {kind="max", dims=[0, 1]} : f32[]@cpu loc("a.py:1")
          %1 = broadcast_in_dim(%0) {shape=[2, 3], dims=[]} : f32[2,3]@cpu
          %2 = sub(%x, %1) : f32[2,3]@cpu
          return %2
        }
    """))
    verify(graph)


def test_an_unprintable_attribute_is_reported_before_one_of_the_wrong_kind():
    """The verifier reads each attribute's kind first (a value of its kind prints), yet reports in
    the order it always did: no attribute that does not print goes unreported behind a wrong kind."""
    graph, x = _base()
    node = graph.add("reduce", [x], {"kind": "sum", "dims": [0]})
    node.attrs["kind"], node.attrs["dims"] = 1, (0,)
    graph.outputs = [node]
    with pytest.raises(VerifyError, match=r"reduce: attribute dims=\(0,\) is not a printable"):
        verify(graph)
    node.attrs["dims"] = [0]
    with pytest.raises(VerifyError, match="reduce: attribute kind=1 is not of kind str"):
        verify(graph)
