"""`tensorsmith zoo`: the model zoo swept as a user would try it — every model, a training step and
an inference call, eager vs Inductor vs tensorsmith, fp32 (and bfloat16 autocast on CUDA).

Each (model, mode, precision) gets a status from tensorsmith's row:
  ok       ran, matched the float64 reference by the bench's rule (bench/accuracy.py), nothing on
           fallback;
  partial  the same, with ops or whole graphs run through ATen (named with their source lines);
  fail     an error, or numbers off the reference (what a fallback cannot hide).
Comparisons are deterministic on purpose: the builders switch dropout and stochastic depth off, and
TF32 is off for matmuls and cuDNN (TF32 alone moves conv models further from float64 than any
compiler's rounding does). Speed is Inductor's median step time over tensorsmith's, from interleaved rounds of
one run; the summary gives geometric means per mode and precision and lists the models below
OUTLIER_RATIO with what their compiled graphs looked like.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field

import torch

from . import harness, machine, report, zoo
from .accuracy import DEFAULT_TOLERANCE
from .results import OK, Row

OK_STATUS, PARTIAL, FAIL = "ok", "partial", "fail"
BF16_TOLERANCE = 1e-2  # relative floor for bf16 rows; eager's own bf16 error usually sets the bound
OUTLIER_RATIO = 0.9  # tensorsmith's speed against Inductor's below which a model is listed
TS, INDUCTOR, EAGER = "tensorsmith", "inductor", "eager"


@dataclass
class ZooRow:
    model: str
    family: str
    mode: str
    precision: str
    status: str
    error: str | None = None  # why it failed
    ts_error: float | None = None  # tensorsmith's max relative error against float64
    eager_error: float | None = None  # eager's, in the same precision: the scale of rounding
    vs_eager: float | None = None  # eager median / tensorsmith median
    vs_inductor: float | None = None  # inductor median / tensorsmith median
    graphs: int | None = None
    graph_breaks: int | None = None
    fallbacks: list = field(default_factory=list)
    first_call_s: dict = field(default_factory=dict)  # backend -> first call (compile included)


def status_of(ts: Row) -> tuple[str, str | None]:
    """The zoo status of tensorsmith's harness row, and the error that made it fail."""
    if ts.status != OK:
        return FAIL, f"{ts.status}: {ts.error}"
    if ts.fallback_ops or ts.fallback_graphs:
        return PARTIAL, None
    return OK_STATUS, None


def _ratio(numerator: Row | None, denominator: Row | None) -> float | None:
    if numerator is None or denominator is None or not numerator.median_s or not denominator.median_s:
        return None
    return numerator.median_s / denominator.median_s


def zoo_rows(rows: list[Row]) -> list[ZooRow]:
    """One ZooRow per (model, mode, precision) from the harness's per-backend rows."""
    grouped: dict[tuple, dict[str, Row]] = {}
    for r in rows:
        grouped.setdefault((r.model, r.mode, r.precision), {})[r.backend] = r
    result = []
    for (model, mode, precision), by_backend in grouped.items():
        ts, eager = by_backend.get(TS), by_backend.get(EAGER)
        entry = zoo.ZOO.get(model)
        z = ZooRow(model, entry.family if entry else "?", mode, precision, FAIL,
                   first_call_s={b: r.first_call_s for b, r in by_backend.items()})
        if ts is None:
            z.error = "tensorsmith did not run"
        else:
            z.status, z.error = status_of(ts)
            z.ts_error = ts.accuracy.get("max_rel_error")
            z.graphs, z.graph_breaks, z.fallbacks = ts.graphs, ts.graph_breaks, list(ts.fallbacks)
            if z.status != FAIL:
                z.vs_eager = _ratio(eager, ts)
                z.vs_inductor = _ratio(by_backend.get(INDUCTOR), ts)
        if eager is not None:
            z.eager_error = eager.accuracy.get("max_rel_error")
            if eager.status != OK and ts is not None and ts.status == OK:
                z.status, z.error = FAIL, f"eager itself: {eager.status}: {eager.error}"
        result.append(z)
    return result


def geomean(values) -> float | None:
    values = [v for v in values if v]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def summary(zrows: list[ZooRow]) -> list[str]:
    lines = []
    counts = {s: sum(z.status == s for z in zrows) for s in (OK_STATUS, PARTIAL, FAIL)}
    lines.append(f"{len(zrows)} rows: {counts[OK_STATUS]} ok, {counts[PARTIAL]} partial, "
                 f"{counts[FAIL]} fail")
    for mode, precision in sorted({(z.mode, z.precision) for z in zrows}):
        group = [z for z in zrows if (z.mode, z.precision) == (mode, precision)]
        parts = []
        for name, key in (("Inductor", "vs_inductor"), ("eager", "vs_eager")):
            values = [getattr(z, key) for z in group if getattr(z, key)]
            g = geomean(values)
            if g is not None:
                parts.append(f"{g:.2f}x {name} (geomean of {len(values)})")
        lines.append(f"{mode} {precision}: " + (", ".join(parts) or "no timings"))
    slow = [z for z in zrows if z.vs_inductor is not None and z.vs_inductor < OUTLIER_RATIO]
    if slow:
        lines.append(f"below {OUTLIER_RATIO}x Inductor:")
        for z in sorted(slow, key=lambda z: z.vs_inductor):
            lines.append(f"  {z.model} {z.mode} {z.precision}: {z.vs_inductor:.2f}x; " + _where(z))
    for z in zrows:
        if z.status == FAIL:
            lines.append(f"fail: {z.model} {z.mode} {z.precision}: {z.error}")
    return lines


