"""The report's text (environment first, then the run, errors before notes, "no findings" when
clean) and the reading of Dynamo's graph-break log lines."""
from __future__ import annotations

import logging

from tensorsmith.doctor.dynamo import _parse
from tensorsmith.doctor.findings import Finding, Report


def test_a_clean_report_says_no_findings():
    text = str(Report(context=["torch 2.x"], run=[], run_summary="20 steps"))
    assert text.splitlines() == ["tensorsmith doctor", "  torch 2.x", "environment: no findings",
                                 "run (20 steps): no findings", "no findings"]


def test_findings_are_listed_environment_first_errors_first():
    note = Finding("recompile", "f recompiled 1x", "0.1 s", "pad", "note")
    error = Finding("compile_cache", "refused", "ATen", "chmod 700 d", "error")
    report = Report(environment=[Finding("threads", "8 on 2", "3.0x slower", "set 2")],
                    run=[note, error])
    lines = str(report).splitlines()
    assert lines[1] == "environment: 1 finding" and lines[5] == "run: 2 findings"
    assert lines[6] == "  [error] compile_cache: refused" and lines[9].startswith("  [note]")
    assert "      effect: 3.0x slower" in lines and "      fix:    chmod 700 d" in lines
    assert len(report.findings) == 3


def _record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord("torch._dynamo", logging.DEBUG, __file__, 1, message, None,
                             (type(exc), exc, None) if exc else None)


def test_graph_break_log_lines_give_the_line_the_reason_and_the_hint():
    found = _parse(_record(
        "Graph break in user code at /a/train.py:12\nGraph Break Reason: Encountered graph break "
        "when attempting to trace CALL: a function call, e.g. f(x, y):\n\nUnsupported Tensor.item()"
        " call\n  Explanation: ...\n  Hint: Set `capture_scalar_outputs = True`\n\nUser code "
        "traceback:\n  File \"/a/train.py\", line 12, in step\n"))
    assert (found.file, found.line) == ("/a/train.py", 12)
    assert found.reason == "Unsupported Tensor.item() call"
    assert found.hint == "Set `capture_scalar_outputs = True`"


def test_a_skipped_frame_names_the_innermost_user_line():
    found = _parse(_record(
        "Graph break: torch.compile cannot properly resume from this graph break, which results "
        "in a skip.\nThe graph break occurred in the following user code:\n  File \"/a/m.py\", "
        "line 3, in outer\n  File \"/a/m.py\", line 9, in inner\n", RuntimeError("no resume")))
    assert (found.file, found.line, found.reason) == ("/a/m.py", 9, "no resume")
    assert _parse(_record("nothing to place")) is None
