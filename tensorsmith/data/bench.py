"""`python -m tensorsmith.data.bench` (or `tensorsmith data bench`): data-check throughput on
synthetic short texts (8 to 30 words, Zipf vocabulary of 50,000 words), with planted exact and
near-duplicates (3 of ~20 words substituted) whose recall it reports."""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np

from . import synthetic
from .checker import check


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tensorsmith data bench", description=__doc__)
    p.add_argument("--samples", type=int, default=1_000_000, help="samples per split (default 1M)")
    p.add_argument("--planted", type=float, default=0.01,
                   help="fraction of eval overwritten by exact and by near copies of train (each)")
    p.add_argument("--edits", type=int, default=3, help="words substituted in a near copy")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    words = synthetic.vocabulary(50_000, rng)
    train = synthetic.texts(args.samples, rng, words)
    eval_ = synthetic.texts(args.samples, rng, words)
    planted = int(args.samples * args.planted)
    exact, near, sources = synthetic.plant(train, eval_, planted, planted, args.edits, rng, words)
    print(f"generated 2 x {args.samples} texts in {time.perf_counter() - start:.1f} s "
          f"(planted {planted} exact, {planted} near with {args.edits} substitutions)", file=sys.stderr)
    start = time.perf_counter()
    report = check({"text": train}, {"text": eval_}, show_progress=not args.no_progress)
    seconds = time.perf_counter() - start
    found_exact = set(report.by_check("exact_duplicates")[0].indices)
    found_near = set(report.by_check("near_duplicates")[0].indices)
    similar = [i for i, j in zip(near.tolist(), sources.tolist())
               if _jaccard(eval_[i], train[j]) >= report.thresholds.near_jaccard]
    recall_exact = len(found_exact & set(exact.tolist())) / max(len(exact), 1)
    recall_near = len(found_near & set(similar)) / max(len(similar), 1)
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in report.seconds.items())
    print(f"checked 2 x {args.samples} short texts in {seconds:.1f} s on {os.cpu_count()} cores: "
          f"{2 * args.samples / seconds:,.0f} samples/s ({stages})")
    print(f"recall: planted exact duplicates {recall_exact:.4f}; planted near-duplicates at word-bigram "
          f"Jaccard >= {report.thresholds.near_jaccard} ({len(similar)} of {len(near)}) "
          f"{recall_near:.4f}; unplanted pairs reported (their Jaccard is real): "
          f"{len(found_near - set(near.tolist()))}")
    return 0


def _jaccard(a: str, b: str) -> float:
    def bigrams(text: str) -> set:
        words = text.split()
        return set(itertools.pairwise(words)) or {tuple(words)}
    x, y = bigrams(a), bigrams(b)
    return len(x & y) / max(len(x | y), 1)


if __name__ == "__main__":
    sys.exit(main())
