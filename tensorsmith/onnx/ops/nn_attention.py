"""Attention and RotaryEmbedding ONNX ops."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..dtypes import torch_dtype
from .registry import op

_HALF = (torch.float16, torch.bfloat16)


def _split_heads(t, heads: int):
    """(batch, sequence, heads * size) -> (batch, heads, sequence, size)."""
    return t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2)


def _additive(allowed, dtype):
    """A boolean mask as an additive bias: 0 where allowed, -inf elsewhere."""
    zero, minus_inf = torch.zeros((), dtype=dtype), torch.full((), -math.inf, dtype=dtype)
    return torch.where(allowed, zero, minus_inf)


def _attention_bias(node, q, k, mask, past_length: int, nonpad_kv_seqlen):
    """The additive bias on the attention scores (None for none): the mask, padded with -inf to
    the key length, plus the causal and sliding-window limits and the key padding."""
    dtype, device = q.dtype, q.device
    q_len, kv_len = q.shape[2], k.shape[2]
    bias = None
    if mask is not None:
        if mask.dtype == torch.bool:
            bias = F.pad(mask, (0, kv_len - mask.shape[-1]), value=False)
            bias = _additive(bias, dtype)
        else:
            bias = F.pad(mask.to(dtype), (0, kv_len - mask.shape[-1]), value=-math.inf)
    causal = bool(node.attr("is_causal", 0))
    left, right = node.attr("left_window_size", -1), node.attr("right_window_size", -1)
    if causal or left >= 0 or right >= 0:
        # query i sits at position i + offset among the keys
        if nonpad_kv_seqlen is not None and past_length == 0:
            offset = (nonpad_kv_seqlen.to(torch.int64) - q_len).reshape(-1, 1, 1, 1)
        else:
            offset = past_length
        rows = torch.arange(q_len, device=device).reshape(-1, 1)
        distance = rows + offset - torch.arange(kv_len, device=device)
        allowed = torch.ones_like(distance, dtype=torch.bool)
        if causal:
            allowed = allowed & (distance >= 0)
        if left >= 0:
            allowed = allowed & (distance <= left)
        if right >= 0:
            allowed = allowed & (-distance <= right)
        limits = _additive(allowed, dtype)
        bias = limits if bias is None else bias + limits
    if nonpad_kv_seqlen is not None:
        keys = torch.arange(kv_len, device=device)
        padding = _additive(keys < nonpad_kv_seqlen.reshape(-1, 1, 1, 1), dtype)
        bias = padding if bias is None else bias + padding
    return bias


def _all_masked(bias):
    """Rows whose keys are all masked: they attend to nothing, and their output is 0."""
    return torch.isneginf(bias.amax(-1, keepdim=True))


@op("Attention")
def attention(node, q, k, v, attn_mask=None, past_key=None, past_value=None,
              nonpad_kv_seqlen=None):
    """softmax(q k^T * scale (softcapped) + bias) v over 4D (batch, heads, sequence, size) or
    3D (batch, sequence, heads * size) inputs; keys and values are appended to the past ones,
    and shared by groups of query heads when there are fewer of them."""
    three_d = q.dim() == 3
    if three_d:
        batch, q_len = q.shape[:2]
        q = _split_heads(q, node.attr("q_num_heads"))
        k = _split_heads(k, node.attr("kv_num_heads"))
        v = _split_heads(v, node.attr("kv_num_heads"))
    past_length = 0
    if past_key is not None:
        past_length = past_key.shape[2]
        k, v = torch.cat([past_key, k], 2), torch.cat([past_value, v], 2)
    present_key, present_value = k, v
    scale = node.attr("scale")
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    if q.shape[1] != k.shape[1]:
        k = k.repeat_interleave(q.shape[1] // k.shape[1], 1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], 1)
    softcap = node.attr("softcap", 0.0)
    precision = node.attr("softmax_precision")
    want_scores = len(node.outputs) > 3 and bool(node.outputs[3])
    fused = softcap <= 0 and precision is None and not want_scores
    plain_causal = (fused and node.attr("is_causal", 0) and attn_mask is None and past_length == 0
                    and nonpad_kv_seqlen is None and node.attr("left_window_size", -1) < 0
                    and node.attr("right_window_size", -1) < 0)
    bias = None if plain_causal else _attention_bias(node, q, k, attn_mask, past_length,
                                                     nonpad_kv_seqlen)
    scores = None
    if fused:
        # CPU kernels compute half precision in float32 anyway: round once, at the end
        up = torch.float32 if q.dtype in _HALF and q.device.type == "cpu" else q.dtype
        y = F.scaled_dot_product_attention(q.to(up), k.to(up), v.to(up),
                                           attn_mask=None if bias is None else bias.to(up),
                                           is_causal=bool(plain_causal), scale=scale).to(q.dtype)
        if attn_mask is not None or nonpad_kv_seqlen is not None:
            y = torch.where(_all_masked(bias), 0, y)
    else:
        y, scores = _explicit_attention(node, q, k, v, bias, scale, softcap, precision)
    if three_d:
        y = y.transpose(1, 2).reshape(batch, q_len, -1)
    return (y, present_key, present_value) + ((scores,) if want_scores else ())


def _explicit_attention(node, q, k, v, bias, scale, softcap, precision):
    """Attention step by step, for softcap, softmax precision and the scores output, which
    qk_matmul_output_mode picks: the (softcapped) scores (0, 1), plus the bias (2), or the
    softmax (3)."""
    root = math.sqrt(scale)
    scores = (q * root) @ (k * root).transpose(-1, -2)
    if softcap > 0:
        scores = torch.tanh(scores / softcap) * softcap
    shown = scores
    if bias is not None:
        scores = scores + bias
    mode = node.attr("qk_matmul_output_mode", 0)
    if mode == 2:
        shown = scores
    if precision is not None:
        scores = scores.to(torch_dtype(precision))
    weights = torch.softmax(scores, -1)
    if bias is not None:
        weights = torch.where(_all_masked(bias), 0, weights)
    if mode == 3:
        shown = weights
    return weights.to(q.dtype) @ v, shown.to(q.dtype)


@op("RotaryEmbedding")
def rotary_embedding(node, x, cos_cache, sin_cache, position_ids=None):
    """Rotates pairs of features (halves, or neighbours when interleaved) of the first
    rotary_embedding_dim features by the angles of each position."""
    four_d = x.dim() == 4
    if not four_d:  # (batch, sequence, heads * size) -> (batch, sequence, heads, size)
        x = x.reshape(x.shape[0], x.shape[1], node.attr("num_heads"), -1)
    if position_ids is not None:
        cos_cache, sin_cache = cos_cache[position_ids], sin_cache[position_ids]
    # (batch, sequence, rotary / 2) against the sequence dimension of x
    cos = cos_cache.unsqueeze(1 if four_d else 2)
    sin = sin_cache.unsqueeze(1 if four_d else 2)
    rotary = node.attr("rotary_embedding_dim", 0) or x.shape[-1]
    rotate, keep = x[..., :rotary], x[..., rotary:]
    interleaved = node.attr("interleaved", 0)
    if interleaved:
        x1, x2 = rotate[..., 0::2], rotate[..., 1::2]
    else:
        x1, x2 = rotate.chunk(2, -1)
    real = cos * x1 - sin * x2
    imag = sin * x1 + cos * x2
    if interleaved:
        rotated = torch.stack([real, imag], -1).flatten(-2)
    else:
        rotated = torch.cat([real, imag], -1)
    y = torch.cat([rotated, keep], -1)
    return y if four_d else y.flatten(2)
