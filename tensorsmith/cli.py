"""The `tensorsmith` command: `tensorsmith bench [...]`, `tensorsmith zoo [...]`,
`tensorsmith verify FILE.tsir ...`, `tensorsmith data check TRAIN EVAL [...]`,
`tensorsmith report EVENTS.jsonl`, `tensorsmith doctor [SCRIPT [ARGS...]]`,
`tensorsmith onnx run|bench MODEL.onnx [...]`."""
from __future__ import annotations

import argparse
import sys


def _verify(paths) -> int:
    from .errors import TensorsmithError
    from .ir import parse_graph, verify

    status = 0
    for path in paths:
        try:
            with open(path) as f:
                graph = parse_graph(f.read())
            verify(graph)
            print(f"{path}: ok ({len(graph.nodes)} nodes)")
        except (OSError, TensorsmithError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            status = 1
    return status


def _onnx(parser, rest) -> int:
    action = rest[0] if rest else None
    if action == "run":
        from .onnx.command import main as run_main
        return run_main(rest[1:])
    if action == "bench":
        from .bench.onnx_latency import main as bench_main
        return bench_main(rest[1:])
    parser.error("tensorsmith onnx: expected run or bench, e.g. tensorsmith onnx run model.onnx")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tensorsmith")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("bench", help="benchmark backends on the model zoo (tensorsmith bench --help)",
                        add_help=False)
    commands.add_parser("zoo", help="sweep the model zoo: every model trains and infers against "
                        "float64, statuses and speed against Inductor (tensorsmith zoo --help)",
                        add_help=False)
    commands.add_parser("data", help="check training data: duplicates across splits, leakage, "
                        "NaN/Inf (tensorsmith data --help)", add_help=False)
    commands.add_parser("report", help="summarize an event file (TENSORSMITH_EVENTS=path)",
                        add_help=False)
    commands.add_parser("doctor", help="why compiled is not faster: the environment and one run "
                        "of a script (tensorsmith doctor --help)", add_help=False)
    commands.add_parser("onnx", help="run or benchmark an ONNX model (tensorsmith onnx run|bench "
                        "MODEL --help)", add_help=False)
    verify = commands.add_parser("verify", help="parse and verify IR text files (e.g. dumps)")
    verify.add_argument("paths", nargs="+")
    args, rest = parser.parse_known_args(argv)
    if args.command == "bench":
        from .bench.command import main as bench_main
        return bench_main(rest)
    if args.command == "zoo":
        from .bench.sweep import main as zoo_main
        return zoo_main(rest)
    if args.command == "data":
        from .data.command import main as data_main
        return data_main(rest)
    if args.command == "report":
        from .event_report import main as report_main
        return report_main(rest)
    if args.command == "doctor":
        from .doctor.command import main as doctor_main
        return doctor_main(rest)
    if args.command == "onnx":
        return _onnx(parser, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return _verify(args.paths)


if __name__ == "__main__":
    sys.exit(main())
