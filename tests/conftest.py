import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))

import tensorsmith  # noqa: E402
from tensorsmith.bench.torchvision_stubs import torchvision_without_ops  # noqa: E402

torchvision_without_ops()  # before anything imports transformers, diffusers or timm


@pytest.fixture(autouse=True)
def _strict():
    """Compiler errors raise in tests instead of silently running the graph through ATen."""
    tensorsmith.config.strict = True
    yield


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    """Each test compiles anew: no graph or guard left over from another test (and settings read at
    compile time, such as the numeric checks, take effect). A reset costs microseconds."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.fixture
def interpreted_triton(monkeypatch):
    """Graphs go through the Triton backend, its kernels run on the CPU by Triton's interpreter, with
    fresh report records and fresh (but logged-reproducible) random inputs."""
    from tensorsmith import records

    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", "triton")
    records.reset()
    torch.manual_seed(torch.seed() % 2**31)
    yield


@pytest.fixture(params=["cpp", "triton", "interpreter"])
def executor(request, monkeypatch):
    """The backend under test, one test per backend; Triton's kernels run through its interpreter
    on the CPU. Fresh report records."""
    from tensorsmith import records

    if request.param == "triton":
        pytest.importorskip("triton")
        monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", request.param)
    records.reset()
    return request.param
