"""The verifier: rejects malformed graphs with a message naming the node and its source line.

Run after import and (in tests and debug mode) after every pass, so a broken graph is caught at the
stage that broke it.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import TypeInferenceError, VerifyError
from .attrs import Operand, check_kind, is_value
from .graph import Graph, Node
from .ops import OPS, infer_type_of_checked
from .printer import format_node, value_names
from .types import TensorType, TupleType


def _operands_in(value, found: list[int]):
    if isinstance(value, Operand):
        found.append(value.index)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _operands_in(v, found)
    elif isinstance(value, dict):
        for v in value.values():
            _operands_in(v, found)
    return found


def _node_text(node: Node, names: dict) -> str:
    """The node as printed, with any attribute value the printer cannot write shown as its repr."""
    shown = replace(node, attrs={k: v if is_value(v) else repr(v) for k, v in node.attrs.items()})
    return format_node(shown, {**names, shown: names.get(node, "%?")})


def _check_fallback(node: Node, fail):
    if not isinstance(node.attrs["args"], list) or not isinstance(node.attrs["kwargs"], dict):
        fail("fallback args must be a list and kwargs a dict")
    if any(isinstance(i.type, TupleType) for i in node.inputs):
        fail("fallback operands must be tensors, not tuples (use get)")
    used = _operands_in([node.attrs.get("args"), node.attrs.get("kwargs")], [])
    bad = [i for i in used if not 0 <= i < len(node.inputs)]
    if bad:
        fail(f"fallback refers to operand ${bad[0]} but has {len(node.inputs)} operands")
    if not isinstance(node.type, (TensorType, TupleType)):
        fail("fallback needs a declared tensor or tuple type")


def verify(graph: Graph) -> None:
    """Raise VerifyError for the first malformed node; return None for a well-formed graph."""
    names = value_names(graph)
    defined: set[Node] = set()

    for p in graph.params:
        if p.op != "param" or not isinstance(p.type, TensorType):
            raise VerifyError(f"parameter {names[p]} must be a tensor-typed param", p)
        defined.add(p)

    for node in graph.nodes:
        def fail(message, node=node):
            raise VerifyError(f"{node.op}: {message}", node, _node_text(node, names))

        if node in defined:
            fail("node appears twice in the graph")
        opdef = OPS.get(node.op)
        if opdef is None:
            fail(f"unknown op {node.op!r}")
        for i, operand in enumerate(node.inputs):
            if operand not in defined:
                fail(f"operand {i} is not defined before its use")
        extra = [k for k in node.attrs if k not in opdef.attrs]
        if extra:
            fail(f"does not take attributes {extra}")
        for key, value in node.attrs.items():
            if not is_value(value):
                fail(f"attribute {key}={value!r} is not a printable attribute value")
        for key, kind in opdef.attrs.items():
            if key not in node.attrs:
                fail(f"missing attribute {key!r}")
            if not check_kind(node.attrs[key], kind):
                fail(f"attribute {key}={node.attrs[key]!r} is not of kind {kind}")
        if node.op == "fallback":
            _check_fallback(node, fail)
        else:
            try:
                expected = infer_type_of_checked(opdef, [i.type for i in node.inputs], node.attrs)
            except TypeInferenceError as e:
                fail(str(e))
            if expected != node.type:
                fail(f"declared type {node.type} differs from inferred type {expected}")
        defined.add(node)

    for i, out in enumerate(graph.outputs):
        if out not in defined:
            raise VerifyError(f"output {i} is not a value of the graph", out)
        if not isinstance(out.type, TensorType):
            raise VerifyError(f"output {i} must be a tensor, not {out.type}", out,
                              _node_text(out, names))
