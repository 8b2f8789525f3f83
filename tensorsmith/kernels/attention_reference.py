"""Attention by its definition, with the score matrix in memory: the kernels' contract
(kernels/__init__.py) for inputs no kernel takes (float64 reference runs, head dims over 256, other
devices). Computes in float32, or float64 for float64 inputs."""
from __future__ import annotations

import torch


def broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether a mask of `shape` expands to `target`, the scores' (B, H, Lq, Lk). Plain tuples, not
    torch.broadcast_shapes: the CPU kernel checks this on every call."""
    return len(shape) <= len(target) and all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def _compute_dtype(q: torch.Tensor) -> torch.dtype:
    return torch.float64 if q.dtype == torch.float64 else torch.float32


def _scores(q, k, mask, is_causal: bool, scale: float) -> torch.Tensor:
    """scale * q @ k^T with the mask applied: -inf wherever a query may not look."""
    dtype = _compute_dtype(q)
    s = (q.to(dtype) @ k.to(dtype).transpose(-2, -1)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, -torch.inf) if mask.dtype == torch.bool else s + mask.to(dtype)
    if is_causal:
        lq, lk = s.shape[-2:]
        keep = torch.ones(lq, lk, dtype=torch.bool, device=s.device).tril()
        s = s.masked_fill(~keep, -torch.inf)
    return s


def _probabilities(s: torch.Tensor, lse: torch.Tensor) -> torch.Tensor:
    """exp(s - lse), 0 on rows whose keys are all masked (lse = -inf)."""
    finite = torch.isfinite(lse).unsqueeze(-1)
    return torch.where(finite, torch.exp(s - torch.where(finite, lse.unsqueeze(-1), 0)), 0)


def forward(q, k, v, mask, is_causal: bool, scale: float):
    s = _scores(q, k, mask, is_causal, scale)
    lse = torch.logsumexp(s, dim=-1)
    out = _probabilities(s, lse) @ v.to(s.dtype)
    return out.to(q.dtype).contiguous(), lse.to(torch.float32 if q.dtype != torch.float64 else q.dtype)


def backward(grad_out, q, k, v, out, lse, mask, is_causal: bool, scale: float):
    dtype = _compute_dtype(q)
    p = _probabilities(_scores(q, k, mask, is_causal, scale), lse.to(dtype))
    do = grad_out.to(dtype)
    dv = p.transpose(-2, -1) @ do
    dp = do @ v.to(dtype).transpose(-2, -1)
    delta = (do * out.to(dtype)).sum(-1, keepdim=True)
    ds = p * (dp - delta) * scale
    dq = ds @ k.to(dtype)
    dk = ds.transpose(-2, -1) @ q.to(dtype)
    return tuple(g.to(t.dtype).contiguous() for g, t in ((dq, q), (dk, k), (dv, v)))
