"""Neural-network ONNX ops: convolutions, pooling, dropout, shrink, losses.

Normalizations live in nn_norm, attention in nn_attention, sampling ops in nn_spatial. Padding
that torch's kernels cannot express (asymmetric, larger than half a window, the extra room a
ceil_mode window needs) is applied with F.pad first.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...errors import OnnxUnsupportedError
from .registry import ints, is_constant, lowest, op, scalar


def _by_rank(node, fns: tuple, n: int):
    """The torch function of `fns` (1D, 2D, 3D variants) for `n` spatial dimensions."""
    if not 1 <= n <= len(fns):
        raise OnnxUnsupportedError(f"{node.where()}: {n} spatial dimensions are not supported")
    return fns[n - 1]


def _pad(x: torch.Tensor, begin, end, value=0.0) -> torch.Tensor:
    """`x` padded (or cropped, for negative amounts) in its trailing len(begin) dimensions."""
    if not any(begin) and not any(end):
        return x
    flat = [p for b, e in zip(reversed(begin), reversed(end)) for p in (b, e)]
    return F.pad(x, flat, value=value)


def _same_pads(auto_pad: str, size: int, stride: int, window: int) -> tuple[int, int]:
    """(begin, end) padding of SAME_UPPER/SAME_LOWER: the output has ceil(size / stride) items."""
    total = max(0, (-(-size // stride) - 1) * stride + window - size)
    small = total // 2
    return (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)


def _conv_pads(node, sizes, kernel, strides, dilations) -> tuple[list[int], list[int]]:
    n = len(sizes)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [_same_pads(auto_pad, sizes[i], strides[i], (kernel[i] - 1) * dilations[i] + 1)
                 for i in range(n)]
        return [b for b, _ in pairs], [e for _, e in pairs]
    if auto_pad == "VALID":
        return [0] * n, [0] * n
    pads = node.attr("pads", [0] * 2 * n)
    return list(pads[:n]), list(pads[n:])


def _geometry(node, x):
    n = x.dim() - 2
    return n, node.attr("strides", [1] * n), node.attr("dilations", [1] * n)


# ---- convolutions -------------------------------------------------------------------------------

_CONV = (F.conv1d, F.conv2d, F.conv3d)
_CONV_T = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)


def _conv(node, x, w, b, begin, end, strides, dilations, group):
    conv = _by_rank(node, _CONV, x.dim() - 2)
    if begin == end:
        return conv(x, w, b, strides, begin, dilations, group)
    return conv(_pad(x, begin, end), w, b, strides, 0, dilations, group)


@op("Conv")
def conv(node, x, w, b=None):
    n, strides, dilations = _geometry(node, x)
    begin, end = _conv_pads(node, x.shape[2:], w.shape[2:], strides, dilations)
    return _conv(node, x, w, b, begin, end, strides, dilations, node.attr("group", 1))


@op("ConvInteger")
def conv_integer(node, x, w, x_zero_point=None, w_zero_point=None):
    """Integer convolution of zero-point-shifted inputs, computed exactly in float64."""
    x = x.to(torch.float64)
    w = w.to(torch.float64)
    if x_zero_point is not None:
        x = x - x_zero_point.to(torch.float64)
    if w_zero_point is not None:
        w = w - w_zero_point.to(torch.float64).reshape(-1, *[1] * (w.dim() - 1))
    n, strides, dilations = _geometry(node, x)
    begin, end = _conv_pads(node, x.shape[2:], w.shape[2:], strides, dilations)
    y = _conv(node, x, w, None, begin, end, strides, dilations, node.attr("group", 1))
    return y.round().to(torch.int32)


def _conv_transpose_pads(node, sizes, kernel, strides, dilations, out_pad):
    """(begin, end) cropped from the full transposed-convolution output (negative: padded)."""
    n = len(sizes)
    full = [(sizes[i] - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 + out_pad[i]
            for i in range(n)]
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    pads = node.attr("pads")
    if output_shape is None and (pads is not None or auto_pad not in ("SAME_UPPER", "SAME_LOWER")):
        pads = pads or [0] * 2 * n
        return list(pads[:n]), list(pads[n:])
    if output_shape is None:
        output_shape = [sizes[i] * strides[i] for i in range(n)]
    totals = [full[i] - output_shape[-n:][i] for i in range(n)]
    if auto_pad == "SAME_UPPER":
        begin = [t // 2 for t in totals]
    else:
        begin = [t - t // 2 for t in totals]
    return begin, [t - b for t, b in zip(totals, begin)]


@op("ConvTranspose")
def conv_transpose(node, x, w, b=None):
    n, strides, dilations = _geometry(node, x)
    group = node.attr("group", 1)
    out_pad = node.attr("output_padding", [0] * n)[:n]
    begin, end = _conv_transpose_pads(node, x.shape[2:], w.shape[2:], strides, dilations, out_pad)
    conv_t = _by_rank(node, _CONV_T, n)
    if begin == end and min(begin) >= 0 and all(
            p < max(s, d) for p, s, d in zip(out_pad, strides, dilations)):
        return conv_t(x, w, b, strides, begin, out_pad, group, dilations)
    y = conv_t(x, w, None, strides, 0, 0, group, dilations)
    y = _pad(y, [-p for p in begin], [o - p for o, p in zip(out_pad, end)])
    return y if b is None else y + b.reshape(-1, *[1] * n)


# ---- pooling ------------------------------------------------------------------------------------

class _Windows:
    """Where the windows of a pooling node lie: per spatial dimension the padding before and
    after the input (`end` includes the room that ceil_mode's last window needs) and the
    output size."""

    def __init__(self, node, x, kernel):
        self.node = node
        n, self.strides, self.dilations = _geometry(node, x)
        self.kernel = list(kernel)
        self.sizes = list(x.shape[2:])
        auto_pad = node.attr("auto_pad", "NOTSET")
        pads = node.attr("pads", [0] * 2 * n)
        ceil_mode = node.attr("ceil_mode", 0)
        self.begin, self.pads_end, self.end, self.out = [], [], [], []
        for i, size in enumerate(self.sizes):
            stride, window = self.strides[i], (kernel[i] - 1) * self.dilations[i] + 1
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                begin, end = _same_pads(auto_pad, size, stride, window)
                out = -(-size // stride)
            elif auto_pad == "VALID":
                begin, end, out = 0, 0, (size - window) // stride + 1
            else:
                begin, end = pads[i], pads[i + n]
                span = size + begin + end - window
                out = (-(-span // stride) if ceil_mode else span // stride) + 1
                if ceil_mode and (out - 1) * stride >= size + begin:
                    out -= 1  # the last window must start inside the input or its left padding
            extra = max(0, (out - 1) * stride + window - (size + begin + end))
            self.begin.append(begin)
            self.pads_end.append(end)
            self.end.append(end + extra)
            self.out.append(out)

    def torch_padding(self) -> list[int] | None:
        """The symmetric padding torch's pooling kernels can apply themselves, if they can."""
        fits = all(b == e and b <= k // 2 for b, e, k in zip(self.begin, self.end, self.kernel))
        return self.begin if fits else None

    def padded(self, x, value):
        return _pad(x, self.begin, self.end, value)

    def crop(self, y):
        """`y` cut to the output size (a padded input may fit one window more)."""
        for i, out in enumerate(self.out):
            if y.shape[2 + i] != out:
                y = y.narrow(2 + i, 0, out)
        return y

    def sums(self, x):
        """The sum of each window over an already padded `x`."""
        n = len(self.kernel)
        if all(d == 1 for d in self.dilations):
            pool = _by_rank(self.node, (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d), n)
            return pool(x, self.kernel, self.strides) * math.prod(self.kernel)
        conv = _by_rank(self.node, _CONV, n)
        flat = x.reshape(-1, 1, *x.shape[2:])
        ones = torch.ones(1, 1, *self.kernel, dtype=x.dtype, device=x.device)
        y = conv(flat, ones, None, self.strides, 0, self.dilations)
        return y.reshape(*x.shape[:2], *y.shape[2:])


_MAX_POOL = (F.max_pool1d, F.max_pool2d, F.max_pool3d)


@op("MaxPool")
def max_pool(node, x):
    windows = _Windows(node, x, node.attr("kernel_shape"))
    pool = _by_rank(node, _MAX_POOL, x.dim() - 2)
    want_indices = len(node.outputs) > 1 and bool(node.outputs[1])
    padding = windows.torch_padding()
    source = x if padding is not None else windows.padded(x, lowest(x.dtype))
    if not want_indices:  # without indices: the op the compiler lowers, not a library call
        return windows.crop(pool(source, windows.kernel, windows.strides, padding or 0,
                                 windows.dilations))
    y, indices = pool(source, windows.kernel, windows.strides, padding or 0, windows.dilations,
                      return_indices=True)
    y = windows.crop(y)
    indices = windows.crop(indices)
    sizes = list(source.shape[2:])
    begin = windows.begin if padding is None else [0] * len(sizes)
    return y, _onnx_indices(indices, x.shape, sizes, begin, node.attr("storage_order", 0))


def _onnx_indices(indices, shape, padded_sizes, begin, storage_order):
    """torch's indices (flat within one padded image) as ONNX's: flat within the whole unpadded
    input, row-major (storage_order 0) or column-major (1) over the spatial dimensions."""
    sizes = list(shape[2:])
    if storage_order == 0 and padded_sizes == sizes:
        flat = indices
    else:
        flat = torch.zeros_like(indices)
        for i, padded in enumerate(padded_sizes):
            coord = indices // math.prod(padded_sizes[i + 1:]) % padded - begin[i]
            step = math.prod(sizes[:i]) if storage_order else math.prod(sizes[i + 1:])
            flat = flat + coord * step
    images = torch.arange(shape[0] * shape[1], device=indices.device)
    return flat + images.reshape(shape[0], shape[1], *[1] * len(sizes)) * math.prod(sizes)


_AVG_POOL = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)


@op("AveragePool")
def average_pool(node, x):
    windows = _Windows(node, x, node.attr("kernel_shape"))
    count_pads = bool(node.attr("count_include_pad", 0))
    padding = windows.torch_padding()
    # torch would count the room for ceil_mode's last window as padding
    if (padding is not None and all(d == 1 for d in windows.dilations)
            and (not count_pads or windows.end == windows.pads_end)):
        pool = _by_rank(node, _AVG_POOL, x.dim() - 2)
        return windows.crop(pool(x, windows.kernel, windows.strides, padding,
                                 count_include_pad=count_pads))
    # the mean over what each window counts: the input, and the explicit pads if asked
    counted = torch.ones(1, 1, *x.shape[2:], dtype=x.dtype, device=x.device)
    counted = _pad(counted, windows.begin, windows.pads_end, 1.0 if count_pads else 0.0)
    counted = _pad(counted, [0] * len(windows.out),
                   [e - p for e, p in zip(windows.end, windows.pads_end)])
    y = windows.sums(windows.padded(x, 0.0)) / windows.sums(counted)
    return windows.crop(y)


@op("LpPool")
def lp_pool(node, x):
    """(sum of |x|^p over each window)^(1/p); padding adds nothing to the sum."""
    p = node.attr("p", 2)
    windows = _Windows(node, x, node.attr("kernel_shape"))
    powers = x.abs().pow(p)
    return windows.crop(windows.sums(windows.padded(powers, 0.0)).pow(1.0 / p))


def _spatial_dims(x):
    return tuple(range(2, x.dim()))


@op("GlobalAveragePool")
def global_average_pool(node, x):
    return x.mean(_spatial_dims(x), keepdim=True)


@op("GlobalMaxPool")
def global_max_pool(node, x):
    return x.amax(_spatial_dims(x), keepdim=True)


@op("GlobalLpPool")
def global_lp_pool(node, x):
    return torch.linalg.vector_norm(x, node.attr("p", 2), _spatial_dims(x), keepdim=True)


@op("MaxUnpool")
def max_unpool(node, x, indices, output_shape=None):
    """Values put back at MaxPool's flat indices, into the shape a pool with these attributes
    would have read; an `output_shape` larger than that pads zeros after it."""
    n, strides, _ = _geometry(node, x)
    kernel = node.attr("kernel_shape")
    pads = node.attr("pads", [0] * 2 * n)
    sizes = [(x.shape[2 + i] - 1) * strides[i] - pads[i] - pads[n + i] + kernel[i]
             for i in range(n)]
    flat = torch.zeros(x.shape[0] * x.shape[1] * math.prod(sizes), dtype=x.dtype,
                       device=x.device)
    y = flat.scatter(0, indices.reshape(-1), x.reshape(-1)).reshape(*x.shape[:2], *sizes)
    if output_shape is None:
        return y
    wanted = ints(output_shape, "MaxUnpool's output_shape")[-n:]
    return _pad(y, [0] * n, [w - s for w, s in zip(wanted, sizes)])


# ---- dropout, shrink, losses --------------------------------------------------------------------

@op("Dropout", random=True)
def dropout(node, x, ratio=None, training_mode=None):
    """Identity unless training; then zeroes each item with probability `ratio` and scales the
    rest by 1 / (1 - ratio). The second output is the mask of kept items."""
    training = training_mode if node.opset >= 12 else None
    if training is None or (is_constant(training) and not scalar(training)):
        y, mask = x, torch.ones(x.shape, dtype=torch.bool, device=x.device)
    else:
        p = torch.tensor(0.5, dtype=x.dtype) if ratio is None else ratio.to(x.dtype)
        training = training.to(torch.bool)
        mask = ~training | (torch.rand(x.shape, device=x.device) >= p)
        y = torch.where(mask, x * torch.where(training, 1 / (1 - p), 1), 0).to(x.dtype)
    if len(node.outputs) < 2:
        return y
    return y, (mask if node.opset >= 10 else mask.to(x.dtype))


@op("Shrink")
def shrink(node, x):
    lambd = node.attr("lambd", 0.5)
    bias = node.attr("bias", 0.0)
    y = torch.where(x < -lambd, x + bias, torch.where(x > lambd, x - bias, 0))
    return y.to(x.dtype)


def _nll(node, log_prob, target, weight):
    reduction = node.attr("reduction", "mean")
    ignore_index = node.attr("ignore_index", -100)
    return F.nll_loss(log_prob, target.to(torch.int64), weight,
                      ignore_index=ignore_index, reduction=reduction)


@op("NegativeLogLikelihoodLoss")
def negative_log_likelihood_loss(node, x, target, weight=None):
    return _nll(node, x, target, weight)


@op("SoftmaxCrossEntropyLoss")
def softmax_cross_entropy_loss(node, scores, labels, weights=None):
    log_prob = F.log_softmax(scores, dim=1)
    loss = _nll(node, log_prob, labels, weights)
    return (loss, log_prob) if len(node.outputs) > 1 else loss
