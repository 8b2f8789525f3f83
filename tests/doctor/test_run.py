"""Planted misconfigurations of a run, each found by the doctor with its message: a `.item()` in
the step (a graph break at its source line), a slow data loader and host work in the step (time
outside compiled graphs), a shape that changes every call, a list that keeps every step's
tensors, a step that slowly gets slower, a refused cache; and no finding on clean models."""
from __future__ import annotations

import itertools
import os
import pathlib
import re
import time
import warnings

import torch

import tensorsmith
from tensorsmith.bench.models.small import MLP, tiny_nanogpt
from tensorsmith.doctor import run_check


def _line_of(marker: str) -> int:
    lines = pathlib.Path(__file__).read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if line.rstrip().endswith(marker))


def _by_check(report) -> dict:
    found = {}
    for finding in report.run:
        found.setdefault(finding.check, []).append(finding)
    return found


def _compiled_mlp():
    return torch.compile(MLP().eval(), backend="tensorsmith")


def test_item_in_the_step_is_a_graph_break_at_its_line():
    model = MLP()

    def forward(x):
        y = model(x)
        if y.sum().item() > 0:  # the break
            y = y * 2
        return y

    compiled = torch.compile(forward, backend="tensorsmith")

    def step():
        with torch.no_grad():
            compiled(torch.randn(8, 32))

    report = run_check(step, steps=6, warmup=2)
    [graph_break] = _by_check(report)["graph_break"]
    assert f"test_run.py:{_line_of('# the break')}" in graph_break.what
    assert "y.sum().item()" in graph_break.what and "Tensor.item()" in graph_break.what
    assert "compiled graph call(s) with eager Python between them" in graph_break.effect
    assert ".item()" in graph_break.fix


def _outside(finding) -> tuple[float, int]:
    measured = re.search(r"([\d.]+) ms \((\d+)%\) of each step outside compiled graphs",
                         finding.effect)
    assert measured, finding.effect
    return float(measured[1]), int(measured[2])


class SlowData(torch.utils.data.Dataset):
    def __len__(self):
        return 10_000

    def __getitem__(self, i):
        time.sleep(0.0025)  # 20 ms for a batch of 8
        return torch.randn(32)


def test_a_slow_data_loader():
    model = _compiled_mlp()
    batches = iter(torch.utils.data.DataLoader(SlowData(), batch_size=8))

    def step():
        with torch.no_grad():
            model(next(batches))

    [finding] = _findings_of_the_model(run_check(step, steps=8, warmup=2))
    assert finding.check == "outside_graphs" and "waits for its data" in finding.what
    ms, share = _outside(finding)
    assert ms >= 15 and share >= 50
    assert re.search(r"[\d.]+ ms of it in DataLoader", finding.effect)
    assert "num_workers" in finding.fix


def test_host_work_in_the_step():
    model = _compiled_mlp()

    def step():
        time.sleep(0.02)
        with torch.no_grad():
            model(torch.randn(8, 32))

    [finding] = _findings_of_the_model(run_check(step, steps=8, warmup=2))
    assert finding.check == "outside_graphs" and "host-bound" in finding.what
    ms, share = _outside(finding)
    assert ms >= 15 and share >= 50
    assert "DataLoader workers" in finding.fix


def test_a_shape_that_changes_every_call(monkeypatch):
    """Where graphs compile per shape (a backend that takes static shapes), the churn is found."""
    monkeypatch.setattr(tensorsmith.config, "symbolic_sizes", False)
    model = _compiled_mlp()
    sizes = itertools.count(8)

    def step():
        with torch.no_grad():
            model(torch.randn(next(sizes), 32))

    found = _by_check(run_check(step))
    [churn] = found["alarm:shape_churn"]
    assert "input shapes change on nearly every call" in churn.what
    assert "pad inputs" in churn.fix
    [recompile] = found["recompile"]
    assert "size mismatch" in recompile.what
    assert "forward (" in recompile.what
    assert f"small.py:{MLP.forward.__code__.co_firstlineno})" in recompile.what


