"""`check(train, eval)`: every data check over two splits, as one `Report`.

Stages: load both splits; exact duplicates over the key columns; near-duplicates per text/token
key column (MinHash/LSH, then exact Jaccard) and per image key column (perceptual hash); NaN, Inf,
constant columns and empty samples within each split; label leakage.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from . import columns as column_checks
from . import exact, imagehash, leakage, minhash, progress, shingles
from .inputs import Column, default_label, load
from .report import Finding, Report
from .thresholds import Thresholds

_CHUNK = 50_000


def check(train, eval, *, key=None, label=None, kinds: dict | None = None,
          thresholds: Thresholds | None = None, ngram: int = 2,
          lsh: minhash.LshParams | None = None, show_progress: bool = True) -> Report:
    """Check `eval` against `train` (tensors, datasets, arrays, tables or paths: see `load`).

    key: the column(s) whose content identifies a sample for the duplicate checks (default: the
    text, token and image columns, or, when there are none, every column but the label).
    label: the label column for the leakage check (default: one named label, labels, target,
    targets or y, when both splits have it). kinds: column -> kind override.
    """
    enabled, progress.ENABLED = progress.ENABLED, show_progress
    try:
        return _check(train, eval, key, label, kinds, thresholds, ngram, lsh)
    finally:
        progress.ENABLED = enabled


def _check(train, eval, key, label, kinds, thresholds, ngram, lsh) -> Report:
    thresholds, lsh = thresholds or Thresholds(), lsh or minhash.LshParams()
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = seconds.get(stage, 0.0) + now - clock
        clock = now

    splits = {"train": load(train, kinds), "eval": load(eval, kinds)}
    lap("load")
    not_content = label
    if label is None:
        label = not_content = default_label(splits["train"])
        label = label if label in splits["eval"] else None  # an unlabelled eval split: no leakage check
    elif not all(label in s for s in splits.values()):
        raise ValueError(f"label column {label!r} is not in both splits")
    keys = [key] if isinstance(key, str) else list(key or _default_keys(splits, not_content))
    for name in keys:
        for split_name, split in splits.items():
            if name not in split:
                raise ValueError(f"key column {name!r} is not in {split_name} "
                                 f"(columns: {', '.join(split)})")
        if splits["train"][name].kind != splits["eval"][name].kind:
            raise ValueError(f"key column {name!r} is {splits['train'][name].kind} in train but "
                             f"{splits['eval'][name].kind} in eval (--kind {name}=KIND sets both)")
    report = Report(len(next(iter(splits["train"].values()))), len(next(iter(splits["eval"].values()))),
                    {n: c.kind for n, c in splits["train"].items()}, keys, label, thresholds,
                    seconds=seconds)
    exact_eval = _exact(report, splits, keys)
    lap("exact")
    for name in keys:
        kind = splits["train"][name].kind
        if kind in ("text", "tokens"):
            _near_text(report, splits, name, exact_eval, ngram, lsh)
        elif kind == "image":
            _near_images(report, splits, name, exact_eval)
    lap("near")
    for split_name, split in splits.items():
        _columns(report, split_name, split)
    lap("columns")
    if label is not None:
        _leaks(report, splits, label)
    lap("leakage")
    return report


def _default_keys(splits, label) -> list[str]:
    """The columns both splits have but the label: the content ones (ids and other metadata are
    usually numeric), else all of them."""
    shared = {n: c for n, c in splits["train"].items() if n in splits["eval"] and n != label}
    content = [n for n, c in shared.items() if c.kind in ("text", "tokens", "image")]
    return content or list(shared)


def _preview(column: Column, i: int):
    value = column.values[i]
    if isinstance(value, str):
        return value[:80]
    value = np.asarray(value)
    return value.tolist()[:16] if value.ndim == 1 and column.kind == "tokens" else f"array{list(value.shape)}"


def _examples(splits, name_or_names, e, t, extra=None) -> list[dict]:
    names = [name_or_names] if isinstance(name_or_names, str) else name_or_names
    out = []
    for n, (i, j) in enumerate(zip(e[:5].tolist(), t[:5].tolist())):
        example = {"eval": i, "train": j}
        if extra is not None:
            example.update({k: v[n] for k, v in extra.items()})
        example["eval_sample"] = _preview(splits["eval"][names[0]], i)
        example["train_sample"] = _preview(splits["train"][names[0]], j)
        out.append(example)
    return out


def _exact(report: Report, splits, keys) -> np.ndarray:
    train_cols = [splits["train"][n] for n in keys]
    eval_cols = [splits["eval"][n] for n in keys]
    h_train, h_eval = exact.sample_hashes(train_cols), exact.sample_hashes(eval_cols)
    e, t = exact.exact_duplicates(train_cols, eval_cols, h_train, h_eval)
    fraction = len(e) / max(report.eval_size, 1)
    report.findings.append(Finding(
        "exact_duplicates", report.thresholds.fraction_status(fraction, report.thresholds.max_exact),
        f"{len(e)} of {report.eval_size} eval samples ({fraction:.2%}) have an exact copy in train "
        f"(limit {report.thresholds.max_exact:.2%}); within-split repeats: train "
        f"{exact.duplicates_within(h_train)}, eval {exact.duplicates_within(h_eval)}",
        column=",".join(keys), count=len(e), fraction=fraction, examples=_examples(splits, keys, e, t),
        indices=e.tolist()))
    return e


def _sketch(column: Column, ngram: int, lsh, description: str):
    """Shingle sets and LSH band keys of a text/token column, chunk by chunk: the next chunk's
    words are split (Python, holding the GIL) while numpy hashes the previous one in a thread."""
    ids_of = shingles.word_ids if column.kind == "text" else shingles.token_ids

    def hash_chunk(ids, lengths):
        sets = shingles.shingle_sets(ids, lengths, ngram)
        return sets, minhash.band_keys(sets, lsh)

    parts = []
    with progress.progress(len(column), description) as bar, ThreadPoolExecutor(1) as pool:
        pending = None
        for lo in range(0, len(column), _CHUNK):
            ids, lengths = ids_of(column.values[lo:lo + _CHUNK])
            if pending is not None:
                parts.append(pending.result())
                bar.update(len(parts[-1][0]))
            pending = pool.submit(hash_chunk, ids, lengths)
        if pending is not None:
            parts.append(pending.result())
            bar.update(len(parts[-1][0]))
    sets = shingles.concat([p[0] for p in parts])
    keys = np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, lsh.bands), np.uint64)
    return sets, keys


def _near_text(report: Report, splits, name: str, exact_eval, ngram: int, lsh) -> None:
    train_sets, train_keys = _sketch(splits["train"][name], ngram, lsh, f"train {name}: minhash")
    eval_sets, eval_keys = _sketch(splits["eval"][name], ngram, lsh, f"eval {name}: minhash")
    with progress.progress(len(eval_keys) * lsh.bands, f"{name}: LSH search") as bar:
        e, t, sim = minhash.near_duplicates(train_sets, eval_sets, train_keys, eval_keys,
                                            report.thresholds.near_jaccard, bar)
    fresh = ~np.isin(e, exact_eval)
    e, t, sim = e[fresh], t[fresh], sim[fresh]
    fraction = len(e) / max(report.eval_size, 1)
    limits = report.thresholds
    report.findings.append(Finding(
        "near_duplicates", limits.fraction_status(fraction, limits.max_near),
        f"{len(e)} of {report.eval_size} eval samples ({fraction:.2%}) have a near-duplicate in "
        f"train, word {ngram}-gram Jaccard >= {limits.near_jaccard} (limit {limits.max_near:.2%}; "
        f"MinHash {lsh.num_perm} in {lsh.bands} bands: a pair at Jaccard 0.7 is found with "
        f"probability {lsh.candidate_probability(0.7):.4f})",
        column=name, count=len(e), fraction=fraction,
        examples=_examples(splits, name, e, t, {"jaccard": np.round(sim[:5], 3).tolist()}),
        indices=e.tolist()))


def _near_images(report: Report, splits, name: str, exact_eval) -> None:
    limits = report.thresholds
    h_train = imagehash.phash(splits["train"][name].values)
    h_eval = imagehash.phash(splits["eval"][name].values)
    e, t, d = imagehash.near_duplicates(h_train, h_eval, limits.image_distance)
    fresh = ~np.isin(e, exact_eval)
    e, t, d = e[fresh], t[fresh], d[fresh]
    fraction = len(e) / max(report.eval_size, 1)
    report.findings.append(Finding(
        "image_near_duplicates", limits.fraction_status(fraction, limits.max_near),
        f"{len(e)} of {report.eval_size} eval images ({fraction:.2%}) are within "
        f"{limits.image_distance} perceptual-hash bits of a train image (limit {limits.max_near:.2%})",
        column=name, count=len(e), fraction=fraction,
        examples=_examples(splits, name, e, t, {"bits": d[:5].tolist()}), indices=e.tolist()))


def _columns(report: Report, split_name: str, split) -> None:
    limits, size = report.thresholds, len(next(iter(split.values())))
    issues = column_checks.check_columns(split)
    for issue in issues:
        if issue.check == "empty":
            fraction = issue.count / max(size, 1)
            status = limits.fraction_status(fraction, limits.max_empty)
            message = f"{issue.count} empty samples ({fraction:.2%}; limit {limits.max_empty:.2%})"
        elif issue.check == "constant":
            status = "fail" if limits.fail_on_constant else "warn"
            fraction, message = None, f"every sample has the value {issue.examples[0]!r}"
        else:
            status = "fail" if limits.fail_on_nan else "warn"
            fraction, message = None, f"{issue.count} {issue.check.upper()} value(s)"
        examples = [{"sample": i} for i in issue.examples] if issue.check != "constant" else []
        report.findings.append(Finding(issue.check, status, message, split_name, issue.column,
                                       issue.count, fraction, examples))
    if not issues:
        report.findings.append(Finding("columns", "pass", "no NaN, Inf or constant columns, no empty "
                                       "samples", split_name))


def _leaks(report: Report, splits, label: str) -> None:
    leaks = leakage.find_leaks(splits["train"], splits["eval"], label, report.thresholds.leak_score)
    for leak in leaks:
        score = "R^2" if leak.baseline == 0 and leak.how == "predicts" else "accuracy"
        message = (f"column equals the label {label!r}" if leak.how == "equals" else
                   f"predicts the label {label!r} alone: eval {score} {leak.score:.4f} "
                   f"(majority-class guess {leak.baseline:.4f})")
        report.findings.append(Finding("leakage", "fail", message, column=leak.column, count=1,
                                       examples=[{"score": round(leak.score, 4)}]))
    if not leaks:
        report.findings.append(Finding("leakage", "pass", f"no feature equals or alone predicts "
                                       f"the label {label!r} (limit {report.thresholds.leak_score})"))
