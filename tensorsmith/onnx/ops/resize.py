"""Resize and Upsample: each axis resampled on its own with index and weight tables computed when
the graph is built (nearest, linear, cubic; every coordinate transformation and rounding rule)."""
from __future__ import annotations

import math

import torch

from ...errors import OnnxUnsupportedError
from .registry import floats, ints, op, rounder
from .tensor import _axis, _const


def _source_coordinate(mode: str, y: int, n_in: int, n_out: int, scale: float, roi) -> float:
    """Where output position y of an axis samples the input (onnx's coordinate modes)."""
    length = scale * n_in
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "asymmetric":
        return y / scale
    if mode == "align_corners":
        return 0.0 if length == 1 else y * (n_in - 1) / (length - 1)
    if mode == "pytorch_half_pixel":
        return -0.5 if length == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / length)
        return offset + (y + 0.5) / scale - 0.5
    if mode == "tf_half_pixel_for_nn":
        return (y + 0.5) / scale
    if mode == "tf_crop_and_resize":
        start, end, rounded = roi  # roi's values are combined in roi's own precision
        span, offset = rounded(end - start), rounded(start * (n_in - 1))
        if length == 1:
            return rounded(rounded(span * (n_in - 1)) / 2) + offset
        return y * span * (n_in - 1) / (length - 1) + offset
    raise OnnxUnsupportedError(f"Resize: coordinate_transformation_mode {mode!r}")


def _split(coordinate: float) -> tuple[int, float]:
    """The input position left of `coordinate` and the distance ratio in (0, 1] from it (an
    exact position counts as 1 from its left neighbour)."""
    base = math.floor(coordinate)
    ratio = coordinate - base
    return (base - 1, 1.0) if ratio == 0 else (base, ratio)


def _cubic(a: float, x: float) -> float:
    x = abs(x)
    if x <= 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return 0.0


def _weights(node, ratio: float, scale: float) -> list[float]:
    """Linear or cubic weights of the taps around a coordinate `ratio` right of the position
    left of it; antialiasing widens the kernel by 1/scale when downscaling."""
    linear, a = node.attr("mode") == "linear", node.attr("cubic_coeff_a", -0.75)
    if not node.attr("antialias", 0):
        if linear:
            return [1 - ratio, ratio]
        return [_cubic(a, d) for d in (ratio + 1, ratio, 1 - ratio, (1 - ratio) + 1)]
    s = min(scale, 1.0)
    start = math.floor(-(1 if linear else 2) / s) + 1
    kernel = (lambda d: max(0.0, 1 - abs(d))) if linear else (lambda d: _cubic(a, d))
    w = [kernel((i - ratio) * s) for i in range(start, 2 - start)]
    total = sum(w)
    return [v / total for v in w]


def _nearest(rule: str, coordinate: float, downscale: bool) -> int:
    base, ratio = _split(coordinate)
    if rule == "simple":  # Upsample and Resize-10
        rule = "ceil" if downscale else "floor"
    right = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5,
             "floor": ratio == 1, "ceil": True}[rule]
    return base + right


