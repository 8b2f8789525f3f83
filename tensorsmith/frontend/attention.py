"""Find attention written out by hand and replace it with one fused attention op.

Runs on the Dynamo graph before AOTAutograd, traced to pre-dispatch ATen (one canonical op per
operation, whatever Python spelling the model used), so that AOTAutograd differentiates the fused
op: the backward then recomputes attention from the saved log-sum-exp instead of keeping the
sequence x sequence probabilities alive between forward and backward.

The form matched, from the softmax outwards (every intermediate used once, nothing else):

    scores = (q [* c]) @ (k [/ c])^T         aten.matmul / bmm
    scores = scores * c | scores / c         any number of Python-scalar scales, first
    scores = masked_fill(scores, m, -inf) | where(keep, scores, -inf) | scores + bias   any order
    p      = softmax(scores, dim=-1)
    p      = dropout(p, rate, train)         optional
    out    = p @ v

A masked_fill with a finite value, a softmax over another dimension, probabilities the model also
returns, a scale after a bias, dtype changes, a learned bias (PyTorch's fused kernels do not
differentiate the mask): all left alone. Grouped-query attention needs nothing
special: the expanded k and v reach the matmuls as they are.

The fused op is ours, `tensorsmith::attention` (kernels/attention_op.py: Triton on CUDA, C++ on
the CPU), wherever our kernels take the inputs (4-D, no dropout); otherwise PyTorch's
scaled_dot_product_attention. The model's own scaled_dot_product_attention calls move onto our op
under the same conditions (and not with a learned mask or enable_gqa).
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import torch
import torch.fx
from torch.fx.operator_schemas import normalize_function

from .. import config
from ..kernels.attention_op import kernels_for
from ..kernels.attention_reference import broadcasts_to
from ..log import log
from .pre_dispatch import call, mentions, needing_grad, recompile, tensor_value, trace
from .source import source_line

aten = torch.ops.aten

_MATMULS = {aten.matmul.default, aten.bmm.default}
_SOFTMAXES = {aten.softmax.int, aten._softmax.default}
# scaled_dot_product_attention as Dynamo's graph calls it and as pre-dispatch ATen does
_SDPAS = {aten.scaled_dot_product_attention.default, torch.nn.functional.scaled_dot_product_attention}


@dataclass
class AttentionMatch:
    """One attention rewritten: where, and what it was made of (for the report and the tests)."""
    source: str | None
    scale: float
    causal: bool
    masks: list[str] = field(default_factory=list)  # "causal", or the "keep"/"hide"/"bias" terms
    dropout: float = 0.0
    form: str = "hand-written"  # or "sdpa": the model's own scaled_dot_product_attention call
    kernel: str = "pytorch"  # whose kernels run it: "tensorsmith" (kernels/) or "pytorch" (SDPA's)


MATCHES: list[AttentionMatch] = []  # every rewrite of this process, in order


@dataclass
class _Scores:
    """What the walk up from the softmax found."""
    matmul: torch.fx.Node
    scale: float = 1.0
    keep: list = field(default_factory=list)  # bool tensors: where attention may look
    bias: list = field(default_factory=list)  # float tensors added to the scores
    nodes: list = field(default_factory=list)  # the score ops between matmul and softmax


def _single_user(node: torch.fx.Node) -> bool:
    return len(node.users) == 1


def _is_scalar(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _walk_scores(softmax: torch.fx.Node) -> _Scores | None:
    """From a softmax's input back to the q @ k^T matmul, or None if something else is in between."""
    node = softmax.args[0]
    keep, bias, nodes, scale, scaled = [], [], [], 1.0, False
    while True:
        if not isinstance(node, torch.fx.Node) or not _single_user(node):
            return None
        target, args = node.target, node.args
        if target in _MATMULS:
            break
        nodes.append(node)
        if target is aten.masked_fill.Scalar and args[2] == -math.inf:
            keep.append(("not", args[1]))
            node = args[0]
        elif target is aten.where.ScalarOther and args[2] == -math.inf:
            keep.append(("is", args[0]))
            node = args[1]
        elif target is aten.add.Tensor and len(args) == 2 and not node.kwargs:
            a, b = args
            if scaled or not (isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node)):
                return None  # (walking upwards: a scale met before a bias would scale the bias)
            # The scores are the operand with the full [.., L, S] shape.
            if tensor_value(a) is not None and tensor_value(a).shape == tensor_value(node).shape:
                node_scores, other = a, b
            else:
                node_scores, other = b, a
            bias.append(other)
            node = node_scores
        elif target in (aten.mul.Tensor, aten.div.Tensor) and _is_scalar(args[1]):
            factor = _positive_factor(node)  # (applied after a -inf mask, harmless)
            if factor is None:
                return None
            scale *= factor
            scaled, node = True, args[0]
        else:
            return None
    return _Scores(node, scale, keep, bias, nodes)


