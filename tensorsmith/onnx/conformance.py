"""The `onnx` package's backend node tests, run through tensorsmith: the pass rate per op family.

    python -m tensorsmith.onnx.conformance [--eager] [--match REGEX] [--out DIR]

Each case is a small model with inputs and expected outputs computed by onnx's own reference. A
case passes when every output has the expected dtype and shape and matches within the case's
tolerances, like onnx's runner checks. It is skipped, with the reason, when the model holds types
torch has no dtype for (strings, float8, 4-bit integers), sequences or optionals; any other
exception is an error. The float32 cases (a float32 tensor among inputs or outputs) carry the
target.
"""
from __future__ import annotations

import argparse
import collections
import functools
import json
import re
import sys
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from ..errors import OnnxModelError, OnnxUnsupportedError

_SKIPPED_TYPES = {onnx.TensorProto.STRING, onnx.TensorProto.FLOAT8E4M3FN,
                  onnx.TensorProto.FLOAT8E4M3FNUZ, onnx.TensorProto.FLOAT8E5M2,
                  onnx.TensorProto.FLOAT8E5M2FNUZ, onnx.TensorProto.UINT4, onnx.TensorProto.INT4}
for _name in ("FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2"):
    if hasattr(onnx.TensorProto, _name):
        _SKIPPED_TYPES.add(getattr(onnx.TensorProto, _name))


# Their expected values come from numpy's random generators, which no other backend reproduces.
_RANDOM_OPS = {"Bernoulli", "Multinomial", "RandomNormal", "RandomNormalLike", "RandomUniform",
               "RandomUniformLike"}
_RANDOM_GRAPHS = {"test_training_dropout", "test_training_dropout_default",
                  "test_training_dropout_mask", "test_training_dropout_default_mask"}


@dataclass
class Outcome:
    case: str
    op: str
    family: str
    float32: bool
    status: str  # "pass", "fail", "error" or "skip"
    detail: str = ""
    seconds: float = 0.0
    eager: bool = False  # compiled mode, but a run-time value decided a shape: ran eagerly


def node_cases(match: str | None = None) -> list:
    """onnx's node test cases (generated in memory by the installed onnx), filtered by regex."""
    from onnx.backend.test.loader import load_model_tests
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    pattern = re.compile(match) if match else None
    return [c for c in cases if pattern is None or pattern.search(c.name)]


def run_case(case, compiled: bool = True, device: str = "cpu") -> Outcome:
    from .backend import TensorsmithBackend
    op = op_of(case)
    outcome = Outcome(case.name, op, family_of(op), is_float32(case.model), "pass")
    skip = skip_reason(case.model)
    if skip:
        outcome.status, outcome.detail = "skip", skip
        return outcome
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            rep = TensorsmithBackend.prepare(case.model, device, compiled=compiled)
            for inputs, expected in case.data_sets:
                inputs, expected = _arrays(inputs), _arrays(expected)
                got = rep.run(inputs)
                problem = compare(expected, got, case.rtol, case.atol)
                if problem:
                    outcome.status, outcome.detail = "fail", problem
                    break
            outcome.eager = compiled and bool(rep.program.eager_reasons)
    except (OnnxUnsupportedError, OnnxModelError) as e:
        outcome.status, outcome.detail = "error", f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - a conformance run reports every failure and goes on
        outcome.status, outcome.detail = "error", f"{type(e).__name__}: {str(e)[:300]}"
    outcome.seconds = time.perf_counter() - start
    return outcome


def _arrays(values) -> list:
    """Values as numpy arrays: some cases hold TensorProtos (those of types numpy lacks)."""
    return [onnx.numpy_helper.to_array(v) if isinstance(v, onnx.TensorProto) else v
            for v in values]


def compare(expected, got, rtol: float, atol: float) -> str:
    """Why `got` does not match `expected` (empty when it does)."""
    if len(got) != len(expected):
        return f"{len(got)} outputs, expected {len(expected)}"
    for i, (want, have) in enumerate(zip(expected, got)):
        want, have = np.asarray(want), np.asarray(have)
        if want.dtype != have.dtype:
            return f"output {i}: dtype {have.dtype}, expected {want.dtype}"
        if want.shape != have.shape:
            return f"output {i}: shape {have.shape}, expected {want.shape}"
        if want.dtype.name == "bfloat16":
            want, have = want.astype(np.float32), have.astype(np.float32)
        if want.dtype.kind in "fc":
            if not np.allclose(have, want, rtol=rtol, atol=atol, equal_nan=True):
                worst = np.nanmax(np.abs(have.astype(np.float64) - want.astype(np.float64)))
                return f"output {i}: max abs difference {worst:.3g} (rtol {rtol}, atol {atol})"
        elif not np.array_equal(have, want):
            return f"output {i}: values differ"
    return ""


