"""The checks of the linear + cross-entropy rewrite (linear_cross_entropy.py): from a loss node of
a pre-dispatch ATen graph up to the projection giving its logits, every op on the way an exact
no-op or upcast, every operand of a shape and dtype the op takes; `match` returns what was found
or raises `Skip` with the reason. Nothing here changes the graph."""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx
from torch.fx.operator_schemas import normalize_function

from .pre_dispatch import tensor_value

aten = torch.ops.aten

_HALF = (torch.bfloat16, torch.float16)
_FLOATS = (torch.float32, torch.float64, *_HALF)
_VIEWS = {aten.view.default, aten.reshape.default, aten._unsafe_view.default, aten.flatten.using_ints}
_COPIES = {aten.alias.default, aten.contiguous.default, aten.clone.default, aten.slice.Tensor}
_CASTS = {aten.to.dtype, aten._to_copy.default, aten.to.dtype_layout, aten.to.device}
_NLL = {aten.nll_loss_nd.default, aten.nll_loss.default}
_LOG_SOFTMAX = {aten.log_softmax.int, aten._log_softmax.default}
_TRANSPOSES = {aten.t.default, aten.transpose.int, aten.permute.default}
_REDUCTIONS = {1: "mean", 2: "sum"}
LOSSES = _NLL | {aten.cross_entropy_loss.default}


class Skip(Exception):
    """A candidate that is not rewritten, and why."""


def _args(node) -> dict:
    bound = normalize_function(node.target, node.args, node.kwargs, normalize_to_only_use_kwargs=True)
    if bound is None:
        raise Skip(f"cannot read the arguments of {node.target}")
    return bound.kwargs


def _loss(node):
    """(loss input l, nodes between it and the loss, target, ignore_index, smoothing, reduction)."""
    a = _args(node)
    if a.get("weight") is not None:
        raise Skip("class weights")
    reduction = _REDUCTIONS.get(a.get("reduction", 1))
    if reduction is None:
        raise Skip("reduction 'none'")
    ignore_index, smoothing = a.get("ignore_index", -100), float(a.get("label_smoothing", 0.0))
    if node.target is aten.cross_entropy_loss.default:
        return a["input"], [], a["target"], ignore_index, smoothing, reduction
    log_softmax = a["input"]
    if not isinstance(log_softmax, torch.fx.Node) or log_softmax.target not in _LOG_SOFTMAX:
        raise Skip("nll_loss not of a log_softmax")
    la = _args(log_softmax)
    inner, out = tensor_value(la.get("input")), tensor_value(log_softmax)
    if len(log_softmax.users) != 1 or inner is None or out is None:
        raise Skip("the log_softmax is used elsewhere")
    if la["dim"] not in (-1, inner.dim() - 1) or la.get("half_to_float") or out.dtype != inner.dtype:
        raise Skip("log_softmax over another dim or with a dtype change")
    return la["input"], [log_softmax], a["target"], ignore_index, smoothing, reduction


def _exact(node) -> bool:
    """Whether `node` gives its first argument's values, rows intact: a view keeping the last dim,
    an upcast to float32, a copy or a full slice."""
    src, out = tensor_value(node.args[0]) if node.args else None, tensor_value(node)
    if src is None or out is None or src.device != out.device or out.dim() < 1 or src.dim() < 1:
        return False
    if node.target in _VIEWS:
        return out.dtype == src.dtype and out.shape[-1] == src.shape[-1]
    if node.target in _COPIES:
        return out.dtype == src.dtype and out.shape == src.shape
    if node.target in _CASTS:
        return out.shape == src.shape and (out.dtype == src.dtype or
                                           (out.dtype == torch.float32 and src.dtype in _HALF))
    return False


