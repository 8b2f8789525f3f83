import pytest
import torch
from torch._dynamo.backends.registry import _COMPILER_FNS

from tensorsmith.bench import zoo


@pytest.fixture
def backend():
    """Registers test backends with torch._dynamo.register_backend; removed afterwards."""
    names = []

    def register(fn):
        torch._dynamo.register_backend(fn)
        names.append(fn.__name__)
        return fn.__name__

    yield register
    for name in names:
        _COMPILER_FNS.pop(name, None)


@pytest.fixture
def zoo_entry():
    """Registers a test model in the zoo; removed afterwards."""
    names = []

    def register(name, build):
        zoo.register(zoo.Entry(name, "test model", build))
        names.append(name)
        return name

    yield register
    for name in names:
        zoo.ZOO.pop(name, None)


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests check logic, not speed: one thread keeps them fast on a machine where other
    test processes compete for the cores (two OpenMP threads on a busy machine stall each other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
