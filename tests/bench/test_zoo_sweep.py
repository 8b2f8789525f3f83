"""`tensorsmith zoo`: statuses, speed ratios and geometric means from harness rows, bf16 autocast
rows, and the CI subset of the sweep (one tiny model of each family) with nothing failing."""
from __future__ import annotations

import json

import pytest
import torch

from tensorsmith.bench import harness, sweep, zoo
from tensorsmith.bench.results import FAIL_ACCURACY, FAIL_TO_RUN, OK, Row


def _row(backend, median, status=OK, model="llama", mode="train", **kw):
    row = Row(model, mode, backend, status=status, median_s=median, **kw)
    row.accuracy = {"max_rel_error": kw.pop("err", 1e-6)}
    return row


def test_statuses_ratios_and_geomeans():
    rows = [_row("eager", 4.0), _row("inductor", 2.0), _row("tensorsmith", 1.0, graphs=2, graph_breaks=1),
            _row("eager", 3.0, model="bert"), _row("inductor", 1.0, model="bert"),
            _row("tensorsmith", 2.0, model="bert", fallback_ops=2, fallbacks=["aten.cumsum x2 at m.py:3: why"]),
            _row("eager", 1.0, model="t5"), _row("tensorsmith", None, model="t5", status=FAIL_ACCURACY,
                                                   error="max relative error 0.3")]
    by_model = {z.model: z for z in sweep.zoo_rows(rows)}
    llama, bert, t5 = by_model["llama"], by_model["bert"], by_model["t5"]
    assert (llama.status, llama.vs_eager, llama.vs_inductor) == ("ok", 4.0, 2.0)
    assert (bert.status, bert.vs_inductor) == ("partial", 0.5) and "cumsum" in bert.fallbacks[0]
    assert t5.status == "fail" and "0.3" in t5.error and t5.vs_eager is None
    lines = sweep.summary(list(by_model.values()))
    assert lines[0] == "3 rows: 1 ok, 1 partial, 1 fail"
    assert "train fp32: 1.00x Inductor (geomean of 2), 2.45x eager (geomean of 2)" in lines
    assert any(line.startswith("  bert train fp32: 0.50x") for line in lines)
    assert any(line.startswith("fail: t5 train fp32") for line in lines)
    table = sweep.markdown(list(by_model.values()))
    assert "| llama | decoder | train | fp32 | ok |" in table


def test_eager_failing_is_a_fail_not_an_ok():
    rows = [_row("eager", None, status=FAIL_TO_RUN, error="boom"), _row("tensorsmith", 1.0)]
    (z,) = sweep.zoo_rows(rows)
    assert z.status == "fail" and "eager itself" in z.error


def test_bf16_rows_run_under_autocast_and_compare_against_float64(zoo_entry):
    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(16, 8)

        def forward(self, x):
            y = self.lin(x)
            seen.append(y.dtype)
            return y.float().pow(2).mean()

    def build(size, device):
        from tensorsmith.bench.workload import Workload
        x = torch.randn(4, 16, generator=torch.Generator().manual_seed(3))
        return Workload(Probe(), {"x": x}, {"x": x}, "probe", batch=4)

    zoo_entry("bf16_probe", build)
    settings = harness.Settings(models=["bf16_probe"], backends=["eager"], modes=["train"], size="tiny",
                                rounds=1, warmup=0, probes=False, progress=False, precision="bf16",
                                tolerance=sweep.BF16_TOLERANCE)
    (row,) = harness.run(settings)
    assert row.status == OK and row.precision == "bf16"
    assert torch.bfloat16 in seen and torch.float64 in seen  # eager in bf16, the reference in float64
    assert 1e-5 < row.accuracy["max_rel_error"] < 0.1  # bf16 rounding, measured against float64


@pytest.mark.parametrize("name", zoo.subset())
def test_ci_subset_trains_and_infers_without_a_fail(name, tmp_path, monkeypatch):
    """Each family's model at its tiny size, eager vs tensorsmith on the CPU: ok or partial."""
    monkeypatch.setattr("tensorsmith.config.strict", False)  # as users run it: fallbacks, not raises
    code = sweep.main(["--models", name, "--device", "cpu", "--backends", "eager,tensorsmith",
                       "--rounds", "1", "--warmup", "0", "--no-progress", "--out", str(tmp_path)])
    doc = json.loads((tmp_path / "zoo.json").read_text())
    statuses = {(z["mode"], z["precision"]): (z["status"], z["error"], z["ts_error"]) for z in doc["zoo"]}
    assert set(statuses) == {("train", "fp32"), ("infer", "fp32")}
    for key, (status, error, err) in statuses.items():
        assert status in ("ok", "partial"), (key, error)
        assert err is not None and err < 1e-3, (key, err)
    assert code == 0
