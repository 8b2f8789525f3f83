"""onnx's backend node tests through tensorsmith's backend class: every case eagerly (the op table
against onnx's reference), and one float32 case per op compiled (traced and built by tensorsmith).
A case passes or is listed in onnx_conformance_known.py with its reason; a listed case that
passes is reported too, so the list stays true. `make onnx-conformance` compiles every case."""
from __future__ import annotations

import pytest

from tensorsmith.onnx.conformance import is_float32, node_cases, op_of, run_case

from onnx_conformance_known import COMPILED_NOT_PASSING, NOT_PASSING


def _first_float32_case_per_op(cases) -> list:
    first = {}
    for case in cases:
        if is_float32(case.model):
            first.setdefault(op_of(case), case)
    return sorted(first.values(), key=lambda c: c.name)


CASES = node_cases()
COMPILED = _first_float32_case_per_op(CASES)


def _check(case, compiled: bool):
    outcome = run_case(case, compiled=compiled)
    known = NOT_PASSING.get(case.name)
    if compiled and known is None:
        known = COMPILED_NOT_PASSING.get(case.name)
    if outcome.status == "skip":
        return
    if known is None:
        assert outcome.status == "pass", f"{outcome.status}: {outcome.detail}"
    else:
        assert outcome.status != "pass", f"{case.name} passes now: unlist it ({known})"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_eagerly(case):
    _check(case, compiled=False)


@pytest.mark.parametrize("case", COMPILED, ids=lambda c: c.name)
def test_compiled(case):
    _check(case, compiled=True)
