"""The launcher the distributed tests run on: a failing rank fails the test with its traceback."""
from __future__ import annotations

import pytest
from dist_launch import run_ranks


def _fails_on_rank_1(rank, world):
    if rank == 1:
        raise ValueError("rank 1 gives up")
    return rank


def test_a_failing_rank_is_reported_with_its_traceback():
    with pytest.raises(AssertionError, match=r"rank 1 raised:(.|\n)*ValueError: rank 1 gives up"):
        run_ranks(_fails_on_rank_1, timeout=60)
