"""Normalization ONNX ops: batch, instance, layer, group, RMS, Lp, mean-variance and LRN."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import op

_HALF = (torch.float16, torch.bfloat16)


def _stash(node, x) -> torch.dtype:
    """The dtype the statistics are computed in: float32 for half inputs under stash_type 1."""
    return torch.float32 if node.attr("stash_type", 1) == 1 and x.dtype in _HALF else x.dtype


def _per_channel(t, x):
    """A (C,) tensor shaped to broadcast along dimension 1 of `x`."""
    return t.reshape(-1, *[1] * (x.dim() - 2))


@op("BatchNormalization")
def batch_normalization(node, x, scale, bias, mean, var):
    """Normalizes with the running statistics; in training mode (an attribute from opset 14,
    asked for by the extra outputs before) with the batch's, also returning the updated
    running statistics."""
    eps = node.attr("epsilon", 1e-5)
    if node.opset >= 14:
        training = bool(node.attr("training_mode", 0))
    else:
        training = sum(1 for name in node.outputs if name) > 1
    if not training:
        mean, var, scale, bias = (t.to(x.dtype) for t in (mean, var, scale, bias))
        return F.batch_norm(x, mean, var, scale, bias, False, 0.0, eps)
    momentum = node.attr("momentum", 0.9)
    dims = [d for d in range(x.dim()) if d != 1]
    batch_var, batch_mean = torch.var_mean(x, dims, correction=0)
    y = (x - _per_channel(batch_mean, x)) / torch.sqrt(_per_channel(batch_var, x) + eps)
    y = y * _per_channel(scale, x) + _per_channel(bias, x)
    running_mean = (mean * momentum + batch_mean * (1 - momentum)).to(mean.dtype)
    running_var = (var * momentum + batch_var * (1 - momentum)).to(var.dtype)
    if node.opset >= 14:
        return y, running_mean, running_var
    return y, running_mean, running_var, batch_mean, batch_var


@op("InstanceNormalization")
def instance_normalization(node, x, scale, bias):
    return F.instance_norm(x, weight=scale, bias=bias, eps=node.attr("epsilon", 1e-5))


@op("LayerNormalization")
def layer_normalization(node, x, scale, bias=None):
    """Normalizes over the dimensions from `axis` on; also returns the mean and 1/stddev."""
    axis = node.attr("axis", -1) % x.dim()
    shape = list(x.shape[axis:])
    eps = node.attr("epsilon", 1e-5)
    stash = _stash(node, x)
    if stash == x.dtype and list(scale.shape) == shape and (bias is None or
                                                             list(bias.shape) == shape):
        return torch.native_layer_norm(x, shape, scale, bias, eps)
    y, mean, inv_std = torch.native_layer_norm(x.to(stash), shape, None, None, eps)
    y = y.to(x.dtype) * scale
    return (y if bias is None else y + bias), mean, inv_std


@op("GroupNormalization")
def group_normalization(node, x, scale, bias):
    """Before opset 21 `scale` and `bias` hold one value per group, from 21 one per channel."""
    groups = node.attr("num_groups")
    eps = node.attr("epsilon", 1e-5)
    channels = x.shape[1]
    if node.opset < 21:
        scale, bias = (t.reshape(groups, 1).expand(groups, channels // groups).reshape(channels)
                       for t in (scale, bias))
    stash = _stash(node, x)
    if stash == x.dtype:
        return F.group_norm(x, groups, scale, bias, eps)
    y = F.group_norm(x.to(stash), groups, None, None, eps).to(x.dtype)
    return y * _per_channel(scale, x) + _per_channel(bias, x)


@op("RMSNormalization")
def rms_normalization(node, x, scale):
    axis = node.attr("axis", -1) % x.dim()
    xs = x.to(_stash(node, x))
    mean_square = (xs * xs).mean(tuple(range(axis, x.dim())), keepdim=True)
    y = xs * torch.rsqrt(mean_square + node.attr("epsilon", 1e-5))
    return y.to(x.dtype) * scale


@op("LpNormalization")
def lp_normalization(node, x):
    """x divided by its Lp norm along `axis` (0 where the norm is 0)."""
    axis = node.attr("axis", -1)
    norm = torch.linalg.vector_norm(x, node.attr("p", 2), axis, keepdim=True)
    return torch.where(norm == 0, 0, x / norm).to(x.dtype)


@op("MeanVarianceNormalization")
def mean_variance_normalization(node, x):
    """(x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9) over `axes`."""
    axes = tuple(node.attr("axes", [0, 2, 3]))
    mean = x.mean(axes, keepdim=True)
    std = torch.sqrt((x * x).mean(axes, keepdim=True) - mean * mean)
    return (x - mean) / (std + 1e-9)


@op("LRN")
def lrn(node, x):
    """x / (bias + alpha / size * sum of x^2 over the `size` nearest channels) ^ beta."""
    size = node.attr("size")
    alpha, beta, bias = node.attr("alpha", 1e-4), node.attr("beta", 0.75), node.attr("bias", 1.0)
    before = (size - 1) // 2
    squares = (x * x).reshape(x.shape[0], 1, x.shape[1], -1)
    squares = F.pad(squares, (0, 0, before, size - 1 - before))
    mean = F.avg_pool2d(squares, (size, 1), stride=1).reshape(x.shape)
    return x / (bias + alpha * mean).pow(beta)