def _where(z: ZooRow) -> str:
    """What the compiled model looked like: graphs and breaks (each a round trip through Python),
    fallbacks (eager ATen calls between kernels) and the first call's cost against Inductor's."""
    first = z.first_call_s
    parts = [f"{_num(z.graphs, 'd')} graphs, {_num(z.graph_breaks, 'd')} breaks",
             f"{len(z.fallbacks)} fallback kinds"]
    if first.get(TS) and first.get(INDUCTOR):
        parts.append(f"first call {first[TS]:.1f} s vs Inductor's {first[INDUCTOR]:.1f} s")
    return ", ".join(parts)


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


def markdown(zrows: list[ZooRow]) -> str:
    lines = ["| model | family | mode | precision | status | error vs f64 | eager's error | "
             "vs eager | vs Inductor | graphs / breaks | fallbacks |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for z in zrows:
        fallbacks = "; ".join(z.fallbacks[:3]) + (f"; +{len(z.fallbacks) - 3} more" if len(z.fallbacks) > 3 else "")
        lines.append(f"| {z.model} | {z.family} | {z.mode} | {z.precision} | {z.status} | "
                     f"{_num(z.ts_error, '.1e')} | {_num(z.eager_error, '.1e')} | "
                     f"{_num(z.vs_eager, '.2f')} | {_num(z.vs_inductor, '.2f')} | "
                     f"{_num(z.graphs, 'd')} / {_num(z.graph_breaks, 'd')} | "
                     f"{(fallbacks or '-').replace('|', '/')} |")
    return "\n".join(lines)


def models_for(args) -> list[str]:
    if args.subset:
        return zoo.subset()
    names = list(zoo.ZOO)
    if args.models:
        names = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.family:
        families = {f.strip() for f in args.family.split(",")}
        names = [n for n in names if n in zoo.ZOO and zoo.ZOO[n].family in families]
    return names


def parser() -> argparse.ArgumentParser:
    cuda = torch.cuda.is_available()
    p = argparse.ArgumentParser(prog="tensorsmith zoo", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", help=f"comma-separated names (default: all of {len(zoo.ZOO)})")
    p.add_argument("--family", help=f"comma-separated families ({', '.join(sorted(zoo.families()))})")
    p.add_argument("--subset", action="store_true", help="one small model per family (CI's)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if cuda else "cpu")
    p.add_argument("--size", choices=("auto", "tiny", "real"), default="auto",
                   help="auto: real on cuda, tiny on cpu")
    p.add_argument("--precision", help="comma-separated fp32,bf16 (default: fp32 on cpu, both on cuda)")
    p.add_argument("--mode", choices=("train", "infer", "both"), default="both")
    p.add_argument("--backends", default=f"{EAGER},{INDUCTOR},{TS}")
    p.add_argument("--rounds", type=int, default=10, help="timed rounds per model and mode")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE)
    p.add_argument("--out", default="zoo-results", help="directory for zoo.json and zoo.md")
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args, on_rows=None) -> list[Row]:
    """The harness rows of every precision; on_rows(rows so far) after each model and mode."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    default = "fp32,bf16" if args.device == "cuda" else "fp32"
    precisions = [p.strip() for p in (args.precision or default).split(",")]
    models = models_for(args)
    rows: list[Row] = []
    for precision in precisions:
        settings = harness.Settings(
            models=models, backends=[b.strip() for b in args.backends.split(",")],
            modes=list(harness.MODES) if args.mode == "both" else [args.mode], device=args.device,
            size=args.size, warmup=args.warmup, rounds=args.rounds, probes=False,
            tolerance=args.tolerance if precision == "fp32" else max(args.tolerance, BF16_TOLERANCE),
            precision=precision, progress=not args.no_progress)
        done = list(rows)
        rows = done + harness.run(settings, on_task_done=lambda partial: on_rows and on_rows(done + partial))
    return rows


def write(args, rows: list[Row], wall_s: float, info: dict, warnings: list[str]) -> tuple[list[ZooRow], str]:
    """zoo.json (the harness rows and the zoo rows) and zoo.md in args.out; the zoo rows and the
    Markdown written. `info` and `warnings` describe the machine (bench/machine.py), read once."""
    zrows = zoo_rows(rows)
    os.makedirs(args.out, exist_ok=True)
    doc = report.document(rows, info, vars(args), warnings, wall_s)
    doc["zoo"] = [asdict(z) for z in zrows]
    report.write_json(doc, os.path.join(args.out, "zoo.json"))
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    where = f"{info.get('gpu') if args.device == 'cuda' else info.get('cpu')}; {versions}"
    text = "\n".join([f"{where}; {doc['created']}; {wall_s:.0f} s", "", markdown(zrows), "",
                      *summary(zrows)])
    with open(os.path.join(args.out, "zoo.md"), "w") as f:
        f.write(text + "\n")
    return zrows, text


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    info, warnings = machine.info(args.device), machine.warnings(args.device)

    def save(rows):
        return write(args, rows, time.perf_counter() - start, info, warnings)
    rows = run(args, on_rows=save)
    zrows, text = save(rows)
    print(text, f"wrote {args.out}/zoo.json and zoo.md", sep="\n")
    return 1 if any(z.status == FAIL for z in zrows) else 0


if __name__ == "__main__":
    sys.exit(main())
