"""TENSORSMITH_EVENTS: compiling and running a model writes compile, cache, fallback, recompile and
run events, one JSON object per line; `tensorsmith report` summarizes them."""
from __future__ import annotations

import json
import os
import threading
import time
import warnings

import pytest
import torch

import tensorsmith
from tensorsmith import events
from tensorsmith.cli import main
from tensorsmith.event_report import prometheus, read_events, summarize


class WithFallback(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x):
        return torch.relu(torch.cumsum(self.fc(x), dim=1)).sum(dim=1)  # cumsum: an ATen fallback


def _read(path):
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines]


def _settled(path, count):
    """The events, once `count` cache events are there: a build's done-callback may run just
    after the waiting caller has gone on."""
    deadline = time.monotonic() + 10
    while sum(e["event"] == "cache" for e in _read(path)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return _read(path)


def test_compile_fallback_recompile_cache_and_run_events(events_file, capsys, monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "symbolic_sizes", False)  # per shape: recompile events
    model = WithFallback()
    compiled = torch.compile(model, backend="tensorsmith")
    # 3: Dynamo makes the batch dynamic; tensorsmith compiles 3 and then 5 when each comes again
    for batch in (2, 3, 5, 3, 5):
        compiled(torch.randn(batch, 6)).sum().backward()
    torch._dynamo.reset()
    torch.compile(model, backend="tensorsmith")(torch.randn(2, 6)).sum().backward()  # same code: cache hits
    log = _settled(events_file, 8)
    assert log[0]["event"] == "session" and log[0]["torch"] == torch.__version__
    assert all({"time", "event", "pid"} <= set(e) for e in log)
    compiles = [e for e in log if e["event"] == "compile"]
    assert {e["kind"] for e in compiles} == {"forward", "backward"}
    assert all(e["nodes"] > 0 and e["kernels"] > 0 and e["compile_s"] > 0 for e in compiles)
    assert len(compiles) == 8  # forward+backward for batch 2, batch 3, batch 5 and the second compile
    fallbacks = [e for e in log if e["event"] == "fallback"]
    assert {e["op"] for e in fallbacks} == {"aten.cumsum.default"} and {e["scope"] for e in fallbacks} == {"op"}
    assert any("torch.cumsum(self.fc(x), dim=1)" in (e["source"] or "") for e in fallbacks)
    recompiles = [e for e in log if e["event"] == "recompile"]
    dynamo = [e for e in recompiles if e["reason"].startswith("Dynamo: ")]  # batch 3: a guard failed
    assert dynamo and all("size mismatch" in e["reason"] for e in dynamo)
    ours = [e for e in recompiles if e["reason"] == "input shapes changed"]  # batch 5: a second shape
    assert {e["kind"] for e in ours} == {"forward", "backward"} and len(ours) == 2
    assert [5, 6] in ours[0]["shapes"]
    assert len(recompiles) == len(dynamo) + len(ours)
    cache = [e for e in log if e["event"] == "cache"]
    assert len(cache) == 8 and all(isinstance(e["hit"], bool) for e in cache)
    assert cache[-1]["hit"] and cache[-2]["hit"]  # the second compile of batch 2 built nothing
    runs = [e for e in log if e["event"] == "run"]
    assert len(runs) == 12 and all(e["seconds"] > 0 for e in runs)  # 6 calls: forward and backward

    capsys.readouterr()
    assert main(["report", str(events_file)]) == 0
    text = capsys.readouterr().out
    assert "compiles: 8 (4 backward, 4 forward)" in text
    assert f"recompiles: {len(recompiles)}\n" in text and "2 x input shapes changed" in text
    assert f"fallbacks: {len(fallbacks)} ATen op(s), 0 whole graph(s)" in text
    assert "aten.cumsum.default x" in text and "slowest graphs" in text
    summary = summarize(read_events(str(events_file))[0])
    assert summary["cache"]["hits"] >= 2 and summary["cache"]["hits"] + summary["cache"]["misses"] == 8
    assert summary["compiles"]["compile_s"] == pytest.approx(sum(e["compile_s"] for e in compiles), abs=1e-5)


def test_whole_graph_fallback_event(events_file, capsys):
    def f(x):
        return torch.as_strided((x * 2).t(), (3, 2), (1, 3)) + 1  # as_strided of a transpose
    torch.compile(f, backend="tensorsmith")(torch.randn(2, 3))
    fallback = [e for e in _read(events_file) if e["event"] == "fallback"]
    assert len(fallback) == 1 and fallback[0]["scope"] == "graph"
    assert "as_strided" in fallback[0]["reason"]
    assert main(["report", str(events_file)]) == 0
    assert "ran whole through ATen: unsupported: as_strided" in capsys.readouterr().out


def test_an_unwritable_event_file_warns_once_and_never_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "events_path", str(tmp_path))  # a directory
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        events.emit("compile", graph="g")
        events.incident("nan", graph="g")
        out = torch.compile(lambda x: x * 2, backend="tensorsmith")(torch.ones(3))
    assert torch.equal(out, torch.full((3,), 2.0))
    assert len([w for w in caught if "cannot write events" in str(w.message)]) == 1


