import pytest
import torch

import tensorsmith


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles anew: no graph or guard left over from another test."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def events_file(tmp_path, monkeypatch):
    """Events go to a fresh file for this test (with one run event per graph call)."""
    path = tmp_path / "events.jsonl"
    monkeypatch.setattr(tensorsmith.config, "events_path", str(path))
    monkeypatch.setattr(tensorsmith.config, "events_runs", True)
    return path
