"""The harness on tiny models: statuses for bad input (unknown model or backend, a backend that
crashes, one that is wrong, out of memory), counters, and one end-to-end run with probes."""
from __future__ import annotations

import pytest
import torch

from tensorsmith.bench import harness
from tensorsmith.bench.results import FAIL_ACCURACY, FAIL_TO_RUN, OK, OOM, UNKNOWN_BACKEND, UNKNOWN_MODEL
from tensorsmith.bench.workload import Workload


def _run(models, backends, modes=("infer",), **kw):
    kw.setdefault("probes", False)
    settings = harness.Settings(models=list(models), backends=list(backends), modes=list(modes),
                                size="tiny", rounds=kw.pop("rounds", 3), warmup=1, progress=False,
                                **kw)
    return {(r.model, r.mode, r.backend): r for r in harness.run(settings)}


@pytest.fixture
def plain(backend):
    """A backend that runs Dynamo's graph as it is: compiles in no time."""
    def plain_backend(gm, example_inputs):
        return gm.forward
    return backend(plain_backend)


def test_unknown_model_and_backend_become_rows():
    rows = _run(["nanogpt", "no_such_model"], ["eager", "no_such_backend", "aot_eager"])
    assert rows["no_such_model", "infer", "eager"].status == UNKNOWN_MODEL
    assert "no_such_model" in rows["no_such_model", "infer", "eager"].error
    bad = rows["nanogpt", "infer", "no_such_backend"]
    assert bad.status == UNKNOWN_BACKEND and "no_such_backend" in bad.error
    for b in ("eager", "aot_eager"):  # the rest of the run went on
        row = rows["nanogpt", "infer", b]
        assert row.status == OK and len(row.samples_s) == 3 and row.median_s > 0
    assert rows["nanogpt", "infer", "aot_eager"].speedup["value"] > 0


def test_a_backend_that_crashes_is_a_row_not_an_abort(backend, plain):
    def crashing_backend(gm, example_inputs):
        raise RuntimeError("this backend always crashes")

    name = backend(crashing_backend)
    rows = _run(["nanogpt"], ["eager", name, plain])
    row = rows["nanogpt", "infer", name]
    assert row.status == FAIL_TO_RUN and "always crashes" in row.error
    assert row.median_s is None and not row.samples_s
    assert rows["nanogpt", "infer", plain].status == OK
    assert rows["nanogpt", "infer", "eager"].status == OK


def test_a_backend_that_crashes_later_is_caught_while_timing(backend):
    calls = {"n": 0}

    def flaky_backend(gm, example_inputs):
        def run(*args):
            calls["n"] += 1
            if calls["n"] > 2:
                raise RuntimeError("crashed on a later call")
            return gm(*args)
        return run

    name = backend(flaky_backend)
    row = _run(["nanogpt"], ["eager", name], rounds=5)["nanogpt", "infer", name]
    assert row.status == FAIL_TO_RUN and "later call" in row.error


