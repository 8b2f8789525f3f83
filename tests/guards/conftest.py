import pytest

import tensorsmith


@pytest.fixture
def numerics(monkeypatch):
    """Set `config.check_numerics` for this test: numerics("raise")."""
    def set_mode(mode: str):
        monkeypatch.setattr(tensorsmith.config, "check_numerics", mode)
    return set_mode