def test_lines_from_many_threads_never_interleave(events_file):
    def write(t):
        for i in range(200):
            events.emit("incident", kind="test", thread=t, i=i, text="x" * 300)
    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log = _read(events_file)
    assert len(log) == 1 + 8 * 200 and log[0]["event"] == "session"


def test_a_forked_child_writes_its_own_session(events_file):
    events.emit("incident", kind="parent")
    pid = os.fork()
    if pid == 0:  # the child: write and leave at once, whatever happens
        try:
            events.emit("incident", kind="child")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    log = _read(events_file)
    assert [e["event"] for e in log] == ["session", "incident", "session", "incident"]
    assert log[2]["pid"] == log[3]["pid"] == pid != log[0]["pid"]


def test_report_counts_incidents_skips_torn_lines_and_exports_prometheus(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    lines = [{"event": "session", "pid": 1, "time": "2026-01-01T00:00:00.000+00:00"},
             {"event": "compile", "pid": 1, "graph": "g000_forward", "kind": "forward", "nodes": 40,
              "kernels": 5, "compile_s": 1.5, "time": "2026-01-01T00:00:01.000+00:00"},
             {"event": "compile", "pid": 1, "graph": "g001_backward", "kind": "backward", "nodes": 80,
              "kernels": 9, "compile_s": 2.5, "time": "2026-01-01T00:00:02.000+00:00"},
             {"event": "cache", "pid": 1, "graph": "g001_backward", "hit": False, "build_s": 4.0},
             {"event": "cache", "pid": 1, "graph": "g000_forward", "hit": True, "build_s": 0.01},
             {"event": "incident", "pid": 1, "kind": "nan", "graph": "g001_backward", "op": "log"},
             {"event": "incident", "pid": 1, "kind": "nan", "graph": "g001_backward", "op": "div"}]
    path.write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"event": "comp')
    prom = tmp_path / "metrics.prom"
    assert main(["report", str(path), "--prometheus", str(prom)]) == 0
    text = capsys.readouterr().out
    assert "compiles: 2 (1 backward, 1 forward); tensorsmith time 4.000 s, C++ builds 4.000 s" in text
    assert "cache: 1 hit(s), 1 miss(es) (50% hit rate)" in text
    assert text.index("g001_backward: 6.500 s") < text.index("g000_forward: 1.510 s")
    assert "incidents: 2\n  2 x nan" in text and "op=log" in text
    assert "1 line(s) were not events" in text
    metrics = prom.read_text()
    assert 'tensorsmith_incidents_total{kind="nan"} 2' in metrics
    assert "tensorsmith_cache_misses_total 1" in metrics
    assert prometheus(summarize([]))  # an empty file still exports zeros
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
