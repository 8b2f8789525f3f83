"""Sampling ONNX ops: GridSample, AffineGrid, Col2Im, RoiAlign, DeformConv."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...errors import OnnxUnsupportedError
from .registry import floats, ints, op, rounder

_GRID_MODES = {"linear": "bilinear", "bilinear": "bilinear", "nearest": "nearest",
               "cubic": "bicubic", "bicubic": "bicubic"}


@op("GridSample")
def grid_sample(node, x, grid):
    mode = node.attr("mode", "linear" if node.opset >= 20 else "bilinear")
    if mode not in _GRID_MODES:
        raise OnnxUnsupportedError(f"{node.where()}: mode {mode!r} is not supported")
    padding = node.attr("padding_mode", "zeros")
    align_corners = bool(node.attr("align_corners", 0))
    grid = grid.to(x.dtype)
    if _GRID_MODES[mode] == "bicubic" and padding != "zeros":
        grid = _inside_grid(grid, padding, align_corners, x.shape[2:])
    return F.grid_sample(x, grid, _GRID_MODES[mode], padding, align_corners)


def _inside_grid(grid, padding: str, align_corners: bool, sizes):
    """Grid points beyond [-1, 1] moved inside as ONNX does before interpolating: clamped to the
    edge pixels (border) or reflected (reflection). torch pads each cubic tap instead."""
    if padding == "reflection":
        folded = torch.remainder(grid + 1, 4)
        return torch.where(folded > 2, 4 - folded, folded) - 1
    if align_corners:
        return grid.clamp(-1, 1)
    sizes = torch.tensor(list(reversed(sizes)), dtype=grid.dtype, device=grid.device)
    edge = 1 - 1 / sizes  # the centre of the edge pixels
    return torch.where(grid.abs() > 1, torch.maximum(torch.minimum(grid, edge), -edge), grid)


@op("AffineGrid")
def affine_grid(node, theta, size):
    return F.affine_grid(theta, ints(size, "AffineGrid's size"),
                         align_corners=bool(node.attr("align_corners", 0)))


@op("Col2Im")
def col2im(node, x, image_shape, block_shape):
    """Sums blocks (columns of `x`) back into images: the inverse layout of im2col."""
    image = ints(image_shape, "Col2Im's image_shape")
    block = ints(block_shape, "Col2Im's block_shape")
    n = len(image)
    strides, dilations = node.attr("strides", [1] * n), node.attr("dilations", [1] * n)
    pads = node.attr("pads", [0] * 2 * n)
    if n == 2 and pads[:2] == pads[2:]:
        return F.fold(x, image, block, dilations, pads[:2], strides)
    # each block position is a one-hot kernel of a grouped transposed convolution
    size = math.prod(block)
    channels = x.shape[1] // size
    counts = [(image[i] + pads[i] + pads[n + i] - (block[i] - 1) * dilations[i] - 1)
              // strides[i] + 1 for i in range(n)]
    kernel = torch.eye(size, dtype=x.dtype, device=x.device).reshape(size, 1, *block)
    kernel = kernel.repeat(channels, *[1] * (n + 1))
    conv_t = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[n - 1]
    y = conv_t(x.reshape(x.shape[0], -1, *counts), kernel, None, strides, 0, 0, channels,
               dilations)
    flat = []
    for i in reversed(range(n)):
        flat += [-pads[i], image[i] + pads[i] - y.shape[2 + i]]
    return F.pad(y, flat)


def _roi_samples(start, length, bins: int, grid: int, size: int):
    """Per roi: the sample positions along one axis, clamped as RoiAlign does; their low and
    high neighbour indices and weights; and whether each sample lies within the image."""
    steps = (torch.arange(bins * grid, dtype=start.dtype, device=start.device) + 0.5) / grid
    pos = start[:, None] + steps * (length / bins)[:, None]
    inside = (pos >= -1.0) & (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor().to(torch.int64)
    at_end = low >= size - 1
    low = torch.where(at_end, size - 1, low)
    high = torch.where(at_end, size - 1, low + 1)
    frac = torch.where(at_end, 0.0, pos - low)
    return torch.stack([low, high], -1), torch.stack([1 - frac, frac], -1), inside


def _half_pixel(node) -> bool:
    """Whether region corners are shifted by half a pixel (the default from opset 16)."""
    default = "half_pixel" if node.opset >= 16 else "output_half_pixel"
    return node.attr("coordinate_transformation_mode", default) == "half_pixel"


@op("RoiAlign")
def roi_align(node, x, rois, batch_indices):
    """Bilinear samples on a grid of sampling_ratio^2 points per output bin of each region,
    averaged (mode avg) or the largest weighted corner value taken (mode max)."""
    out_h, out_w = node.attr("output_height", 1), node.attr("output_width", 1)
    ratio = node.attr("sampling_ratio", 0)
    scale = node.attr("spatial_scale", 1.0)
    half_pixel = _half_pixel(node)
    if ratio <= 0:  # the grid of each region depends on its size: one region at a time
        boxes = floats(rois, "RoiAlign's rois (with sampling_ratio 0)")
        at = rounder(torch.float32 if x.dtype == torch.bfloat16 else x.dtype)
        offset = 0.5 if half_pixel else 0.0
        parts = []
        for r in range(rois.shape[0]):
            x0, y0, x1, y1 = (at(at(v * scale) - offset) for v in boxes[4 * r:4 * r + 4])
            height, width = at(y1 - y0), at(x1 - x0)
            if not half_pixel:
                height, width = max(height, 1.0), max(width, 1.0)
            grid_h, grid_w = math.ceil(at(height / out_h)), math.ceil(at(width / out_w))
            if grid_h <= 0 or grid_w <= 0:  # an empty region: no samples
                parts.append(x.new_zeros(1, x.shape[1], out_h, out_w))
            else:
                parts.append(_roi_align(node, x, rois[r:r + 1], batch_indices[r:r + 1],
                                        grid_h, grid_w))
        return torch.cat(parts) if parts else x.new_zeros(0, x.shape[1], out_h, out_w)
    return _roi_align(node, x, rois, batch_indices, ratio, ratio)


def _roi_align(node, x, rois, batch_indices, grid_h: int, grid_w: int):
    out_h, out_w = node.attr("output_height", 1), node.attr("output_width", 1)
    height, width = x.shape[2], x.shape[3]
    half_pixel = _half_pixel(node)
    boxes = rois.to(x.dtype) * node.attr("spatial_scale", 1.0) - (0.5 if half_pixel else 0.0)
    lengths = boxes[:, 2:] - boxes[:, :2]
    if not half_pixel:
        lengths = lengths.clamp(min=1.0)
    ys, wy, in_y = _roi_samples(boxes[:, 1], lengths[:, 1], out_h, grid_h, height)
    xs, wx, in_x = _roi_samples(boxes[:, 0], lengths[:, 0], out_w, grid_w, width)
    # (rois, sy, 2, sx, 2): flat pixel index and weight of each corner of each sample
    index = ys[:, :, :, None, None] * width + xs[:, None, None, :, :]
    weight = wy[:, :, :, None, None] * wx[:, None, None, :, :]
    weight = weight * (in_y[:, :, None, None, None] & in_x[:, None, None, :, None])
    images = x[batch_indices.to(torch.int64)].flatten(2)
    channels = images.shape[1]
    values = images.gather(2, index.flatten(1)[:, None, :].expand(-1, channels, -1))
    values = values.reshape(*index.shape[:1], channels, *index.shape[1:]) * weight[:, None]
    shape = (values.shape[0], channels, out_h, grid_h, out_w, grid_w)
    if node.attr("mode", "avg") == "max":
        return values.amax((3, 5)).reshape(shape).amax((3, 5))
    return values.sum((3, 5)).reshape(shape).mean((3, 5))


@op("DeformConv")
def deform_conv(node, x, w, offset, b=None, mask=None):
    """2D convolution whose kernel taps are moved by per-position `offset`s (bilinearly
    sampled, zero outside the image) and weighted by `mask`."""
    if x.dim() != 4:
        raise OnnxUnsupportedError(f"{node.where()}: only 2D DeformConv is supported")
    n, channels, height, width = x.shape
    kh, kw = w.shape[2:]
    strides, dilations = node.attr("strides", [1, 1]), node.attr("dilations", [1, 1])
    pads = node.attr("pads", [0] * 4)
    groups, offset_groups = node.attr("group", 1), node.attr("offset_group", 1)
    out_h, out_w = offset.shape[2:]
    offset = offset.reshape(n, offset_groups, kh, kw, 2, out_h, out_w).to(x.dtype)

    def positions(axis, kernel, out, size):
        """Sample positions along `axis` (0: rows, 1: columns), normalized for grid_sample,
        shaped (n, offset_groups, kh, kw, out_h, out_w)."""
        taps = torch.arange(kernel, dtype=x.dtype, device=x.device) * dilations[axis]
        starts = torch.arange(out, dtype=x.dtype, device=x.device) * strides[axis] - pads[axis]
        if axis == 0:
            base = taps.reshape(kh, 1, 1, 1) + starts.reshape(1, 1, out_h, 1)
        else:
            base = taps.reshape(1, kw, 1, 1) + starts.reshape(1, 1, 1, out_w)
        return (base + offset[:, :, :, :, axis]) / (size - 1) * 2 - 1

    grid = torch.stack([positions(1, kw, out_w, width), positions(0, kh, out_h, height)], -1)
    grid = grid.reshape(n * offset_groups, kh * kw * out_h, out_w, 2)
    images = x.reshape(n * offset_groups, channels // offset_groups, height, width)
    samples = F.grid_sample(images, grid, "bilinear", "zeros", align_corners=True)
    samples = samples.reshape(n, offset_groups, -1, kh * kw, out_h * out_w)
    if mask is not None:
        samples = samples * mask.reshape(n, offset_groups, 1, kh * kw, out_h * out_w).to(x.dtype)
    columns = samples.reshape(n, groups, -1, out_h * out_w)  # (channel, tap) rows per group
    y = w.reshape(groups, w.shape[0] // groups, -1) @ columns
    y = y.reshape(n, w.shape[0], out_h, out_w)
    return y if b is None else y + b.reshape(1, -1, 1, 1)