def skip_reason(model: onnx.ModelProto) -> str:
    """Why a case cannot pass on any backend but onnx's own (empty if it can)."""
    random = {n.op_type for n in model.graph.node} & _RANDOM_OPS
    if random or model.graph.name in _RANDOM_GRAPHS:
        return f"random values drawn by numpy ({', '.join(sorted(random)) or 'Dropout'})"
    for value in list(model.graph.input) + list(model.graph.output):
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            return f"{kind} values"
        if value.type.tensor_type.elem_type in _SKIPPED_TYPES:
            return f"{onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)} tensors"
    return ""


def is_float32(model: onnx.ModelProto) -> bool:
    values = list(model.graph.input) + list(model.graph.output)
    return any(v.type.WhichOneof("value") == "tensor_type"
               and v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in values)


@functools.cache
def _op_names() -> dict[str, str]:
    """Lower-case ONNX op names -> op names, longest first."""
    names = {s.name.lower(): s.name for s in onnx.defs.get_all_schemas_with_history()}
    return dict(sorted(names.items(), key=lambda kv: -len(kv[0])))


def op_of(case) -> str:
    """The op a case tests: the longest ONNX op name its test name starts with."""
    name = case.name.removeprefix("test_").replace("_", "")
    for lower, op in _op_names().items():
        if name.startswith(lower):
            return op
    nodes = [n.op_type for n in case.model.graph.node]
    return nodes[-1] if nodes else "?"


def family_of(op: str) -> str:
    """The module of our op table implementing `op` ("reference" if onnx's runs it)."""
    from .ops.registry import OPS
    opdef = OPS.get(("", op))
    return opdef.fn.__module__.rsplit(".", 1)[-1] if opdef else "reference"


def summarize(outcomes: list[Outcome]) -> str:
    lines = []
    for title, chosen in (("float32 cases", [o for o in outcomes if o.float32]),
                          ("all cases", outcomes)):
        counts = collections.Counter(o.status for o in chosen)
        ran = len(chosen)
        runnable = ran - counts["skip"]
        lines.append(f"{title}: {counts['pass']}/{ran} pass ({100 * counts['pass'] / max(ran, 1):.1f}%; "
                     f"{100 * counts['pass'] / max(runnable, 1):.1f}% of the {runnable} not skipped), "
                     f"{counts['fail']} fail, {counts['error']} error, {counts['skip']} skipped")
    eager = sum(o.eager for o in outcomes if o.status == "pass")
    if eager:
        lines.append(f"of the passing cases, {eager} ran eagerly: a run-time input decided a shape")
    lines.append("")
    lines.append("skipped, by op and reason:")
    skips = collections.Counter((o.op, o.detail) for o in outcomes if o.status == "skip")
    for (op, reason), count in sorted(skips.items()):
        lines.append(f"  {op}: {reason} ({count})")
    lines.append("")
    lines.append(f"{'family':<12} {'pass':>5} {'fail':>5} {'error':>5} {'skip':>5}")
    by_family = collections.defaultdict(collections.Counter)
    for o in outcomes:
        by_family[o.family][o.status] += 1
    for family, c in sorted(by_family.items()):
        lines.append(f"{family:<12} {c['pass']:>5} {c['fail']:>5} {c['error']:>5} {c['skip']:>5}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tensorsmith.onnx.conformance",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--eager", action="store_true", help="the interpreter only, no compiling")
    parser.add_argument("--match", help="only cases whose name matches this regex")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", help="write outcomes.json and summary.md here")
    parser.add_argument("--show", default="fail,error", help="statuses to list case by case")
    args = parser.parse_args(argv)
    outcomes = []
    for case in node_cases(args.match):
        outcome = run_case(case, compiled=not args.eager, device=args.device)
        outcomes.append(outcome)
        if outcome.status in args.show.split(","):
            print(f"{outcome.status:<5} {outcome.case}: {outcome.detail[:200]}", flush=True)
    summary = summarize(outcomes)
    print(summary)
    if args.out:
        import pathlib
        out = pathlib.Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "outcomes.json").write_text(json.dumps([asdict(o) for o in outcomes], indent=1))
        (out / "summary.md").write_text(summary + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
