import pytest

import tensorsmith


@pytest.fixture
def events_file(tmp_path, monkeypatch):
    """Events go to a fresh file for this test (with one run event per graph call)."""
    path = tmp_path / "events.jsonl"
    monkeypatch.setattr(tensorsmith.config, "events_path", str(path))
    monkeypatch.setattr(tensorsmith.config, "events_runs", True)
    return path
