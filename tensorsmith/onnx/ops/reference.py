"""ONNX ops tensorsmith has no implementation of, run through the `onnx` package's reference
implementation (numpy). Exact but slow, and outside any traced graph: in a traced run such an op
is accepted only when its inputs are constants (it is then folded); otherwise the model runs
eagerly for that input signature."""
from __future__ import annotations

import functools

import numpy as np
import torch

from ..dtypes import to_numpy
from ..graph import one_node_model
from .registry import DataDependent, OpDef, scope

_RANDOM = {"Bernoulli", "Multinomial", "RandomNormal", "RandomNormalLike", "RandomUniform",
           "RandomUniformLike"}


def reference_op(node) -> OpDef | None:
    """An OpDef running `node` through onnx.reference, or None if onnx has no implementation."""
    if node.proto is None:
        return None
    evaluator = _evaluator(node.proto.SerializeToString(), node.domain, node.opset)
    if evaluator is None:
        return None

    random = node.op_type in _RANDOM

    def run(node, *inputs):
        current = scope()
        if current.tracing and (random or not all(map(current.is_constant, inputs))):
            raise DataDependent(f"{node.where()} runs through onnx's reference implementation, "
                                "which cannot be traced")
        feeds = {n: to_numpy(t) for n, t in zip(node.inputs, inputs) if n and t is not None}
        device = next((t.device for t in inputs if isinstance(t, torch.Tensor)), torch.device("cpu"))
        return tuple(torch.from_numpy(np.array(r, copy=True)).to(device)
                     for r in evaluator.run(None, feeds))
    return OpDef(run, random=random)


@functools.lru_cache(maxsize=256)
def _evaluator(node_bytes: bytes, domain: str, opset: int):
    import onnx
    from onnx.reference import ReferenceEvaluator
    node = onnx.NodeProto()
    node.ParseFromString(node_bytes)
    # A one-node model, so that the evaluator uses the model's opset (given a bare node, it
    # takes the newest version of the op).
    opsets = [onnx.helper.make_opsetid(domain, opset)]
    if domain:
        opsets.append(onnx.helper.make_opsetid("", onnx.defs.onnx_opset_version()))
    model = one_node_model(node, [n for n in node.input if n], opsets)
    try:
        return ReferenceEvaluator(model)
    except Exception:  # noqa: BLE001 - onnx raises several types for "no implementation"
        return None
