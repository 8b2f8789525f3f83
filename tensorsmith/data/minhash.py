"""MinHash signatures and LSH banding over shingle sets, in numpy, and the cross-split search.

Each of `num_perm` hash functions is h_k(x) = (a_k * x mod 2^64) >> 32 for a random odd a_k
(multiply-shift, a universal family);
a sample's signature is the minimum of each h_k over its shingles (`np.minimum.reduceat`), so the
cost is num_perm passes over the shingles and no Python per sample. The signature is cut into
`bands` bands of r = num_perm / bands values; two samples whose signatures agree on a whole band
become a candidate pair. A pair with Jaccard similarity J becomes a candidate with probability
1 - (1 - J^r)^bands (for the default 128 values in 32 bands of 4: 0.87 at J = 0.5, 0.988 at
J = 0.6, 0.9999 at J = 0.7, 0.05 at J = 0.2). Candidates are then checked exactly: their true Jaccard similarity is computed from the
shingle sets, so a reported near-duplicate is never an artefact of hashing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .hashing import combine, first_matches_truncated, ragged_indices
from .shingles import ShingleSets

_BLOCK = 2048  # samples per block: ~40k shingles, 320 KB of uint64


@dataclass
class LshParams:
    num_perm: int = 128
    bands: int = 32
    seed: int = 1

    @property
    def rows(self) -> int:
        return self.num_perm // self.bands

    def candidate_probability(self, jaccard: float) -> float:
        return 1.0 - (1.0 - jaccard ** self.rows) ** self.bands


def band_keys(sets: ShingleSets, params: LshParams) -> np.ndarray:
    """uint64 [N, bands]: a hash of each band of each sample's MinHash signature. Empty samples get
    salted keys of their own (any pair they join has Jaccard 0 and is dropped)."""
    if params.num_perm % params.bands:
        raise ValueError(f"num_perm {params.num_perm} is not a multiple of bands {params.bands}")
    rng = np.random.default_rng(params.seed)
    a = rng.integers(1, 2**63, size=params.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    # Blocks of samples whose shingles stay in the CPU cache through all num_perm passes (1.6x
    # faster than one pass over the whole chunk per hash function).
    offsets = sets.offsets
    blocks = [_band_keys(ShingleSets(sets.values[offsets[lo]:offsets[hi]], offsets[lo:hi + 1] - offsets[lo]),
                         params, a)
              for lo, hi in _blocks(len(sets))]
    return np.concatenate(blocks) if blocks else np.zeros((0, params.bands), dtype=np.uint64)


def _blocks(count: int, size: int = _BLOCK):
    return [(lo, min(lo + size, count)) for lo in range(0, count, size)]


def _band_keys(sets: ShingleSets, params: LshParams, a: np.ndarray) -> np.ndarray:
    lengths = sets.lengths
    filled = lengths > 0
    starts = sets.offsets[:-1][filled]
    x = sets.values.astype(np.uint64)
    h = np.empty_like(x)
    keys = np.zeros((len(sets), params.bands), dtype=np.uint64)
    for band in range(params.bands):
        acc = np.full(int(filled.sum()), np.uint64(band))
        for row in range(params.rows):
            k = band * params.rows + row
            np.multiply(x, a[k], out=h)
            # the minimum of the top 32 bits is the top 32 bits of the minimum: shift afterwards
            low = np.minimum.reduceat(h, starts) >> np.uint64(32) if len(starts) else acc
            acc = combine(acc, low)
        keys[filled, band] = acc
    empty = np.flatnonzero(~filled).astype(np.uint64)
    keys[~filled] = ~combine(empty, np.uint64(params.seed))[:, None]
    return keys


def candidate_pairs(train_keys: np.ndarray, eval_keys: np.ndarray, bar=None) -> tuple[np.ndarray, np.ndarray]:
    """Unique (eval index, train index) pairs that share a band key: for each band and each eval
    sample, the lowest-numbered train sample with that key (compared on its high bits: a rare
    extra candidate costs one Jaccard check)."""
    pairs = []
    for band in range(train_keys.shape[1]):
        e, t = first_matches_truncated(train_keys[:, band], eval_keys[:, band])
        pairs.append((e.astype(np.uint64) << np.uint64(32)) | t.astype(np.uint64))
        if bar is not None:
            bar.update(len(eval_keys))
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    unique = np.sort(np.concatenate(pairs))  # (sort and drop repeats: faster than np.unique here)
    unique = unique[np.concatenate([[True], unique[1:] != unique[:-1]])] if len(unique) else unique
    return (unique >> np.uint64(32)).astype(np.int64), (unique & np.uint64(0xFFFFFFFF)).astype(np.int64)


def jaccard(eval_sets: ShingleSets, train_sets: ShingleSets, e: np.ndarray, t: np.ndarray,
            chunk: int = 500_000) -> np.ndarray:
    """Exact Jaccard similarity of the shingle sets of pairs (e[i], t[i])."""
    out = np.zeros(len(e), dtype=np.float64)
    e_len, t_len = eval_sets.lengths, train_sets.lengths
    for lo in range(0, len(e), chunk):
        pe, pt = e[lo:lo + chunk], t[lo:lo + chunk]
        le, lt = e_len[pe], t_len[pt]
        pid = np.arange(len(pe), dtype=np.uint64)
        keys = np.concatenate([
            (np.repeat(pid, le) << np.uint64(32)) | eval_sets.values[ragged_indices(eval_sets.offsets[pe], le)],
            (np.repeat(pid, lt) << np.uint64(32)) | train_sets.values[ragged_indices(train_sets.offsets[pt], lt)],
        ])
        keys.sort()
        same = keys[1:] == keys[:-1]
        inter = np.bincount((keys[1:][same] >> np.uint64(32)).astype(np.int64), minlength=len(pe))
        union = le + lt - inter
        out[lo:lo + chunk] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return out


def near_duplicates(train_sets: ShingleSets, eval_sets: ShingleSets, train_keys, eval_keys,
                    threshold: float, bar=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each eval sample with a train sample of Jaccard >= threshold: (eval index, the best
    such train index, its Jaccard), sorted by eval index."""
    e, t = candidate_pairs(train_keys, eval_keys, bar)
    sim = jaccard(eval_sets, train_sets, e, t)
    keep = sim >= threshold
    e, t, sim = e[keep], t[keep], sim[keep]
    order = np.lexsort((-sim, e))  # by eval index, best first
    e, t, sim = e[order], t[order], sim[order]
    first = np.ones(len(e), dtype=bool)
    first[1:] = e[1:] != e[:-1]
    return e[first], t[first], sim[first]
