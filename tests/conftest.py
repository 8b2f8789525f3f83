import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import tensorsmith  # noqa: E402


@pytest.fixture(autouse=True)
def _strict():
    """Compiler errors raise in tests instead of silently running the graph through ATen."""
    tensorsmith.config.strict = True
    yield
