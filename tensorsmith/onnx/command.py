"""`tensorsmith onnx run MODEL [--input NAME=FILE.npy] [--shape NAME=2x128] [--device cuda]`:
runs an ONNX model compiled by tensorsmith and prints each output (shape, dtype, a few values),
checked against onnxruntime when it is installed (`--no-check` skips that)."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from ..errors import TensorsmithError
from . import compile as compile_onnx
from .inputs import example_inputs, parse_assignments


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="path of the .onnx file")
    parser.add_argument("--input", action="append", metavar="NAME=FILE.npy",
                        help="an input's values (default: random values of its declared type)")
    parser.add_argument("--shape", action="append", metavar="NAME=2x128",
                        help="an input's shape where the model leaves dimensions symbolic")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tensorsmith onnx run", description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--no-check", action="store_true", help="do not compare with onnxruntime")
    parser.add_argument("--save", metavar="DIR", help="save each output as DIR/NAME.npy")
    args = parser.parse_args(argv)
    try:
        program = compile_onnx(args.model, device=args.device)
        inputs = example_inputs(program.graph, parse_assignments(args.input, "--input"),
                                parse_assignments(args.shape, "--shape"))
        outputs = program(**inputs)
    except (TensorsmithError, OSError, ValueError) as e:
        print(f"tensorsmith onnx run: {e}", file=sys.stderr)
        return 2
    expected = None if args.no_check else _onnxruntime_outputs(args.model, inputs)
    for name, value in zip(program.output_names, outputs):
        line = f"{name}: {value.dtype} {list(value.shape)} {np.array2string(value.ravel()[:4], precision=4)}"
        if expected is not None:
            want = expected[name]
            line += f"  max |difference| from onnxruntime {max_difference(value, want):.3g}"
        print(line)
        if args.save:
            import pathlib
            folder = pathlib.Path(args.save)
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{''.join(c if c.isalnum() else '_' for c in name)}.npy", value)
    return 0


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    """The largest absolute difference of two outputs, in float64 (0 for empty ones)."""
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))


def _onnxruntime_outputs(path: str, inputs: dict) -> dict | None:
    try:
        import onnxruntime
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))


if __name__ == "__main__":
    sys.exit(main())
