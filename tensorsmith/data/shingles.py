"""Text and token sequences -> shingle sets: each sample's distinct word (or token) n-grams, hashed
to 32 bits, stored as one flat sorted array per chunk with offsets (CSR).

Text is lowercased, punctuation becomes space, and words split on whitespace; a word's id is its
Python string hash (consistent within one process, which is all a comparison of two splits needs).
A sample shorter than n contributes one shingle, its whole sequence. Empty samples have no shingles.
"""
from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from .hashing import combine, mix64, offsets_of

_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})
_SENTINEL = "\x00"  # not whitespace, not punctuation: a word of its own between joined texts


@dataclass
class ShingleSets:
    values: np.ndarray  # uint32, each sample's distinct shingles sorted
    offsets: np.ndarray  # int64 [N + 1]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def word_ids(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(flat uint64 word ids, words per sample). The texts are joined with a sentinel word between
    them, so lowercasing, punctuation and splitting run once over one string, in C."""
    joined = (f" {_SENTINEL} ".join(texts) + f" {_SENTINEL}").lower().translate(_PUNCTUATION)
    words = joined.split()
    ids = np.fromiter(map(hash, words), dtype=np.int64, count=len(words))
    ends = np.flatnonzero(ids == hash(_SENTINEL))
    if len(ends) != len(texts) or (len(ends) and ends[-1] != len(ids) - 1):  # a text held the sentinel
        return _word_ids_one_by_one(texts)
    lengths = np.diff(ends, prepend=-1) - 1
    return np.delete(ids, ends).view(np.uint64), lengths.astype(np.int64)


def _word_ids_one_by_one(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    flat: list[int] = []
    lengths: list[int] = []
    for text in texts:
        words = text.lower().translate(_PUNCTUATION).split()
        lengths.append(len(words))
        flat.extend(map(hash, words))
    return np.array(flat, dtype=np.int64).view(np.uint64), np.array(lengths, dtype=np.int64)


def token_ids(sequences: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    flat = np.concatenate(sequences).astype(np.int64) if sequences else np.zeros(0, np.int64)
    return mix64(flat.view(np.uint64)), lengths


def shingle_sets(ids: np.ndarray, lengths: np.ndarray, n: int) -> ShingleSets:
    """Distinct n-gram shingles of each sample, from flat ids and per-sample lengths."""
    count, total = len(lengths), len(ids)
    if total == 0:
        return ShingleSets(np.zeros(0, np.uint32), np.zeros(count + 1, np.int64))
    starts = offsets_of(lengths)[:-1]
    owner = np.repeat(np.arange(count, dtype=np.uint64), lengths)
    position = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    length = np.repeat(lengths, lengths)
    h = np.zeros(total, dtype=np.uint64)
    for k in range(n):
        inside = position + k < length
        token = ids[np.minimum(np.arange(k, total + k), total - 1)]
        h = combine(h, np.where(inside, token, np.uint64(0)))
    keep = (position == 0) | (position + n <= length)
    keys = (owner[keep] << np.uint64(32)) | (h[keep] >> np.uint64(32))
    keys.sort()
    distinct = np.ones(len(keys), dtype=bool)
    distinct[1:] = keys[1:] != keys[:-1]
    keys = keys[distinct]
    per_sample = np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=count)
    return ShingleSets((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), offsets_of(per_sample))


def concat(parts: list[ShingleSets]) -> ShingleSets:
    if not parts:
        return ShingleSets(np.zeros(0, np.uint32), np.zeros(1, np.int64))
    values = np.concatenate([p.values for p in parts])
    lengths = np.concatenate([p.lengths for p in parts])
    return ShingleSets(values, offsets_of(lengths))
