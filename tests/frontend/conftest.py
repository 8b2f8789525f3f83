import pytest
import torch


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles anew: no graph or guard left over from another test."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()
