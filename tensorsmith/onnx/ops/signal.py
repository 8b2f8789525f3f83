"""Signal-processing ONNX ops: DFT, STFT, window functions, MelWeightMatrix.

Complex values are real tensors with a last axis of 2 (real, imaginary); a real input may have a
last axis of 1. Transforms are matrix products with cosine and sine tables, which trace and compile
like any matmul.
"""
from __future__ import annotations

import math

import torch

from ..dtypes import torch_dtype
from .registry import floats, op, scalar


def _transform(x: torch.Tensor, axis: int, n: int, inverse: bool, onesided: bool) -> torch.Tensor:
    """The DFT of length `n` of `x` (real or complex) along `axis`, computed in float64: the
    input is cut or padded with zeros to `n`; `onesided` keeps the first n // 2 + 1 frequencies,
    or, inverse, reads only those (a real output of last axis 1)."""
    re = x[..., 0].to(torch.float64).movedim(axis, -1)
    im = x[..., 1].to(torch.float64).movedim(axis, -1) if x.shape[-1] == 2 else torch.zeros_like(re)
    real_output = inverse and onesided
    rows = min(re.shape[-1], n // 2 + 1 if real_output else n)
    cols = n // 2 + 1 if onesided and not inverse else n
    re, im = re[..., :rows], im[..., :rows]
    j = torch.arange(rows, device=x.device)
    k = torch.arange(cols, device=x.device)
    angle = (j[:, None] * k[None, :] % n).to(torch.float64) * (2 * math.pi / n)
    cos, sin = angle.cos(), angle.sin()
    sign = 1 if inverse else -1
    if real_output:
        # The frequencies above n / 2 are conjugates of those below: all but 0 and n / 2 count
        # twice, and the real part of the sum is the signal.
        scale = (1.0 + ((j > 0) & (2 * j != n)).to(torch.float64)) / n
        signal = (re * scale) @ cos - (im * scale) @ sin
        return signal.unsqueeze(-1).movedim(-2, axis).to(x.dtype)
    out_re = re @ cos - sign * (im @ sin)
    out_im = im @ cos + sign * (re @ sin)
    out = torch.stack([out_re, out_im], -1)
    return (out / n if inverse else out).movedim(-2, axis).to(x.dtype)


@op("DFT")
def dft(node, x, dft_length=None, axis=None):
    if node.opset < 20:
        axis = node.attr("axis", 1)
    else:
        axis = -2 if axis is None else scalar(axis, "DFT's axis")
    axis %= x.dim()
    inverse, onesided = bool(node.attr("inverse", 0)), bool(node.attr("onesided", 0))
    size = x.shape[axis]
    if dft_length is not None:
        n = scalar(dft_length, "DFT's length")
    else:
        n = 2 * (size - 1) if inverse and onesided else size
    return _transform(x, axis, n, inverse, onesided)


@op("STFT")
def stft(node, signal, frame_step, window=None, frame_length=None):
    """Frames of `frame_length` every `frame_step` samples, times `window`, each transformed:
    [batch, frames, frequencies, 2]."""
    step = scalar(frame_step, "STFT's frame step")
    if frame_length is not None:
        length = scalar(frame_length, "STFT's frame length")
    else:
        length = window.shape[0] if window is not None else signal.shape[-2]
    frames = 1 + (signal.shape[1] - length) // step
    index = (torch.arange(frames, device=signal.device)[:, None] * step
             + torch.arange(length, device=signal.device)[None, :])
    framed = signal[:, index]
    if window is not None:
        framed = framed * window.to(signal.dtype)[:, None]
    return _transform(framed, 2, length, False, bool(node.attr("onesided", 1)))


def _window(node, size, terms: list[float]) -> torch.Tensor:
    """The window sum_i terms[i] * cos(2 pi i n / N) for n < size, N = size if periodic, else
    size - 1."""
    count = scalar(size, "the window's size")
    period = count if node.attr("periodic", 1) else count - 1
    angle = torch.arange(count, dtype=torch.float64, device=size.device) * (2 * math.pi / period)
    window = sum(c * torch.cos(i * angle) for i, c in enumerate(terms))
    return window.to(torch_dtype(node.attr("output_datatype", 1)))


@op("HannWindow")
def hann_window(node, size):
    return _window(node, size, [0.5, -0.5])


@op("HammingWindow")
def hamming_window(node, size):
    return _window(node, size, [25 / 46, -21 / 46])


@op("BlackmanWindow")
def blackman_window(node, size):
    return _window(node, size, [0.42, -0.5, 0.08])


@op("MelWeightMatrix")
def mel_weight_matrix(node, num_mel_bins, dft_length, sample_rate, lower_edge_hertz,
                      upper_edge_hertz):
    """[dft_length // 2 + 1, num_mel_bins]: triangles over the spectrogram bins, their corners
    spaced evenly on the mel scale between the edge frequencies."""
    bins, n, rate = (int(scalar(v, "a MelWeightMatrix size")) for v in
                     (num_mel_bins, dft_length, sample_rate))
    low, high = floats(lower_edge_hertz)[0], floats(upper_edge_hertz)[0]
    low_mel, high_mel = (2595 * math.log10(1 + hz / 700) for hz in (low, high))
    step = (high_mel - low_mel) / (bins + 2)
    corners = [int((n + 1) * (700 * (10 ** ((i * step + low_mel) / 2595) - 1)) // rate)
               for i in range(bins + 2)]
    weights = [[0.0] * bins for _ in range(n // 2 + 1)]
    for i in range(bins):
        left, center, right = corners[i:i + 3]
        if center == left:
            weights[center][i] = 1.0
        else:
            for j in range(left, center + 1):
                weights[j][i] = (j - left) / (center - left)
        for j in range(center, right):
            weights[j][i] = (right - j) / (right - center)
    return torch.tensor(weights, dtype=torch_dtype(node.attr("output_datatype", 1)),
                        device=num_mel_bins.device)
