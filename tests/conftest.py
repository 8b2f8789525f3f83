import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

import tensorsmith  # noqa: E402


@pytest.fixture(autouse=True)
def _strict_and_fresh():
    """Compiler errors raise in tests (no silent whole-graph fallback), and each test compiles anew."""
    tensorsmith.config.strict = True
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