def _resample_axis(node, x, axis, n_out, scale, roi):
    """x resized along `axis` to n_out positions (x in its compute dtype unless nearest)."""
    n_in = x.shape[axis]
    mode = node.attr("coordinate_transformation_mode", "half_pixel")
    rule = node.attr("nearest_mode", "round_prefer_floor")
    if node.op_type == "Upsample" or node.opset < 11:
        mode, rule = "asymmetric", "simple"
    coordinates = [_source_coordinate(mode, y, n_in, n_out, scale, roi) for y in range(n_out)]
    if node.attr("mode", "nearest") == "nearest":
        picked = [min(max(_nearest(rule, c, scale < 1), 0), n_in - 1) for c in coordinates]
        out = x.index_select(axis, _const(picked, x))
    else:
        taps, weights = [], []
        for c in coordinates:
            base, ratio = _split(c)
            w = _weights(node, ratio, scale)
            positions = range(base + 1 - len(w) // 2, base + 1 + len(w) // 2)
            if node.attr("exclude_outside", 0):
                w = [v if 0 <= p < n_in else 0.0 for v, p in zip(w, positions)]
                w = [v / (sum(w) or 1.0) for v in w]
            taps.append([min(max(p, 0), n_in - 1) for p in positions])
            weights.append(w)
        width = len(weights[0]) if weights else 1
        picked = x.index_select(axis, _const(taps, x).reshape(-1))
        picked = picked.reshape(x.shape[:axis] + (n_out, width) + x.shape[axis + 1:])
        w = _const(weights, x, x.dtype).reshape((n_out, width) + (1,) * (x.dim() - axis - 1))
        out = (picked * w).sum(axis + 1)
    if mode == "tf_crop_and_resize":
        outside = [c < 0 or c > n_in - 1 for c in coordinates]
        outside = _const(outside, x, torch.bool).reshape((n_out,) + (1,) * (x.dim() - axis - 1))
        fill = _const(node.attr("extrapolation_value", 0.0), x, x.dtype)
        out = torch.where(outside, fill, out)
    return out


def _saturate(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """x cast to `dtype`, integers rounded (half to even) and clamped, as onnx does."""
    if dtype.is_floating_point:
        return x.to(dtype)
    info = torch.iinfo(dtype)
    return x.round().clamp(info.min, info.max).to(dtype)


def _resize_plan(node, x, scales, sizes, axes, roi):
    """For each resized axis: (axis, output size, scale, roi) after keep_aspect_ratio_policy."""
    n_in = [x.shape[a] for a in axes]
    if sizes:
        scales = [o / i for o, i in zip(sizes, n_in)]
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            scale = min(scales) if policy == "not_larger" else max(scales)
            scales = [scale] * len(axes)
            sizes = [int(scale * i + 0.5) for i in n_in]
    else:
        sizes = [int(s * i) for s, i in zip(scales, n_in)]
    if roi is None:
        rois = [None] * len(axes)
    else:
        values, rounded = roi
        rois = [(values[i], values[len(axes) + i], rounded) for i in range(len(axes))]
    return list(zip(axes, sizes, scales, rois))


def _interpolation_dtype(dtype: torch.dtype) -> torch.dtype:
    if dtype in (torch.float32, torch.float64):
        return dtype
    return torch.float32 if dtype.is_floating_point else torch.float64


def _unchanged(n_in: int, n_out: int, scale: float, roi) -> bool:
    """Whether resizing leaves an axis as it is (onnx then skips it)."""
    same_roi = roi is None or math.isclose(roi[0], 0) and math.isclose(roi[1], 1)
    return math.isclose(scale, 1.0) and n_out == n_in and same_roi


def _resize(node, x, scales, sizes, roi=None):
    """x resized by `scales` or to `sizes` (over `axes`); roi as (values, their rounder)."""
    axes = [_axis(a, x.dim()) for a in node.attr("axes", range(x.dim()))]
    nearest = node.attr("mode", "nearest") == "nearest"
    out = x if nearest else x.to(_interpolation_dtype(x.dtype))
    for axis, n_out, scale, axis_roi in _resize_plan(node, x, scales, sizes, axes, roi):
        if not _unchanged(x.shape[axis], n_out, scale, axis_roi):
            out = _resample_axis(node, out, axis, n_out, scale, axis_roi)
    return out if nearest else _saturate(out, x.dtype)


def _values(t: torch.Tensor | None, read):
    return read(t, "Resize's scales, sizes and roi") if t is not None and t.numel() else None


@op("Resize")
def resize(node, x, roi=None, scales=None, sizes=None):
    if node.opset < 11:
        roi, scales = None, roi  # Resize-10 takes (X, scales)
    crop = node.attr("coordinate_transformation_mode") == "tf_crop_and_resize"
    values = _values(roi, floats) if crop else None
    roi = None if values is None else (values, rounder(roi.dtype))
    return _resize(node, x, _values(scales, floats), _values(sizes, ints), roi)


@op("Upsample")
def upsample(node, x, scales=None):
    scales = node.attr("scales") if node.opset < 9 else floats(scales, "Upsample's scales")
    return _resize(node, x, scales, None)