def _projection(node):
    """(x, W, b) of the product giving the logits."""
    t = node.target
    if t is aten.linear.default:
        a = _args(node)
        return a["input"], a["weight"], a.get("bias")
    if t in (aten.matmul.default, aten.mm.default):
        return node.args[0], _untransposed(node.args[1]), None
    if t is aten.addmm.default:
        a = _args(node)
        if a.get("beta", 1) != 1 or a.get("alpha", 1) != 1:
            raise Skip("addmm with alpha or beta")
        return a["mat1"], _untransposed(a["mat2"]), a["input"]
    raise Skip(f"logits come from {t}, not a linear projection")


def _untransposed(node):
    v = tensor_value(node)
    if not isinstance(node, torch.fx.Node) or node.target not in _TRANSPOSES or v is None or v.dim() != 2:
        raise Skip("the weight is not a transposed 2-D tensor")
    if node.target is aten.permute.default and list(node.args[1]) not in ([1, 0], [-1, -2]):
        raise Skip("the weight is permuted, not transposed")
    return node.args[0]


def _check(x, w, b, logits, l, target):
    """Shapes and dtypes the op takes; the dtype the logits are computed in."""
    vx, vw, vb, vl, vloss, vt = (tensor_value(n) for n in (x, w, b, logits, l, target))
    if vx is None or vw is None or vl is None or vloss is None or vt is None or (b is not None and vb is None):
        raise Skip("an operand without a traced value")
    if vw.dim() != 2 or vx.dim() < 2 or vloss.dim() != 2 or vt.dim() != 1 or vt.dtype != torch.int64:
        raise Skip("shapes other than x (.., D), W (V, D), logits (N, V), target (N,) int64")
    if not all(isinstance(d, int) for d in (*vw.shape, vx.shape[-1])):
        raise Skip("symbolic vocabulary or model dim")
    if vb is not None and tuple(vb.shape) != (vw.shape[0],):
        raise Skip("a bias not of shape (V,)")
    dtype = vl.dtype
    inputs = [v.dtype for v in (vx, vw, vb) if v is not None]
    if dtype not in _FLOATS or any(d not in _FLOATS for d in inputs):
        raise Skip("dtypes other than floating")
    if any(d != dtype for d in inputs) and (dtype not in _HALF or torch.float64 in inputs):
        raise Skip("inputs of mixed dtypes")
    return dtype


def _mutation_between(first, last) -> bool:
    """Whether an op between the projection and the loss may write memory (the op moved to the
    loss's place would then read other values); anything but an ATen op counts as one."""
    node = first.next
    while node is not last:
        schema = getattr(node.target, "_schema", None)
        if node.op == "call_function" and (schema is None and node.target is not operator.getitem
                                           or schema is not None and schema.is_mutable):
            return True
        node = node.next
    return False


@dataclass
class Plan:
    """What a candidate's checks found, before the graph is touched."""
    loss: torch.fx.Node
    logits: torch.fx.Node
    chain: list
    operands: tuple  # x, W, b, target
    dtype: torch.dtype  # of the logits, as eager computes them
    ignore_index: int
    smoothing: float
    reduction: str


def match(loss: torch.fx.Node) -> Plan:
    """The plan for rewriting `loss`, or Skip with the reason it is left alone."""
    l, chain, target, ignore_index, smoothing, reduction = _loss(loss)
    node = l
    while isinstance(node, torch.fx.Node) and node.target in _VIEWS | _COPIES | _CASTS:
        if not _exact(node):
            raise Skip(f"{node.target} between the logits and the loss changes values")
        chain.append(node)
        node = node.args[0]
    if not isinstance(node, torch.fx.Node):
        raise Skip("logits are not computed in the graph")
    x, w, b = _projection(node)
    dtype = _check(x, w, b, node, l, target)
    if not isinstance(ignore_index, int) or not isinstance(smoothing, float) or not 0 <= smoothing <= 1:
        raise Skip("ignore_index or label_smoothing not a constant")
    if _mutation_between(node, loss):
        raise Skip("an op between the projection and the loss mutates memory")
    return Plan(loss, node, chain, (x, w, b, target), dtype, ignore_index, smoothing, reduction)
