import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """These tests check what the doctor finds, not speed: one thread keeps step times steady on a
    machine where other processes compete for the cores (two OpenMP threads then stall each other,
    which the doctor would rightly report)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