def _positive_factor(node: torch.fx.Node) -> float | None:
    """The factor a multiplication or division by a positive, finite Python scalar applies."""
    if node.target not in (aten.mul.Tensor, aten.div.Tensor) or not _is_scalar(node.args[1]):
        return None
    c = float(node.args[1])
    if not (c > 0 and math.isfinite(c)):
        return None
    return c if node.target is aten.mul.Tensor else 1.0 / c


def _unscaled(node, scale: float):
    """q or k with positive Python-scalar factors and divisors peeled off (folded into the scale)."""
    while isinstance(node, torch.fx.Node) and _single_user(node):
        factor = _positive_factor(node)
        if factor is None:
            break
        scale *= factor
        node = node.args[0]
    return node, scale


_SHAPE_ONLY = {aten.unsqueeze.default, aten.alias.default, aten.view.default, aten.reshape.default}
_NOT = {aten.bitwise_not.default, aten.logical_not.default}


def _structure(node):
    """`node` with casts to bool, views that add unit dims and prefix slices peeled off (a causal
    mask sliced to the sequence length is still causal)."""
    while isinstance(node, torch.fx.Node) and _keeps_structure(node):
        node = node.args[0]
    return node


def _keeps_structure(node: torch.fx.Node) -> bool:
    """Whether `node` shows its first argument's mask pattern unchanged."""
    t, args = node.target, node.args
    if t in _SHAPE_ONLY:
        return _adds_unit_dims(node)
    if t is aten.to.dtype:
        return args[1] == torch.bool
    if t is aten._to_copy.default:
        return node.kwargs.get("dtype") == torch.bool
    if t is aten.slice.Tensor:  # from the start, step 1
        return (len(args) < 3 or args[2] in (None, 0)) and (len(args) < 5 or args[4] == 1)
    return False


def _adds_unit_dims(node) -> bool:
    a, b = tensor_value(node.args[0]), tensor_value(node)
    return a is not None and b is not None and \
        [d for d in a.shape if d != 1] == [d for d in b.shape if d != 1]


def _ones_band(node, op, diagonal: int) -> bool:
    """Whether `node` is op(ones(...), diagonal) for op tril or triu."""
    node = _structure(node)
    if not isinstance(node, torch.fx.Node) or node.target is not op:
        return False
    if (node.args[1] if len(node.args) > 1 else node.kwargs.get("diagonal", 0)) != diagonal:
        return False
    ones = _structure(node.args[0])
    return isinstance(ones, torch.fx.Node) and ones.target is aten.ones.default


def _is_causal(kind: str, mask) -> bool:
    """A keep mask tril(ones) or a hide mask triu(ones, 1) (or a negation of the other): the
    top-left causal mask SDPA's is_causal means."""
    mask = _structure(mask)
    while isinstance(mask, torch.fx.Node) and (mask.target in _NOT or
                                               mask.target is aten.eq.Scalar and mask.args[1] == 0):
        kind, mask = ("hide" if kind == "keep" else "keep"), _structure(mask.args[0])
    if kind == "keep":
        return _ones_band(mask, aten.tril.default, 0)
    return _ones_band(mask, aten.triu.default, 1)


def _match(softmax: torch.fx.Node):
    """(scores, probs consumer, dropout rate, output matmul) for an attention around `softmax`."""
    x = softmax.args[0]
    meta = tensor_value(x)
    if meta is None or meta.dim() < 3 or softmax.args[1] not in (-1, meta.dim() - 1):
        return None
    if softmax.target is aten.softmax.int and softmax.kwargs.get("dtype", None) not in (None, meta.dtype):
        return None
    if softmax.target is aten._softmax.default and softmax.args[2]:
        return None  # half_to_float changes the dtype
    scores = _walk_scores(softmax)
    if scores is None:
        return None
    probs, rate = softmax, 0.0
    if not _single_user(probs):
        return None
    user = next(iter(probs.users))
    if user.target is aten.dropout.default:
        rate = float(user.args[1]) if user.args[2] else 0.0
        probs = user
        if not _single_user(probs):
            return None
        user = next(iter(probs.users))
    if user.target not in _MATMULS or user.args[0] is not probs:
        return None
    return scores, probs, rate, user


