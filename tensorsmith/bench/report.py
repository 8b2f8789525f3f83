"""Results as JSON (everything, raw samples included, so a later run can be compared against it),
and as a Markdown table for people."""
from __future__ import annotations

import datetime
import json

from .results import OK, Row

SCHEMA = 1


def document(rows: list[Row], machine: dict, settings: dict, warnings: list[str],
             wall_s: float | None = None, timeline: list | None = None) -> dict:
    return {"schema": SCHEMA,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine, "settings": settings, "warnings": warnings, "wall_s": wall_s,
            "timeline": timeline or [], "results": [r.to_dict() for r in rows]}


def write_json(doc: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(doc, f, indent=1, default=str)
        f.write("\n")


def load(path: str) -> dict:
    with open(path) as f:
        doc = json.load(f)
    if doc.get("schema") != SCHEMA or "results" not in doc:
        raise ValueError(f"{path}: not a tensorsmith bench result (schema {SCHEMA})")
    return doc


def rows_of(doc: dict) -> list[Row]:
    return [Row.from_dict(r) for r in doc["results"]]


def _num(value, fmt: str, missing: str = "-") -> str:
    return missing if value is None else format(value, fmt)


def _speedup(row: Row) -> str:
    if row.backend == "eager":
        return "1 (baseline)" if row.median_s is not None else "-"
    s = row.speedup
    if not s:
        return "-"
    if s.get("low") is None:
        return f"{s['value']:.2f}"
    return f"{s['value']:.2f} [{s['low']:.2f}, {s['high']:.2f}]"


def _compile(row: Row) -> str:
    if row.backend == "eager":
        return "-"
    cold, warm = row.compile.get("cold_s"), row.compile.get("warm_s")
    if cold is None and warm is None:
        return _num(row.first_call_s, ".1f") + " (in-process)" if row.first_call_s else "-"
    return f"{_num(cold, '.1f')} / {_num(warm, '.1f')}"


def _memory(row: Row) -> str:
    peak = row.memory.get("peak_bytes")
    return "-" if peak is None else f"{peak / 2**20:.0f}"


def _accuracy(row: Row) -> str:
    a = row.accuracy
    if not a:
        return "-"
    mark = "" if a.get("passed", True) or row.backend == "eager" else " ✗"
    return f"{a['max_rel_error']:.1e}{mark}"


def _compiler(row: Row) -> str:
    if row.graphs is None:
        return "-"
    return f"{row.graphs} / {row.graph_breaks} / {row.recompiles}"


def _fallbacks(row: Row) -> str:
    if row.fallback_ops is None:
        return "n/a" if row.graphs is not None else "-"
    return f"{row.fallback_ops} ops, {row.fallback_graphs} graphs"


HEADER = ("model", "mode", "backend", "status", "median ms", "speedup vs eager [95% CI]",
          "compile s cold / warm", "peak MB", "max rel err", "graphs / breaks / recompiles",
          "fallbacks")


def markdown(rows: list[Row], tolerance: float | None = None, memory_kind: str | None = None) -> str:
    lines = ["| " + " | ".join(HEADER) + " |",
             "|" + "|".join("---" if i < 4 else "---:" for i in range(len(HEADER))) + "|"]
    for r in rows:
        cells = (r.model, r.mode, r.backend, r.status,
                 _num(None if r.median_s is None else r.median_s * 1e3, ".2f"), _speedup(r),
                 _compile(r), _memory(r), _accuracy(r), _compiler(r), _fallbacks(r))
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for r in rows:
        if r.status != OK and r.error:
            notes.append(f"- {r.model} {r.mode} {r.backend}: **{r.status}**: {r.error}")
        for n in r.notes:
            notes.append(f"- {r.model} {r.mode} {r.backend}: {n}")
    legend = ("speedup = eager median / backend median over interleaved rounds (above 1 is "
              "faster), 95% paired-bootstrap interval; compile = first call minus a steady step, in "
              "a fresh process with empty caches (cold) and again with the caches it filled (warm)")
    if memory_kind:
        legend += f"; peak MB = {'CUDA allocator peak' if memory_kind == 'cuda' else 'peak RSS of a process running only that model'}"
    if tolerance is not None:
        legend += (f"; max rel err = max|x - ref| / max|ref| against float64 eager, over outputs "
                   f"(infer) or loss and every gradient (train); fails above {tolerance:g} unless "
                   f"within 10x eager float32's own error")
    return "\n".join(lines + ([""] + notes if notes else []) + ["", legend + "."])


def where(doc: dict) -> str:
    """The machine in a few words: "cpu: Intel Xeon (2 cores)" or "cuda: NVIDIA H100"."""
    m = doc["machine"]
    if m.get("device") == "cuda" and m.get("gpu"):
        return f"cuda: {m['gpu']}"
    return f"cpu: {m.get('cpu')} ({m.get('logical_cores')} cores, {m.get('torch_threads')} threads)"


def summary_lines(doc: dict) -> list[str]:
    m = doc["machine"]
    gpu = f", {m['gpu']}" if m.get("gpu") else ""
    v = m.get("versions", {})
    head = (f"{m.get('cpu')} ({m.get('logical_cores')} cores, {m.get('torch_threads')} torch threads)"
            f"{gpu}; torch {v.get('torch')}, tensorsmith {m.get('tensorsmith_commit') or v.get('tensorsmith')}")
    lines = [head]
    lines += [f"warning: {w}" for w in doc.get("warnings", [])]
    return lines
