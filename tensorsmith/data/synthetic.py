"""Synthetic splits for the benchmark and the tests: short texts over a Zipf-distributed vocabulary,
with exact and near-duplicate eval samples planted from train."""
from __future__ import annotations

import numpy as np


def vocabulary(size: int, rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return np.array(["".join(rng.choice(letters, rng.integers(3, 10))) for _ in range(size)])


def texts(n: int, rng: np.random.Generator, words: np.ndarray, min_words: int = 8,
          max_words: int = 30, zipf: float = 1.1) -> list[str]:
    """`n` texts of min_words..max_words words; word ranks drawn from a Zipf law (zipf = 0: uniform)."""
    lengths = rng.integers(min_words, max_words + 1, n)
    total = int(lengths.sum())
    ranks = (rng.zipf(zipf, total) - 1) % len(words) if zipf else rng.integers(0, len(words), total)
    flat = words[ranks].tolist()
    out, position = [], 0
    for length in lengths.tolist():
        out.append(" ".join(flat[position:position + length]))
        position += length
    return out


def edit(text: str, edits: int, rng: np.random.Generator, words: np.ndarray) -> str:
    """`text` with `edits` words replaced by random vocabulary words."""
    tokens = text.split()
    for i in rng.choice(len(tokens), min(edits, len(tokens)), replace=False):
        tokens[i] = str(words[rng.integers(len(words))])
    return " ".join(tokens)


def plant(train: list[str], eval_: list[str], exact: int, near: int, edits: int,
          rng: np.random.Generator, words: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overwrite eval samples with copies of train samples: `exact` verbatim, `near` with `edits`
    word substitutions. Returns (exact eval indices, near eval indices, their train sources)."""
    slots = rng.choice(len(eval_), exact + near, replace=False)
    sources = rng.choice(len(train), exact + near, replace=False)
    for k, (i, j) in enumerate(zip(slots.tolist(), sources.tolist())):
        eval_[i] = train[j] if k < exact else edit(train[j], edits, rng, words)
    return slots[:exact], slots[exact:], sources[exact:]