def test_a_backend_out_of_memory(backend):
    def oom_backend(gm, example_inputs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB (simulated)")

    name = backend(oom_backend)
    rows = _run(["nanogpt"], ["eager", name])
    assert rows["nanogpt", "infer", name].status == OOM
    assert rows["nanogpt", "infer", "eager"].status == OK


class _Hungry(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x):
        if x.shape[0] > 1:
            raise torch.OutOfMemoryError("CPU out of memory (simulated)")
        return self.lin(x)


def test_a_model_out_of_memory(zoo_entry, plain):
    x = torch.randn(4, 8)
    name = zoo_entry("hungry", lambda size, device: Workload(_Hungry(), {"x": x}, {"x": x}, "hungry"))
    rows = _run([name, "nanogpt"], ["eager", plain])
    assert {rows[name, "infer", b].status for b in ("eager", plain)} == {OOM}
    assert rows["nanogpt", "infer", "eager"].status == OK  # the next model still ran


def test_a_wrong_backend_fails_accuracy(backend, plain):
    def off_by_a_little(gm, example_inputs):
        def run(*args):
            return [o * 1.001 if isinstance(o, torch.Tensor) and o.is_floating_point() else o
                    for o in gm(*args)]
        return run

    name = backend(off_by_a_little)
    rows = _run(["nanogpt"], ["eager", name, plain], modes=("train", "infer"), rounds=2)
    for mode in ("train", "infer"):
        row = rows["nanogpt", mode, name]
        assert row.status == FAIL_ACCURACY, row
        assert 5e-4 < row.accuracy["max_rel_error"] < 5e-3 and not row.accuracy["passed"]
        assert "over tolerance 0.0001" in row.error and len(row.samples_s) == 2  # still timed
        assert rows["nanogpt", mode, plain].status == OK
        assert rows["nanogpt", mode, plain].accuracy["max_rel_error"] < 1e-4


class _Recompiling(torch.nn.Module):
    """Reads a Python int that changes every call: Dynamo guards on it and compiles again."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x) * self.calls


def test_recompiles_and_graph_breaks_are_counted(zoo_entry, plain):
    x = torch.randn(4, 8)
    name = zoo_entry("recompiling", lambda size, device: Workload(_Recompiling(), {"x": x},
                                                                  {"x": x}, "recompiling"))
    row = _run([name], ["eager", plain], rounds=3, tolerance=1e9)[name, "infer", plain]
    assert row.graphs == 1 and row.graph_breaks == 0
    assert row.recompiles >= 3  # one warm-up call and three timed ones, each a new value


class _Breaking(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)

    def forward(self, x):
        x = self.a(x)
        torch._dynamo.graph_break()
        return self.b(x)


def test_graph_breaks_are_counted(zoo_entry, plain):
    x = torch.randn(4, 8)
    name = zoo_entry("breaking", lambda size, device: Workload(_Breaking(), {"x": x}, {"x": x}, "b"))
    row = _run([name], ["eager", plain])[name, "infer", plain]
    assert row.status == OK and row.graph_breaks == 1 and row.graphs == 2 and row.recompiles == 0


def test_tensorsmith_end_to_end_with_probes():
    """eager vs tensorsmith on tiny nanoGPT, training: every measurement is filled in."""
    rows = _run(["nanogpt"], ["eager", "tensorsmith"], modes=("train",), probes=True, rounds=2,
                probe_steps=2)
    eager, ts = rows["nanogpt", "train", "eager"], rows["nanogpt", "train", "tensorsmith"]
    for row in (eager, ts):
        assert row.status == OK, row.error
        assert len(row.samples_s) == 2 and all(t > 0 for t in row.samples_s)
        assert row.memory["kind"] == "rss" and row.memory["peak_bytes"] > 50 * 2**20
        assert row.accuracy["passed"] and row.accuracy["tensors"] > 10  # loss and every gradient
        assert row.accuracy["reference"] == "float64 eager"
        assert not row.notes, row.notes
    assert 0 < ts.accuracy["max_rel_error"] < 1e-4
    assert ts.compile["cold_s"] > 0 and ts.compile["warm_s"] > 0
    assert ts.graphs >= 1 and ts.graph_breaks == 0 and ts.recompiles == 0
    assert ts.fallback_ops is not None and ts.fallback_graphs == 0
    assert ts.speedup["value"] > 0 and ts.summary.startswith("nanoGPT 2x32")


def test_tensorsmith_compiles_first_so_nothing_carries_over_to_it(plain, monkeypatch):
    """Dynamo's per-code state (sizes made dynamic, recompile counts) carries from one backend's
    first call to the next in a process: tensorsmith's first call comes right after eager's,
    before the backends it is compared with, whatever order they are given in."""
    order = []

    def compiled(model, name):
        order.append(name)
        return model
    monkeypatch.setattr(harness.backends, "compiled", compiled)
    rows = _run(["nanogpt"], [plain, "tensorsmith", "eager"], rounds=1)
    assert order == ["eager", "tensorsmith", plain]
    assert all(row.status == OK for row in rows.values())
