"""ONNX ops tensorsmith has no implementation of, run through the `onnx` package's reference
implementation (numpy). Exact but slow, and outside any traced graph: in a traced run such an op
is accepted only when its inputs are constants (it is then folded); otherwise the model runs
eagerly for that input signature."""
from __future__ import annotations

import functools

import numpy as np
import torch

from ..dtypes import to_numpy
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

    def run(node, *inputs):
        current = scope()
        if current.tracing and not all(map(current.is_constant, inputs)):
            raise DataDependent(f"{node.where()} runs through onnx's reference implementation, "
                                "which cannot be traced")
        feeds = {n: to_numpy(t) for n, t in zip(node.inputs, inputs) if n and t is not None}
        device = next((t.device for t in inputs if isinstance(t, torch.Tensor)), torch.device("cpu"))
        return tuple(torch.from_numpy(np.array(r, copy=True)).to(device)
                     for r in evaluator.run(None, feeds))
    return OpDef(run, random=node.op_type in _RANDOM)


@functools.lru_cache(maxsize=256)
def _evaluator(node_bytes: bytes, domain: str, opset: int):
    import onnx
    from onnx.reference import ReferenceEvaluator
    proto = onnx.NodeProto()
    proto.ParseFromString(node_bytes)
    opsets = {domain: opset} if domain else {"": opset}
    try:
        return ReferenceEvaluator(proto, opsets=opsets)
    except Exception:  # noqa: BLE001 - onnx raises several types for "no implementation"
        return None
