"""`tensorsmith bench --compare`: exit status and the message naming model and metric."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic import rows

from tensorsmith.bench import command, gate, report
from tensorsmith.bench.results import FAIL_ACCURACY, FAIL_TO_RUN

MACHINE = {"cpu": "test cpu", "logical_cores": 2, "torch_threads": 2, "device": "cpu",
           "versions": {"torch": "2.13.0"}}


def _write(path, result_rows):
    report.write_json(report.document(result_rows, MACHINE, {}, []), str(path))
    return str(path)


def _compare(tmp_path, old_rows, new_rows, *extra):
    old = _write(tmp_path / "old.json", old_rows)
    new = _write(tmp_path / "new.json", new_rows)
    return command.main(["--compare", old, "--results", new, *extra])


def test_ten_percent_slowdown_fails_and_names_model_and_metric(tmp_path, capsys):
    rng = np.random.default_rng(0)
    status = _compare(tmp_path, rows(rng), rows(rng, slowdown=1.10))
    out = capsys.readouterr().out
    assert status == 1
    assert "REGRESSED: nanogpt train tensorsmith train time: new/old 1.1" in out
    assert "1 regression(s)" in out


def test_noise_alone_passes(tmp_path, capsys):
    rng = np.random.default_rng(1)
    assert _compare(tmp_path, rows(rng), rows(rng)) == 0
    assert "no regression" in capsys.readouterr().out


def test_a_machine_slower_as_a_whole_is_not_a_regression(tmp_path, capsys):
    rng = np.random.default_rng(2)
    old, new = rows(rng), rows(rng, slowdown=1.0, eager_slowdown=1.25)  # everything 25% slower
    assert _compare(tmp_path, old, new) == 0  # eager moved too: compared relative to eager
    assert "eager itself is slower" in capsys.readouterr().out
    assert _compare(tmp_path, old, new, "--basis", "absolute") == 1
    assert "REGRESSED: nanogpt train tensorsmith train time:" in capsys.readouterr().out


def test_a_regression_on_a_slower_machine_is_still_caught(tmp_path, capsys):
    rng = np.random.default_rng(8)
    old, new = rows(rng, n=40), rows(rng, n=40, slowdown=1.15, eager_slowdown=1.25)
    assert _compare(tmp_path, old, new) == 1
    assert "tensorsmith train time relative to eager" in capsys.readouterr().out


def test_accuracy_failure_always_fails(tmp_path, capsys):
    rng = np.random.default_rng(3)
    old = rows(rng)
    new = rows(rng, slowdown=0.5)  # much faster, but wrong
    new[1].fail(FAIL_ACCURACY, "max relative error 0.01 (output 0) over tolerance 0.0001")
    old[1].fail(FAIL_ACCURACY, "it was already wrong")  # a failing baseline does not excuse it
    assert _compare(tmp_path, old, new) == 1
    assert "REGRESSED: nanogpt train tensorsmith accuracy" in capsys.readouterr().out


def test_a_row_that_stopped_running_fails(tmp_path, capsys):
    rng = np.random.default_rng(4)
    new = rows(rng)
    new[1].fail(FAIL_TO_RUN, "RuntimeError: boom")
    assert _compare(tmp_path, rows(rng), new) == 1
    assert "tensorsmith status: fail_to_run (was ok)" in capsys.readouterr().out


def test_memory_growth_is_flagged():
    rng = np.random.default_rng(5)
    findings = gate.compare(rows(rng, peak=800 * 2**20), rows(rng, peak=500 * 2**20))
    failed = [f for f in findings if f.failed]
    assert [(f.model, f.metric) for f in failed] == [("nanogpt", "peak memory")]


def test_different_machines_are_warned_about(tmp_path, capsys):
    rng = np.random.default_rng(6)
    old = _write(tmp_path / "old.json", rows(rng))
    doc = report.document(rows(rng), dict(MACHINE, cpu="another cpu"), {}, [])
    report.write_json(doc, str(tmp_path / "new.json"))
    command.main(["--compare", old, "--results", str(tmp_path / "new.json")])
    assert "the machines differ: cpu" in capsys.readouterr().out


def test_results_needs_compare(tmp_path):
    assert command.main(["--results", str(tmp_path / "x.json")]) == 2


def test_not_a_result_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"hello": 1}')
    with pytest.raises(ValueError, match="not a tensorsmith bench result"):
        report.load(str(tmp_path / "bad.json"))
