"""Cross-entropy rows of one logits chunk with plain torch ops: the chunk contract of
linear_cross_entropy_op.py (`rows`) for what no kernel takes (float64 on CUDA, half types on the
CPU, other devices). Computes in float32, or float64 for float64 logits."""
from __future__ import annotations

import torch


def rows(logits, target, row_loss, ignore_index: int, label_smoothing: float, scale, write_grad: bool):
    """Each row's loss term into `row_loss`; with `write_grad`, `logits` overwritten with
    `scale` * d loss / d logits (0 on rows whose target is ignore_index)."""
    n, V = logits.shape
    if n == 0:
        return
    x = logits.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)
    ignored = target == ignore_index
    safe = target.masked_fill(ignored, 0).unsqueeze(1)
    lse = torch.logsumexp(x, dim=1)
    eps = float(label_smoothing)
    loss = (1 - eps) * (lse - x.gather(1, safe).squeeze(1))
    if eps:
        loss = loss + eps * (lse - x.sum(1) / V)
    row_loss.copy_(loss.masked_fill(ignored, 0))
    if not write_grad:
        return
    grad = (torch.exp(x - lse.unsqueeze(1)) - eps / V) * scale
    grad.scatter_add_(1, safe, torch.full_like(x[:, :1], -(1 - eps)) * scale)
    logits.copy_(grad.masked_fill(ignored.unsqueeze(1), 0.0))
