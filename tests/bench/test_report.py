"""Reports: the JSON keeps machine info and raw samples, the Markdown table shows every row with
its status, and the PNG charts are written."""
from __future__ import annotations

import json

import numpy as np
from synthetic import rows

from tensorsmith.bench import charts, machine, report
from tensorsmith.bench.results import OOM, UNKNOWN_BACKEND, Row


def _rows():
    rng = np.random.default_rng(0)
    result = rows(rng) + rows(rng, mode="infer")
    result[1].speedup = {"value": 0.66, "low": 0.61, "high": 0.70}
    result[1].compile = {"cold_s": 12.5, "warm_s": 3.25}
    result[1].graphs, result[1].graph_breaks, result[1].recompiles = 2, 1, 0
    result[1].fallback_ops, result[1].fallback_graphs = 3, 0
    result[3].speedup = {"value": 1.5, "low": 1.25, "high": 1.75}
    oom = Row("unet", "train", "inductor")
    oom.fail(OOM, "OutOfMemoryError: CUDA out of memory")
    unknown = Row("unet", "train", "nope")
    unknown.fail(UNKNOWN_BACKEND, "torch.compile has no backend 'nope'")
    return result + [oom, unknown]


def test_json_has_machine_info_and_raw_samples(tmp_path):
    doc = report.document(_rows(), machine.info("cpu"), {"models": ["nanogpt"]}, ["a warning"], 12.0)
    report.write_json(doc, str(tmp_path / "r.json"))
    raw = json.loads((tmp_path / "r.json").read_text())
    m = raw["machine"]
    assert m["logical_cores"] >= 1 and m["cpu"] and m["versions"]["torch"] == __import__("torch").__version__
    assert m["torch_threads"] >= 1 and "platform" in m and "tensorsmith_commit" in m
    assert raw["warnings"] == ["a warning"] and raw["wall_s"] == 12.0
    assert len(raw["results"][1]["samples_s"]) == 30
    back = report.rows_of(report.load(str(tmp_path / "r.json")))
    assert back[1].samples_s == _rows()[1].samples_s and back[4].status == OOM


def test_markdown_table_rows_and_statuses():
    table = report.markdown(_rows(), tolerance=1e-4, memory_kind="rss")
    lines = table.splitlines()
    assert lines[0].startswith("| model | mode | backend | status | median ms | speedup vs eager")
    assert "| nanogpt | train | tensorsmith | ok |" in table
    assert "0.66 [0.61, 0.70]" in table and "12.5 / 3.2" in table and "2 / 1 / 0" in table
    assert "3 ops, 0 graphs" in table
    assert "| unet | train | inductor | oom |" in table
    assert "- unet train nope: **unknown_backend**: torch.compile has no backend 'nope'" in table
    assert "fails above 0.0001" in table and "peak RSS" in table
    assert sum(1 for line in lines if line.startswith("| ")) == 1 + len(_rows())


def test_png_charts_are_written(tmp_path):
    paths = charts.write(_rows(), str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in paths] == ["speedup.png", "compile.png"]
    for path in paths:
        data = open(path, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_warnings_name_misconfigurations(monkeypatch):
    import torch._dynamo

    monkeypatch.setenv("CUDA_LAUNCH_BLOCKING", "1")
    with torch._dynamo.config.patch(suppress_errors=True):
        found = "\n".join(machine.warnings("cpu"))
    assert not torch._dynamo.config.suppress_errors
    assert "suppress_errors" in found and "CUDA_LAUNCH_BLOCKING" in found