def test_no_churn_where_the_graph_compiled_once_for_all_sizes():
    model = _compiled_mlp()
    sizes = itertools.count(8)

    def step():
        with torch.no_grad():
            model(torch.randn(next(sizes), 32))

    assert "alarm:shape_churn" not in _by_check(run_check(step))


def test_a_list_that_keeps_every_step_s_tensors():
    model = torch.compile(torch.nn.Linear(32, 512), backend="tensorsmith")
    kept = []

    def step():
        kept.append(model(torch.randn(4096, 32)))  # 8 MiB and its graph, each step

    found = _by_check(run_check(step, steps=30))
    [growth] = found["alarm:memory_growth"]
    assert "grew from" in growth.what and "MiB a step" in growth.effect
    assert "keep no tensor from step to step" in growth.fix


def test_an_eager_step_is_reported():
    model = MLP()

    def step():
        with torch.no_grad():
            model(torch.randn(8, 32))

    [finding] = run_check(step, steps=4, warmup=1).run
    assert "no tensorsmith-compiled graph ran" in finding.what


def test_clean_models_give_no_run_findings():
    model = MLP(hidden=1024)  # wide enough that the graphs outweigh the autograd engine's host
    # work, which a narrow MLP's step on a loaded machine does not
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    @torch.compile(backend="tensorsmith")
    def loss_of(x, y):
        return torch.nn.functional.cross_entropy(model(x), y)

    def train_step():
        loss_of(torch.randn(128, 32), torch.randint(0, 10, (128,))).backward()
        optimizer.step()
        optimizer.zero_grad()

    report = tensorsmith.doctor(train_step)
    assert _findings_of_the_model(report) == [], str(report)
    assert "run (20 steps" in str(report)

    gpt, (tokens, targets) = tiny_nanogpt()
    compiled_gpt = torch.compile(gpt.eval(), backend="tensorsmith")
    batch = (32, tokens.shape[1])  # enough work in the graph that a loaded machine's slower host
    # code (Dynamo's guards, the input's creation) stays under the host-bound share

    def infer_step():
        with torch.no_grad():
            compiled_gpt(torch.randint(0, 64, batch))

    report = run_check(infer_step)
    assert _findings_of_the_model(report) == [], str(report)


def _findings_of_the_model(report) -> list:
    """A report's findings, less the step-drift alarm: the other test worker's load on a 2-core
    machine slows a step by 3x mid-run, which is the machine, not the model (the alarms' false-alarm
    rate is measured alone, bench/false_alarms.py; the drift test below checks that it fires)."""
    return [f for f in report.run if f.check != "alarm:step_drift"]


def test_a_step_that_slowly_gets_slower():
    model = torch.compile(MLP(), backend="tensorsmith")
    steps = itertools.count()

    def step():
        time.sleep(0.0005 * next(steps))  # a little more host work every step
        model(torch.randn(8, 32)).sum().backward()

    [drift] = _by_check(run_check(step, steps=30))["alarm:step_drift"]
    assert re.search(r"step time [\d.]+ ms, [\d.]+x", drift.what)  # the monitor's wording
    assert "outside the compiled graphs" in drift.fix


def test_a_refused_cache_makes_graphs_run_through_aten(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    directory.mkdir()
    os.chmod(directory, 0o777)
    monkeypatch.setattr(tensorsmith.config, "cache_dir", str(directory))
    monkeypatch.setattr(tensorsmith.config, "strict", False)
    model = _compiled_mlp()

    def step():
        with torch.no_grad():
            model(torch.randn(8, 32))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tensorsmith.FallbackWarning)
        report = tensorsmith.doctor(step, steps=3)
    [refused] = [f for f in report.environment if f.check == "compile_cache"]
    assert f"chmod 700 {directory}" in refused.fix
    [fallback] = _by_check(report)["fallback"]
    assert "runs whole through ATen: CacheError: refusing cache directory" in fallback.what
    assert "ms per step" in fallback.effect and "compile_cache finding" in fallback.fix
