"""The ONNX op table: one module per family of ops, each registering its implementations."""
from __future__ import annotations

from ...errors import OnnxUnsupportedError
from . import (control, elementwise, linalg, nn, nn_attention, nn_norm,  # noqa: F401
               nn_spatial, recurrent, reduce, resize, signal, tensor)  # they register their ops
from .reference import reference_op
from .registry import OPS, OpDef


def lookup(node) -> OpDef:
    """The implementation of `node`'s op: ours, else onnx's reference; else a clear error."""
    opdef = OPS.get((node.domain, node.op_type))
    if opdef is not None:
        return opdef
    opdef = reference_op(node)
    if opdef is not None:
        return opdef
    domain = f" (domain {node.domain!r})" if node.domain else ""
    raise OnnxUnsupportedError(f"{node.where()}: op type {node.op_type!r}{domain} is not supported")
