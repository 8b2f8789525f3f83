"""Find a language model's last projection followed by its cross-entropy loss and replace both with
one chunked op (kernels/linear_cross_entropy_op.py), so that the N x V logits, their log-softmax
and their gradient are never whole in memory, forward or backward.

Runs on the Dynamo graph before AOTAutograd, traced to pre-dispatch ATen (as frontend/attention.py
does). The form matched, from the loss upwards:

    loss   = cross_entropy_loss(l, target, weight=None, reduction mean|sum, ignore_index, smoothing)
           | nll_loss[_nd](log_softmax(l, dim=-1), target, None, mean|sum, ignore_index)
    l      = logits through views keeping the last dim, casts up to float32, alias/contiguous/clone
             and full slices (exact no-ops or exact upcasts only), ending 2-D (N, V)
    logits = linear(x, W[, b]) | matmul(x, W^T) | mm(x, W^T) | addmm(b, x, W^T)

Class weights, reduction "none", other dims and casts down are left alone, as are a loss between
whose projection and itself some op mutates memory. When the logits (or anything on the chain) are
also used elsewhere, a graph output included, they stay computed for those uses, the op reads them
instead of computing them again, and only the loss moves to the op: gradients reaching the logits
from elsewhere flow through the kept projection.
Under autocast (the traced projection's dtype differs from its inputs') x, W and b are cast to that
dtype first, as autocast would, so the logits are eager's; the loss is then computed in float32.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx
from torch._guards import detect_fake_mode

from .. import config
from ..kernels import linear_cross_entropy_op  # noqa: F401 - registers torch.ops.tensorsmith.linear_cross_entropy*
from ..log import log
from .linear_cross_entropy_match import LOSSES, Plan, Skip, match
from .pre_dispatch import call, mentions, named, needing_grad, recompile, tensor_value, trace
from .source import source_line

aten = torch.ops.aten


@dataclass
class LinearCrossEntropyMatch:
    """One loss rewritten (for the log and the tests)."""
    source: str | None
    reduction: str
    ignore_index: int
    label_smoothing: float
    bias: bool
    training: bool  # the op computes the gradients in its forward
    logits_kept: bool  # the logits are also used elsewhere, so still computed for those uses


_LOSS_NAMES = ("cross_entropy", "nll_loss")  # the losses' names in a Dynamo graph, any spelling
MATCHES: list[LinearCrossEntropyMatch] = []  # every rewrite of this process, in order
SKIPPED: list[tuple[str | None, str]] = []  # (source, reason) of every candidate left alone


def _rewrite(graph: torch.fx.Graph, plan: Plan, learned: set) -> LinearCrossEntropyMatch:
    """Replace the plan's loss by the op (the logits stay where something else reads them, and the
    op then reads them instead of computing them again). With
    gradients on and x, W or b computed from an input that requires grad (`learned`), the training
    form; else the inference form (whose backward recomputes: right either way, only slower)."""
    loss, node, (x, w, b, target), dtype = plan.loss, plan.logits, plan.operands, plan.dtype
    ignore_index, smoothing, reduction = plan.ignore_index, plan.smoothing, plan.reduction
    training = torch.is_grad_enabled() and any(n in learned for n in (x, w, b) if n is not None)
    op = torch.ops.tensorsmith.linear_cross_entropy_with_grads.default if training else \
        torch.ops.tensorsmith.linear_cross_entropy.default
    with graph.inserting_before(loss):
        ops = [x, w, b]
        for i, n in enumerate(ops):  # autocast's casts, made explicit
            if n is not None and tensor_value(n).dtype != dtype:
                ops[i] = _cast(graph, n, dtype)
        if tensor_value(ops[0]).dim() != 2:
            ops[0] = call(graph, aten.reshape.default, ops[0], [-1, tensor_value(w).shape[1]])
        kept = None
        if _read_elsewhere(plan):
            kept = node if tensor_value(node).dim() == 2 else \
                call(graph, aten.reshape.default, node, [-1, tensor_value(w).shape[0]])
        new = call(graph, op, *ops, target, ignore_index, smoothing, reduction, kept)
        if training:
            new = call(graph, operator.getitem, new, 0)
        if tensor_value(new).dtype != tensor_value(loss).dtype:
            new = _cast(graph, new, tensor_value(loss).dtype)
    new.meta.update({k: v for k, v in loss.meta.items() if k != "val"})
    loss.replace_all_uses_with(new)
    graph.erase_node(loss)
    for n in [*plan.chain, node]:  # (each used by the previous one only, if at all)
        if not n.users:
            graph.erase_node(n)
    return LinearCrossEntropyMatch(source_line(new), reduction, ignore_index, smoothing, b is not None,
                                   training, logits_kept=node in graph.nodes)


def _read_elsewhere(plan: Plan) -> bool:
    """Whether the logits, or a value between them and the loss, has a reader besides that chain."""
    on_chain = {plan.loss, *plan.chain}
    return any(user not in on_chain for n in (plan.logits, *plan.chain) for user in n.users)


def _cast(graph, node, dtype):
    new = graph.call_function(aten._to_copy.default, (node,), {"dtype": dtype})
    with detect_fake_mode([tensor_value(node)]):
        new.meta["val"] = aten._to_copy.default(tensor_value(node), dtype=dtype)
    return new


def fuse_linear_cross_entropy(gm: torch.fx.GraphModule,
                              inputs_needing_grad: list[bool] = ()) -> list[LinearCrossEntropyMatch]:
    """Rewrite every linear + cross-entropy of `gm` (a pre-dispatch ATen graph with fake-tensor
    values) in place; return what was rewritten. Candidates left alone are logged with the reason.
    `inputs_needing_grad` says which placeholders require grad."""
    matches = []
    learned = needing_grad(gm.graph, list(inputs_needing_grad))
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target not in LOSSES:
            continue
        try:
            plan = match(node)
            small = too_small(tensor_value(plan.loss.args[0]))
            if small:
                raise Skip(small)
        except Exception as e:  # noqa: BLE001 - Skip, or a form the checks did not foresee
            reason = str(e) if isinstance(e, Skip) else f"{type(e).__name__}: {e}"
            SKIPPED.append((source_line(node), reason))
            log(1, f"linear + cross-entropy not fused at {source_line(node)}: {reason}")
            continue
        matches.append(_rewrite(gm.graph, plan, learned))
    if matches:
        recompile(gm)
    MATCHES.extend(matches)
    return matches


def too_small(logits) -> str | None:
    """Why logits of this size (the loss's input) are not worth the fused op, or None: below
    config.fuse_linear_cross_entropy_min_mb, unless a memory budget asks for every saving."""
    limit = config.fuse_linear_cross_entropy_min_mb * 2**20
    if logits is None or not limit or config.memory_budget:
        return None
    size = logits.numel() * logits.element_size()
    if size >= limit:
        return None
    return (f"logits of {size / 2**20:.2g} MiB, below fuse_linear_cross_entropy_min_mb "
            f"({config.fuse_linear_cross_entropy_min_mb:g})")


def _all_small(gm: torch.fx.GraphModule) -> str | None:
    """Before tracing: why no loss of the Dynamo graph is worth the fused op (every one's input
    below the size, read from Dynamo's example values), or None (one is, or one's size is unknown)."""
    reasons = []
    for node in gm.graph.nodes:
        if not named(node, _LOSS_NAMES):
            continue
        first = node.args[0] if node.args else None
        value = first.meta.get("example_value") if isinstance(first, torch.fx.Node) else None
        reason = too_small(value) if isinstance(value, torch.Tensor) else None
        if reason is None:
            return None
        reasons.append(reason)
    return reasons[0] if reasons else None


def rewrite_linear_cross_entropy(gm: torch.fx.GraphModule, example_inputs) -> torch.fx.GraphModule:
    """`gm` with its linear + cross-entropy fused, traced to pre-dispatch ATen (unless it already
    is); `gm` itself when it has none or cannot be traced so (logged: it then compiles unfused)."""
    if not mentions(gm, _LOSS_NAMES):
        return gm
    small = _all_small(gm)
    if small:
        log(1, f"linear + cross-entropy not fused: {small}")
        return gm
    traced = trace(gm, example_inputs, "linear + cross-entropy fusion")
    if traced is None:
        return gm
    matches = fuse_linear_cross_entropy(
        traced, [isinstance(x, torch.Tensor) and x.requires_grad for x in example_inputs])
    for m in matches:
        log(1, f"linear + cross-entropy fused ({m.reduction}, ignore_index {m.ignore_index}, smoothing "
               f"{m.label_smoothing:g}{', bias' if m.bias else ''}{', training' if m.training else ''}"
               f"{', logits also kept' if m.logits_kept else ''}) at {m.source}")
    return traced if matches else gm
