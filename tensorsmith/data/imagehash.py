"""Perceptual hashes of image tensors and near-duplicate search by Hamming distance.

The hash is pHash: grey levels (channel mean), area-resized to 32x32, a 2-D DCT, the 8x8 lowest
frequencies without the DC term compared with their median: 64 bits that survive resizing, small
noise, brightness and contrast changes, and re-encoding. Two images are near-duplicates when their
hashes differ in at most `max_distance` bits (default 4; unrelated images differ in about 32).

The search splits the 64 bits into max_distance + 1 segments: a pair within the distance agrees
exactly on at least one segment (pigeonhole), so each segment's matches are found through a sort
and only those candidates are compared. A segment value shared by more than `bucket_cap` train
images (flat images, padding) is skipped to bound the work; exact duplicates are found anyway.
"""
from __future__ import annotations

import itertools
import math

import numpy as np

_SIZE, _LOW = 32, 8
_CHUNK = 4096


def _dct_matrix(n: int):
    import torch

    k = torch.arange(n, dtype=torch.float32)[:, None]
    i = torch.arange(n, dtype=torch.float32)[None, :]
    return torch.cos(math.pi / n * (i + 0.5) * k)


def phash(images: np.ndarray) -> np.ndarray:
    """uint64 [N]: the perceptual hash of each image of a [N, C, H, W] array."""
    import torch
    import torch.nn.functional as F

    dct = _dct_matrix(_SIZE)
    weights = (np.uint64(1) << np.arange(64, dtype=np.uint64))
    out = np.zeros(len(images), dtype=np.uint64)
    for lo in range(0, len(images), _CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(images[lo:lo + _CHUNK])).float()
        x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).mean(dim=1, keepdim=True)
        if min(x.shape[-2:]) >= _SIZE:
            x = F.adaptive_avg_pool2d(x, _SIZE)
        else:
            x = F.interpolate(x, size=(_SIZE, _SIZE), mode="bilinear", align_corners=False)
        coefficients = (dct @ x[:, 0] @ dct.T)[:, :_LOW, :_LOW].reshape(len(x), -1)[:, 1:]
        median = coefficients.median(dim=1, keepdim=True).values
        bits = np.zeros((len(x), 64), dtype=np.uint64)
        bits[:, 1:] = (coefficients > median).numpy()
        out[lo:lo + _CHUNK] = (bits * weights).sum(axis=1, dtype=np.uint64)
    return out


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a ^ b).astype(np.int64)


def near_duplicates(train: np.ndarray, eval_: np.ndarray, max_distance: int,
                    bucket_cap: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eval index, closest train index, distance) for eval hashes within `max_distance` bits of
    a train hash."""
    segments = max_distance + 1
    edges = np.linspace(0, 64, segments + 1).astype(np.uint64)
    pairs = []
    for lo, hi in itertools.pairwise(edges):
        mask = (np.uint64(1) << (hi - lo)) - np.uint64(1) if hi - lo < 64 else ~np.uint64(0)
        t_seg, e_seg = (train >> lo) & mask, (eval_ >> lo) & mask
        order = np.argsort(t_seg, kind="stable")
        ordered = t_seg[order]
        first = np.searchsorted(ordered, e_seg, side="left")
        count = np.searchsorted(ordered, e_seg, side="right") - first
        count[count > bucket_cap] = 0
        e_idx = np.repeat(np.arange(len(eval_)), count)
        shift = first - (np.cumsum(count) - count)
        t_idx = order[np.repeat(shift, count) + np.arange(int(count.sum()))]
        close = hamming(train[t_idx], eval_[e_idx]) <= max_distance
        pairs.append((e_idx[close], t_idx[close]))
    e = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0, np.int64)
    t = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0, np.int64)
    d = hamming(train[t], eval_[e])
    order = np.lexsort((d, e))
    e, t, d = e[order], t[order], d[order]
    keep = np.ones(len(e), dtype=bool)
    keep[1:] = e[1:] != e[:-1]
    return e[keep], t[keep], d[keep]
