"""`tensorsmith bench`: run the harness, write JSON, Markdown and PNG reports, optionally gate
against a baseline.

Exit status: 0 every row ok; 1 --compare found a regression (or an accuracy failure); 2 the run
finished but some rows did not run cleanly (their status says why).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from . import backends, gate, harness, machine, report, zoo
from .accuracy import DEFAULT_TOLERANCE
from .results import OK

DEFAULT_BACKENDS = "eager,inductor,tensorsmith"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tensorsmith bench",
        description="Benchmark torch.compile backends against eager: interleaved timed rounds, "
                    "medians with bootstrap intervals, cold/warm compile latency, peak memory, "
                    "accuracy against float64. Without --models: the default comparison "
                    "(nanoGPT, train and inference, eager vs inductor vs tensorsmith).")
    p.add_argument("--models", help=f"comma-separated zoo names or 'all' ({', '.join(zoo.ZOO)})")
    p.add_argument("--backends", default=DEFAULT_BACKENDS,
                   help="comma-separated: 'eager' (uncompiled baseline) or any torch.compile "
                        f"backend (default {DEFAULT_BACKENDS})")
    p.add_argument("--check-numerics", action="store_true",
                   help=f"add the variant {backends.CHECKED} (tensorsmith with numeric guards on, "
                        "check_numerics='warn'): its time against tensorsmith's is their cost")
    p.add_argument("--mode", choices=("train", "infer", "both"), default="both")
    p.add_argument("--device", choices=("cpu", "cuda"),
                   default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", choices=("auto", "tiny", "default", "real"),
                   help="model size (auto: real on cuda, tiny on cpu; the default comparison "
                        "uses nanoGPT's default size on cpu)")
    p.add_argument("--rounds", type=int, help="timed rounds (default: fill --seconds)")
    p.add_argument("--seconds", type=float, default=6.0,
                   help="timed-round budget per model and mode (default 6; at least --min-rounds)")
    p.add_argument("--min-rounds", type=int, default=20)
    p.add_argument("--max-rounds", type=int, default=200)
    p.add_argument("--warmup", type=int, default=2, help="untimed calls after the first")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"relative error allowed against float64 (default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--no-probes", action="store_true",
                   help="skip the subprocesses that measure cold/warm compile and peak memory")
    p.add_argument("--probe-timeout", type=float, default=900.0)
    p.add_argument("--out", default="bench-results", help="directory for results.json/.md/.png")
    p.add_argument("--no-charts", action="store_true")
    p.add_argument("--compare", metavar="BASELINE.json",
                   help="gate against a baseline: exit 1 if a model regressed")
    p.add_argument("--results", metavar="NEW.json",
                   help="with --compare: compare this file instead of running")
    p.add_argument("--threshold", type=float, default=gate.DEFAULT_THRESHOLD,
                   help=f"time regression threshold (default {gate.DEFAULT_THRESHOLD:g}: the "
                        "interval of new/old must lie wholly above 1.03)")
    p.add_argument("--memory-threshold", type=float, default=gate.DEFAULT_MEMORY_THRESHOLD)
    p.add_argument("--basis", choices=("auto", "absolute", "relative"), default="auto",
                   help="compare raw step times (absolute), times relative to eager from the same "
                        "rounds (relative), or raw unless eager itself moved (auto, the default)")
    p.add_argument("--threads", type=int,
                   help="torch CPU threads for every process (default: torch's); 1 is steadier on "
                        "a machine other jobs share, where threads stall each other")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--list", action="store_true", help="list the zoo and exit")
    return p


def settings_from(args) -> harness.Settings:
    default_comparison = args.models is None
    if default_comparison:
        models = ["nanogpt"]
    elif args.models.strip() == "all":
        models = list(zoo.ZOO)
    else:
        models = [m.strip() for m in args.models.split(",") if m.strip()]
    size = args.size or ("default" if default_comparison and args.device == "cpu" else "auto")
    return harness.Settings(
        models=models, backends=_backends(args),
        modes=list(harness.MODES) if args.mode == "both" else [args.mode], device=args.device,
        size=size, warmup=args.warmup, rounds=args.rounds, min_rounds=args.min_rounds,
        max_rounds=args.max_rounds, seconds=args.seconds, tolerance=args.tolerance,
        probes=not args.no_probes, probe_timeout=args.probe_timeout, seed=args.seed,
        progress=not args.no_progress)


def _backends(args) -> list[str]:
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    if getattr(args, "check_numerics", False) and backends.CHECKED not in names:
        names.append(backends.CHECKED)
    return names


def run(args) -> dict:
    s = settings_from(args)
    if args.threads:
        torch.set_num_threads(args.threads)  # probes take the benchmark process's thread count
    warnings = machine.warnings(s.device)
    info = machine.info(s.device)
    os.makedirs(args.out, exist_ok=True)
    paths = [os.path.join(args.out, "results.json"), os.path.join(args.out, "results.md")]
    start = time.perf_counter()
    rows = harness.run(s, on_task_done=lambda partial: report.write_json(  # survives a kill
        report.document(partial, info, vars(s), warnings, time.perf_counter() - start,
                        harness.TIMELINE), paths[0]))
    wall = time.perf_counter() - start
    doc = report.document(rows, info, vars(s), warnings, wall, harness.TIMELINE)
    report.write_json(doc, paths[0])
    table = report.markdown(rows, s.tolerance, "cuda" if s.device.startswith("cuda") else "rss")
    with open(paths[1], "w") as f:
        f.write("\n".join(report.summary_lines(doc)) + "\n\n" + table + "\n")
    if not args.no_charts:
        try:
            from . import charts
            paths += charts.write(rows, args.out, report.where(doc))
        except ImportError:
            print("no charts: matplotlib is not installed (pip install tensorsmith[bench])")
    print(table)
    print()
    for line in report.summary_lines(doc):
        print(line)
    print(f"wrote {', '.join(paths)} in {wall:.0f} s")
    return doc


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.list:
        for entry in zoo.ZOO.values():
            missing = f"  (needs {', '.join(entry.missing())})" if entry.missing() else ""
            print(f"{entry.name:<10}{entry.description}; sizes {', '.join(entry.sizes)}{missing}")
        return 0
    if args.results and not args.compare:
        print("--results needs --compare", file=sys.stderr)
        return 2
    baseline = report.load(args.compare) if args.compare else None  # a bad path fails first
    doc = report.load(args.results) if args.results else run(args)
    status = 0 if all(r["status"] == OK for r in doc["results"]) else 2
    if baseline is not None:
        status = compare(doc, baseline, args)
    return status


def compare(new_doc: dict, old_doc: dict, args) -> int:
    findings = gate.compare(report.rows_of(new_doc), report.rows_of(old_doc), args.threshold,
                            args.memory_threshold, args.basis, args.seed)
    print(f"\ncompared with {args.compare} ({old_doc.get('created')}):")
    for diff in gate.machine_differences(new_doc, old_doc):
        print(f"warning: the machines differ: {diff}")
    for f in findings:
        print(f.line())
    failed = [f for f in findings if f.failed]
    print(f"{len(failed)} regression(s)" if failed else "no regression")
    return 1 if failed else 0
