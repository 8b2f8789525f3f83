"""The verifier: rejects malformed graphs with a message naming the node and its source line.

Run after import and (in tests and debug mode) after every pass, so a broken graph is caught at the
stage that broke it.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import TypeInferenceError, VerifyError
from .attrs import KIND_CHECKS, Operand, check_kind, is_value
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


# Attribute kinds all of whose values print (all but "any"): a value of its kind needs no
# separate is_value check.
_PRINTABLE_KINDS = frozenset(KIND_CHECKS) - {"any"}


def _fallback_problem(node: Node) -> str | None:
    if not isinstance(node.attrs["args"], list) or not isinstance(node.attrs["kwargs"], dict):
        return "fallback args must be a list and kwargs a dict"
    if any(isinstance(i.type, TupleType) for i in node.inputs):
        return "fallback operands must be tensors, not tuples (use get)"
    used = _operands_in([node.attrs.get("args"), node.attrs.get("kwargs")], [])
    bad = [i for i in used if not 0 <= i < len(node.inputs)]
    if bad:
        return f"fallback refers to operand ${bad[0]} but has {len(node.inputs)} operands"
    if not isinstance(node.type, (TensorType, TupleType)):
        return "fallback needs a declared tensor or tuple type"
    return None


def _attribute_problem(attrs: dict, opdef) -> str | None:
    """The first thing wrong with a node's attributes: an extra one, then one that does not print,
    then (in the op's order) a missing one or one of the wrong kind."""
    extra = [k for k in attrs if k not in opdef.attrs]
    if extra:
        return f"does not take attributes {extra}"
    wrong_kind = ()
    for key, value in attrs.items():
        kind = opdef.attrs[key]
        if kind in _PRINTABLE_KINDS:
            if check_kind(value, kind):
                continue
            wrong_kind += (key,)
        if not is_value(value):
            return f"attribute {key}={value!r} is not a printable attribute value"
    for key, kind in opdef.attrs.items():
        if key not in attrs:
            return f"missing attribute {key!r}"
        if key in wrong_kind or (kind not in _PRINTABLE_KINDS and not check_kind(attrs[key], kind)):
            return f"attribute {key}={attrs[key]!r} is not of kind {kind}"
    return None


def _node_problem(node: Node, defined: set[Node]) -> str | None:
    """What is wrong with `node`, given the values `defined` before it, or None."""
    if node in defined:
        return "node appears twice in the graph"
    opdef = OPS.get(node.op)
    if opdef is None:
        return f"unknown op {node.op!r}"
    for i, operand in enumerate(node.inputs):
        if operand not in defined:
            return f"operand {i} is not defined before its use"
    problem = _attribute_problem(node.attrs, opdef)
    if problem is not None:
        return problem
    if node.op == "fallback":
        return _fallback_problem(node)
    try:
        expected = infer_type_of_checked(opdef, [i.type for i in node.inputs], node.attrs)
    except TypeInferenceError as e:
        return str(e)
    if expected != node.type:
        return f"declared type {node.type} differs from inferred type {expected}"
    return None


def verify(graph: Graph) -> None:
    """Raise VerifyError for the first malformed node; return None for a well-formed graph. (Value
    names for the message are worked out only then: the pipeline verifies after every pass.)"""
    defined: set[Node] = set()

    for p in graph.params:
        if p.op != "param" or not isinstance(p.type, TensorType):
            raise VerifyError(f"parameter {value_names(graph)[p]} must be a tensor-typed param", p)
        defined.add(p)

    for node in graph.nodes:
        problem = _node_problem(node, defined)
        if problem is not None:
            raise VerifyError(f"{node.op}: {problem}", node, _node_text(node, value_names(graph)))
        defined.add(node)

    for i, out in enumerate(graph.outputs):
        if out not in defined:
            raise VerifyError(f"output {i} is not a value of the graph", out)
        if not isinstance(out.type, TensorType):
            raise VerifyError(f"output {i} must be a tensor, not {out.type}", out,
                              _node_text(out, value_names(graph)))
