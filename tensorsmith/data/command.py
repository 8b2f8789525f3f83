"""`tensorsmith data check TRAIN EVAL [...]` and `tensorsmith data bench [...]`.

Exit status of `check`: 0 every check passed; 1 a threshold was crossed; 2 bad arguments or an
input that could not be read.
"""
from __future__ import annotations

import argparse
import sys

from .thresholds import Thresholds


def _check_parser(commands) -> None:
    defaults = Thresholds()
    p = commands.add_parser(
        "check", help="compare an eval split with a train split",
        description="Exact and near-duplicate samples shared by the splits, label leakage, "
                    "NaN/Inf/constant columns and empty samples. TRAIN and EVAL: .npy, .npz, "
                    ".parquet, .arrow, .txt (one sample per line), .jsonl, or a directory of "
                    ".arrow/.parquet files (datasets' save_to_disk).")
    p.add_argument("train")
    p.add_argument("eval")
    p.add_argument("--key", action="append",
                   help="a column whose content identifies a sample (repeat for several; default: "
                        "the text, token and image columns, else every column but the label)")
    p.add_argument("--label", help="the label column (default: label, labels, target, targets or y)")
    p.add_argument("--kind", action="append", default=[], metavar="COLUMN=KIND",
                   help="override a column's kind: text, tokens, image or numeric")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON (with all indices)")
    p.add_argument("--max-exact", type=float, default=defaults.max_exact,
                   help=f"fraction of eval with an exact copy in train (default {defaults.max_exact})")
    p.add_argument("--max-near", type=float, default=defaults.max_near,
                   help=f"fraction of eval with a near-duplicate in train (default {defaults.max_near})")
    p.add_argument("--near-jaccard", type=float, default=defaults.near_jaccard,
                   help=f"word-bigram Jaccard similarity of a near-duplicate (default {defaults.near_jaccard})")
    p.add_argument("--image-distance", type=int, default=defaults.image_distance,
                   help=f"perceptual-hash bits of a near-duplicate image (default {defaults.image_distance})")
    p.add_argument("--leak-score", type=float, default=defaults.leak_score,
                   help=f"one-feature accuracy or R^2 that means leakage (default {defaults.leak_score})")
    p.add_argument("--max-empty", type=float, default=defaults.max_empty,
                   help=f"fraction of empty samples per split (default {defaults.max_empty})")
    p.add_argument("--allow-nan", action="store_true", help="NaN/Inf values warn instead of failing")
    p.add_argument("--fail-on-constant", action="store_true", help="constant columns fail")
    p.add_argument("--no-progress", action="store_true")


def _run_check(args) -> int:
    from .checker import check

    kinds = {}
    for item in args.kind:
        column, _, kind = item.partition("=")
        kinds[column] = kind
    thresholds = Thresholds(args.max_exact, args.max_near, args.near_jaccard, args.image_distance,
                            args.leak_score, args.max_empty, not args.allow_nan, args.fail_on_constant)
    try:
        report = check(args.train, args.eval, key=args.key, label=args.label, kinds=kinds,
                       thresholds=thresholds, show_progress=not args.no_progress)
    except (OSError, ValueError, TypeError, ImportError) as e:
        print(f"tensorsmith data check: {e}", file=sys.stderr)
        return 2
    print(report)
    if args.json:
        with open(args.json, "w") as f:
            f.write(report.to_json())
    return report.exit_code


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tensorsmith data", description="checks of training data")
    commands = parser.add_subparsers(dest="command", required=True)
    _check_parser(commands)
    commands.add_parser("bench", help="throughput on synthetic short texts (tensorsmith data bench --help)",
                        add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .bench import main as bench_main
        return bench_main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return _run_check(args)