def _check_shapes(q, tk, v, out) -> bool:
    """q [.., L, E], k [.., S, E] (`tk`, its value), v [.., S, Ev]: same batch dims and dtype."""
    tq, tv, to = (tensor_value(n) for n in (q, v, out))
    if any(t is None for t in (tq, tk, tv, to)):
        return False
    if not (tq.dim() == tk.dim() == tv.dim() >= 3):
        return False
    if not (tq.shape[:-2] == tk.shape[:-2] == tv.shape[:-2]):
        return False
    if tq.shape[-1] != tk.shape[-1] or tk.shape[-2] != tv.shape[-2]:
        return False
    if not (tq.dtype == tk.dtype == tv.dtype) or not tq.dtype.is_floating_point:
        return False
    return tuple(to.shape) == (*tq.shape[:-1], tv.shape[-1])


def _mask_ok(node, dtype, shape) -> bool:
    """A mask or bias operand SDPA takes as attn_mask: bool or the query's dtype, broadcastable."""
    t = tensor_value(node)
    if t is None or t.dtype not in (torch.bool, dtype):
        return False
    return broadcasts_to(tuple(t.shape), tuple(shape))


def _rewrite(graph: torch.fx.Graph, softmax: torch.fx.Node, learned: set) -> AttentionMatch | None:
    found = _match(softmax)
    if found is None:
        return None
    scores, probs, rate, out = found
    q, kt = scores.matmul.args
    q, scale = _unscaled(q, scores.scale)
    kt, scale = _unscaled(kt, scale)
    v = out.args[1]
    score_meta, kt_meta = tensor_value(scores.matmul), tensor_value(kt)
    if score_meta is None or kt_meta is None or kt_meta.dim() < 3:
        return None
    if score_meta.numel() * score_meta.element_size() < config.fuse_attention_min_mb * 2**20:
        return None  # below the configured size (config.fuse_attention_min_mb; 0 by default)
    terms = []  # (kind, node): "keep" (bool, True = attend), "hide" (bool, True = masked), "bias"
    for how, m in scores.keep:
        if not _mask_ok(m, score_meta.dtype, score_meta.shape) or tensor_value(m).dtype != torch.bool:
            return None
        terms.append(("hide" if how == "not" else "keep", m))
    for b in scores.bias:
        if not _mask_ok(b, score_meta.dtype, score_meta.shape) or tensor_value(b).dtype == torch.bool:
            return None
        if b in learned:  # a learned bias: the fused kernels do not differentiate the mask
            return None
        terms.append(("bias", b))
    k_meta = kt_meta.transpose(-2, -1)
    if not _check_shapes(q, k_meta, v, out):
        return None
    causal = len(terms) == 1 and terms[0][0] != "bias" and _is_causal(*terms[0]) and \
        tensor_value(terms[0][1]).shape[-2:] == score_meta.shape[-2:]
    with graph.inserting_before(out):
        k = call(graph, aten.transpose.int, kt, -2, -1)
        mask = None if causal else _attn_mask(graph, terms)
        while mask is not None and tensor_value(mask).dim() < score_meta.dim():
            mask = call(graph, aten.unsqueeze.default, mask, 0)  # the fused kernels want full rank
        fused = _fused_attention(graph, q, k, v, mask, causal, scale, rate)
        fused.meta = dict(out.meta)
    out.replace_all_uses_with(fused)
    for node in dict.fromkeys([out, probs, softmax, *scores.nodes, scores.matmul]):
        if not node.users:  # (each used only by the next, now gone)
            graph.erase_node(node)
    kinds = ["causal"] if causal else [kind for kind, _ in terms]
    ours = fused.target is not aten.scaled_dot_product_attention.default
    return AttentionMatch(source_line(out), scale, causal, kinds, rate,
                          kernel="tensorsmith" if ours else "pytorch")


def _fused_attention(graph, q, k, v, mask, causal: bool, scale: float, rate: float) -> torch.fx.Node:
    """Our attention op where our kernels take these inputs (4-D, no dropout), else PyTorch's
    scaled_dot_product_attention (whose kernels handle dropout and other ranks)."""
    metas = [tensor_value(n) if n is not None else None for n in (q, k, v, mask)]
    if rate == 0 and all(t.dim() == 4 for t in metas[:3]) and metas[0].shape[-1] == metas[2].shape[-1] \
            and kernels_for(*metas) is not None:
        both = call(graph, torch.ops.tensorsmith.attention.default, q, k, v, mask, causal, scale)
        return call(graph, operator.getitem, both, 0)
    kwargs = {"attn_mask": mask, "dropout_p": rate, "is_causal": causal, "scale": scale}
    return graph.call_function(aten.scaled_dot_product_attention.default, (q, k, v), kwargs)


