"""ONNX inference latency: tensorsmith against onnxruntime, one model or the suite.

    tensorsmith onnx bench MODEL.onnx [--shape NAME=1x128] [--device cuda]
    python -m tensorsmith.bench.onnx_latency --suite [--size real|tiny] [--device cpu|cuda]

Per model: onnxruntime's session creation and tensorsmith's first call (compile included, cold in
this process; the first two calls where inputs have symbolic dimensions, which compile a shape on
its second call), then both timed in interleaved rounds (medians; onnxruntime's threads do not spin
between runs), their outputs compared, and the ratio of tensorsmith's median to onnxruntime's. The suite exports ResNet-50, BERT-base and GPT-2
(bench/onnx_exports) first.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

from .timing import Clock, interleave


def compare_model(path: str, inputs: dict | None = None, shapes: dict | None = None,
                  device: str = "cpu", rounds: int = 20) -> dict:
    """One row: cold times, median latencies, their ratio and the largest output difference."""
    import onnxruntime

    from .. import onnx as ts_onnx
    from ..onnx.command import max_difference
    from ..onnx.dtypes import to_torch
    from ..onnx.inputs import example_inputs

    start = time.perf_counter()
    program = ts_onnx.compile(path, device=device)
    inputs = inputs or example_inputs(program.graph, shapes=shapes)
    ours_out = program(**inputs)
    if program.symbolic:  # a shape compiles on its second call: cold is until it has
        ours_out = program(**inputs)
    ours_cold = time.perf_counter() - start

    start = time.perf_counter()
    providers = ["CUDAExecutionProvider"] if device.startswith("cuda") else ["CPUExecutionProvider"]
    options = onnxruntime.SessionOptions()
    # Its idle threads would otherwise spin after each run, taking cores from the next timed call.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(path, options, providers=providers)
    theirs_out = session.run(None, inputs)
    theirs_cold = time.perf_counter() - start

    on_device = [to_torch(inputs[n], device) for n in program.input_names]
    clock = Clock(device)
    samples = interleave({"tensorsmith": lambda: program.run(on_device),
                          "onnxruntime": lambda: session.run(None, inputs)}, rounds, clock)
    ours, theirs = (statistics.median(samples[k]) for k in ("tensorsmith", "onnxruntime"))
    difference = max(map(max_difference, ours_out, theirs_out))
    return {"model": path.rsplit("/", 1)[-1], "device": device, "tensorsmith_ms": ours * 1e3,
            "onnxruntime_ms": theirs * 1e3, "ratio": ours / theirs, "tensorsmith_cold_s": ours_cold,
            "onnxruntime_cold_s": theirs_cold, "max_difference": difference,
            "eager_shapes": len(program.eager_reasons)}


def format_table(rows: list[dict]) -> str:
    lines = [f"{'model':<24} {'device':<6} {'ours ms':>9} {'ORT ms':>9} {'ratio':>6} "
             f"{'ours cold s':>11} {'ORT cold s':>10} {'max diff':>9}"]
    for r in rows:
        lines.append(f"{r['model']:<24} {r['device']:<6} {r['tensorsmith_ms']:>9.2f} "
                     f"{r['onnxruntime_ms']:>9.2f} {r['ratio']:>6.2f} {r['tensorsmith_cold_s']:>11.1f} "
                     f"{r['onnxruntime_cold_s']:>10.1f} {r['max_difference']:>9.2g}"
                     + ("  (ran eagerly)" if r["eager_shapes"] else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tensorsmith onnx bench", description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help="path of the .onnx file")
    parser.add_argument("--suite", action="store_true", help="ResNet-50, BERT-base and GPT-2")
    parser.add_argument("--size", default="real", choices=["real", "tiny"])
    parser.add_argument("--folder", help="where the suite's exported files go (default: a temp dir)")
    parser.add_argument("--shape", action="append", metavar="NAME=1x128")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    if not args.suite and not args.model:
        parser.error("give a model file, or --suite")
    from ..onnx.inputs import parse_assignments
    rows = []
    if args.model:
        rows.append(compare_model(args.model, shapes=parse_assignments(args.shape, "--shape"),
                                  device=args.device, rounds=args.rounds))
    if args.suite:
        from .onnx_exports import MODELS, export
        folder = args.folder or tempfile.mkdtemp(prefix="tensorsmith-onnx-")
        for name in MODELS:
            exported = export(name, args.size, folder)
            rows.append(compare_model(exported.path, exported.inputs, device=args.device,
                                      rounds=args.rounds))
            print(format_table(rows[-1:]).splitlines()[1], flush=True)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
