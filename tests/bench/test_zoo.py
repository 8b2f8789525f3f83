"""Every zoo model at its tiny size: builds from a config with random weights, trains a step and
runs inference under the harness (eager), and its float64 reference agrees with float32 eager."""
from __future__ import annotations

import pytest
import torch

from tensorsmith.bench import harness, zoo
from tensorsmith.bench.models import small
from tensorsmith.bench.results import OK


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_tiny_model_runs_under_the_harness(name):
    settings = harness.Settings(models=[name], backends=["eager"], size="tiny", rounds=2, warmup=1,
                                probes=False, progress=False)
    for row in harness.run(settings):
        assert row.status == OK, f"{row.mode}: {row.error}"
        assert len(row.samples_s) == 2 and row.median_s > 0
        assert row.accuracy["reference"] == "float64 eager"
        # float32 eager against float64: close, but not identical (the reference really is float64)
        assert 0 < row.accuracy["max_rel_error"] < 1e-3, row.accuracy


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_sizes_and_seeded_weights(name):
    entry = zoo.ZOO[name]
    assert "tiny" in entry.sizes and "real" in entry.sizes
    a, b = zoo.build(name, "tiny", "cpu"), zoo.build(name, "tiny", "cpu")
    pa, pb = list(a.model.parameters()), list(b.model.parameters())
    assert all(torch.equal(x, y) for x, y in zip(pa, pb))  # same seed, same weights
    assert sum(p.numel() for p in pa) < 2_000_000 and a.summary and a.batch >= 2


def test_size_resolution():
    entry = zoo.ZOO["nanogpt"]
    assert zoo.resolve_size(entry, "auto", "cuda") == "real"
    assert zoo.resolve_size(entry, "auto", "cpu") == "tiny"
    assert zoo.resolve_size(entry, "default", "cpu") == "default"
    assert zoo.resolve_size(zoo.ZOO["resnet"], "default", "cpu") == "tiny"


def test_small_models_keep_their_names():
    model, (idx, targets) = small.tiny_nanogpt()
    assert model(idx, targets).ndim == 0
    assert small.MLP()(torch.randn(2, 32)).shape == (2, 10)
    assert small.ConvBlock()(torch.randn(1, 8, 8, 8), torch.randn(1, 12)).shape == (1, 16, 8, 8)
