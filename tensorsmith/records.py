"""The compatibility record: per compiled graph, which ops were lowered, which fell back and why,
and which graphs ran whole through ATen. `tensorsmith.explain` formats it with Dynamo's graph breaks.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Fallback:
    """An ATen op the importer left to ATen: the op, the model's source line, and why."""
    target: str
    source: str | None
    reason: str


@dataclass
class GraphRecord:
    graph_id: str
    kind: str  # "forward", "backward" or "inference"
    nodes: int = 0
    native: Counter = field(default_factory=Counter)
    fallbacks: list[Fallback] = field(default_factory=list)
    whole_graph_fallback: str | None = None  # why the graph ran through ATen as it was
    specializations: int = 0  # shapes this graph was imported for (dynamic graphs: one per shape)
    symbolic: bool = False  # compiled once for all values of its symbolic sizes
    aten_calls: int = 0  # calls of a dynamic graph run through ATen, their shape not compiled (yet)
    kernels: int = 0  # generated kernels (0 when interpreted)
    library_calls: int = 0  # steps run through PyTorch (matmul, convolution, fallback, ...)
    cache_hit: bool | None = None  # whether the built module came from the compile cache
    peak_bytes: int = 0  # planned intermediate arena plus outputs
    cuda_graph: str | None = None  # "replayed", or "not: <why>" (runtime/cuda_graphs/); None: undecided


RECORDS: list[GraphRecord] = []


def new_record(kind: str) -> GraphRecord:
    record = GraphRecord(f"g{len(RECORDS):03d}_{kind}", kind)
    RECORDS.append(record)
    return record


def reset() -> None:
    RECORDS.clear()


def fallback_summary(records) -> Counter:
    """(ATen op, source line) -> count, over `records`."""
    counts = Counter()
    for r in records:
        for f in r.fallbacks:
            counts[(f.target, f.source, f.reason)] += 1
    return counts


def format_records(records) -> str:
    lines = []
    native = Counter()
    for r in records:
        native.update(r.native)
    total_fallbacks = sum(len(r.fallbacks) for r in records)
    lines.append(f"{len(records)} graph(s) compiled: {sum(native.values())} ops lowered natively "
                 f"({len(native)} kinds), {total_fallbacks} fallback(s)")
    for r in records:
        status = f"ran whole through ATen: {r.whole_graph_fallback}" if r.whole_graph_fallback else (
            f"{r.nodes} IR nodes, {sum(r.native.values())} native ops, {len(r.fallbacks)} fallbacks")
        lines.append(f"  {r.graph_id}: {status}")
    summary = fallback_summary(records)
    if summary:
        lines.append("fallbacks (op, count, source line, reason):")
        for (target, source, reason), count in summary.most_common():
            lines.append(f"  {target} x{count} at {source or '<unknown source>'}: {reason}")
    return "\n".join(lines)