def _attn_mask(graph, terms):
    """One attn_mask from the terms: bool masks and-ed, biases added, a bool mask over a bias
    turning into -inf there."""
    keep = bias = None
    for kind, m in terms:
        if kind == "bias":
            bias = m if bias is None else call(graph, aten.add.Tensor, bias, m)
            continue
        if kind == "hide":
            inner = m.args[0] if m.target in _NOT else None
            m = inner if tensor_value(inner) is not None and tensor_value(inner).dtype == torch.bool \
                else call(graph, aten.logical_not.default, m)
        keep = m if keep is None else call(graph, aten.logical_and.default, keep, m)
    if bias is None or keep is None:
        return bias if keep is None else keep
    hide = call(graph, aten.logical_not.default, keep)
    return call(graph, aten.where.ScalarSelf, hide, -math.inf, bias)


def fuse_attention(gm: torch.fx.GraphModule, inputs_needing_grad: list[bool] = (),
                   dynamo_graph: bool = False) -> list[AttentionMatch]:
    """Rewrite every attention in `gm` (a pre-dispatch ATen graph with fake-tensor metadata) into
    scaled_dot_product_attention, in place; return what was rewritten. `inputs_needing_grad` says
    which placeholders require grad (a bias computed from them is left alone). `dynamo_graph`: `gm`
    is Dynamo's graph itself, whose only attention is scaled_dot_product_attention; its dead code
    is left in place (a Dynamo graph's in-place method calls look dead to FX)."""
    matches = []
    learned = needing_grad(gm.graph, list(inputs_needing_grad))
    for node in list(gm.graph.nodes):
        match = None
        if node.op == "call_function" and node.target in _SOFTMAXES:
            match = _rewrite(gm.graph, node, learned)
        elif node.op == "call_function" and node.target in _SDPAS:
            match = _retarget_sdpa(gm.graph, node, learned)
        if match is not None:
            matches.append(match)
    if matches:
        recompile(gm, drop_dead_code=not dynamo_graph)
    MATCHES.extend(matches)
    return matches


def _retarget_sdpa(graph: torch.fx.Graph, sdpa: torch.fx.Node, learned: set) -> AttentionMatch | None:
    """A scaled_dot_product_attention call of the model's own, moved onto our kernels where they
    take it (no dropout, no implicit GQA, no learned mask); else it stays PyTorch's op."""
    bound = normalize_function(aten.scaled_dot_product_attention.default, sdpa.args, sdpa.kwargs,
                               normalize_to_only_use_kwargs=True)
    a = bound.kwargs if bound is not None else {}
    q, k, v, mask = (a.get(name) for name in ("query", "key", "value", "attn_mask"))
    if not a or a.get("dropout_p", 0.0) != 0.0 or a.get("enable_gqa", False) or mask in learned:
        return None
    if not isinstance(a.get("is_causal", False), bool) or not isinstance(a.get("scale"), (float, int, type(None))):
        return None  # a flag or scale computed in the graph: left to PyTorch
    metas = [tensor_value(n) for n in (q, k, v)]
    if any(t is None for t in metas) or (mask is not None and tensor_value(mask) is None):
        return None
    scale = a.get("scale")
    scale = 1 / math.sqrt(metas[0].shape[-1]) if scale is None else scale
    with graph.inserting_before(sdpa):
        fused = _fused_attention(graph, q, k, v, mask, bool(a.get("is_causal")), scale, 0.0)
    if fused.target is aten.scaled_dot_product_attention.default:  # our kernels do not take it
        graph.erase_node(fused)
        return None
    fused.meta = dict(sdpa.meta)
    sdpa.replace_all_uses_with(fused)
    graph.erase_node(sdpa)
    kinds = ["causal"] if a.get("is_causal") else ([] if mask is None else ["mask"])
    return AttentionMatch(source_line(fused), scale, bool(a.get("is_causal")), kinds, form="sdpa",
                          kernel="tensorsmith")


def rewrite_attention(gm: torch.fx.GraphModule, example_inputs) -> torch.fx.GraphModule:
    """`gm` with its attention fused: traced to pre-dispatch ATen where it has hand-written
    attention (a softmax), rewritten as Dynamo gave it where its only attention is
    scaled_dot_product_attention; `gm` itself when it has none (or cannot be traced so, which is
    logged: the graph then compiles unfused)."""
    if not mentions(gm, ("softmax", "scaled_dot_product_attention")):
        return gm
    needs_grad = [isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs]
    if mentions(gm, ("softmax",)):
        traced = trace(gm, example_inputs, "attention fusion")
        if traced is None:
            return gm
        matches = fuse_attention(traced, needs_grad)
    else:
        traced, matches = gm, fuse_attention(gm, needs_grad, dynamo_graph=True)
    for m in matches:
        log(1, f"attention fused ({m.form}, {', '.join(m.masks) or 'no mask'}, scale {m.scale:.4g}"
               f"{f', dropout {m.dropout}' if m.dropout else ''}; {m.kernel} kernels) at {m.source}")
    return traced if matches else gm
