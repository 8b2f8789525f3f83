"""The regression gate: `tensorsmith bench --compare BASELINE.json`.

A model is flagged only when the confidence interval of new/old lies wholly above 1 + threshold,
so noise alone does not fail a build and a real slowdown does. Step times are compared raw while
eager's own times agree between the two runs; when eager itself moved (another machine, a busier
one, another PyTorch), the times relative to eager from the same interleaved rounds are compared
instead, (new/new eager) / (old/old eager), which cancels what moved everything. An accuracy
failure always fails; so does a row that ran in the baseline and no longer runs. Peak memory is
nearly deterministic and is compared as a plain ratio; compile latency (one sample per run) is
reported, never gated.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import stats
from .results import FAIL_ACCURACY, OK, Row

DEFAULT_THRESHOLD = 0.03
DEFAULT_MEMORY_THRESHOLD = 0.10
MIN_MEMORY_DELTA = 2**20  # bytes: smaller growth is allocator noise


@dataclass(frozen=True)
class Finding:
    model: str
    mode: str
    backend: str
    metric: str
    detail: str
    failed: bool

    def line(self) -> str:
        tag = "REGRESSED" if self.failed else "note"
        return f"{tag}: {self.model} {self.mode} {self.backend} {self.metric}: {self.detail}"


def _key(row: Row):
    return row.model, row.mode, row.backend


def compare(new_rows: list[Row], old_rows: list[Row], threshold: float = DEFAULT_THRESHOLD,
            memory_threshold: float = DEFAULT_MEMORY_THRESHOLD, basis: str = "auto",
            seed: int = 0) -> list[Finding]:
    """basis: "auto" (raw times unless eager itself moved), "absolute" or "relative"."""
    new = {_key(r): r for r in new_rows}
    old = {_key(r): r for r in old_rows}
    findings = []

    def add(row, metric, detail, failed):
        findings.append(Finding(row.model, row.mode, row.backend, metric, detail, failed))

    for key, row in new.items():
        base = old.get(key)
        if row.status == FAIL_ACCURACY:
            add(row, "accuracy", row.error or "outputs differ from the float64 reference", True)
        elif base is not None and base.status == OK and row.status != OK:
            add(row, "status", f"{row.status} (was ok): {row.error}", True)
        if base is None or row.status != OK or base.status != OK:
            continue
        eager = (new.get((row.model, row.mode, "eager")), old.get((row.model, row.mode, "eager")))
        _time(row, base, eager, threshold, basis, seed, add)
        _memory(row, base, memory_threshold, add)
        cold_new, cold_old = row.compile.get("cold_s"), base.compile.get("cold_s")
        if cold_new and cold_old and cold_new / cold_old > 1.5:
            add(row, "cold compile", f"{cold_old:.1f} s -> {cold_new:.1f} s (one sample each; "
                                     "not gated)", False)
    for key, base in old.items():
        if key not in new:
            add(base, "missing", "in the baseline but not in the new results", False)
    return findings


def _paired(row: Row, eager: Row | None) -> bool:
    return bool(eager and eager.status == OK and len(eager.samples_s) == len(row.samples_s))


def _time(row, base, eager, threshold, basis, seed, add):
    if not row.samples_s or not base.samples_s:
        return
    metric, limit = f"{row.mode} time", 1 + threshold
    ratio = stats.change(row.samples_s, base.samples_s, seed=seed)
    if row.backend == "eager":  # PyTorch's own time: a change is the machine's, reported only
        if ratio.wholly_above(limit):
            add(row, metric, f"new/old {ratio}: eager itself is slower (machine or PyTorch)", False)
        return
    can_relate = _paired(row, eager[0]) and _paired(base, eager[1])
    eager_moved = can_relate and not _inside(
        stats.change(eager[0].samples_s, eager[1].samples_s, seed=seed), threshold)
    if can_relate and (basis == "relative" or (basis == "auto" and eager_moved)):
        ratio = stats.change(row.samples_s, base.samples_s, eager[0].samples_s,
                             eager[1].samples_s, seed=seed)
        metric += " relative to eager"
    if ratio.wholly_above(limit):
        add(row, metric, f"new/old {ratio} lies wholly above {limit:g}", True)
    elif ratio.wholly_below(1 - threshold):
        add(row, metric, f"new/old {ratio}: faster", False)


def _inside(ratio: stats.Ratio, threshold: float) -> bool:
    """Eager's new/old is not clearly off 1 (its interval reaches into 1 +- threshold)."""
    return not (ratio.wholly_above(1 + threshold) or ratio.wholly_below(1 - threshold))


def _memory(row, base, threshold, add):
    a, b = row.memory.get("peak_bytes"), base.memory.get("peak_bytes")
    if not a or not b or row.backend == "eager" or row.memory.get("kind") != base.memory.get("kind"):
        return
    if a / b > 1 + threshold and a - b > MIN_MEMORY_DELTA:
        add(row, "peak memory", f"{b / 2**20:.0f} MB -> {a / 2**20:.0f} MB "
                                f"(new/old {a / b:.2f} > {1 + threshold:g})", True)


def machine_differences(new_doc: dict, old_doc: dict) -> list[str]:
    """Ways the two runs' machines differ, which make a time comparison suspect."""
    out = []
    for field in ("cpu", "gpu", "logical_cores", "torch_threads", "device"):
        a, b = new_doc["machine"].get(field), old_doc["machine"].get(field)
        if a != b:
            out.append(f"{field}: baseline {b!r}, new {a!r}")
    a, b = new_doc["machine"]["versions"].get("torch"), old_doc["machine"]["versions"].get("torch")
    if a != b:
        out.append(f"torch: baseline {b}, new {a}")
    return out
