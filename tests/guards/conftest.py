import pytest
import torch

import tensorsmith


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles anew (the numeric checks are fixed when a graph compiles)."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def numerics(monkeypatch):
    """Set `config.check_numerics` for this test: numerics("raise")."""
    def set_mode(mode: str):
        monkeypatch.setattr(tensorsmith.config, "check_numerics", mode)
    return set_mode
