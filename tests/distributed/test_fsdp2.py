"""FSDP2 (`fully_shard`): nanoGPT with each transformer block sharded and compiled by tensorsmith
(the per-layer pattern), and an MLP sharded and compiled whole, train like eager FSDP2 (2 gloo
processes on the CPU, 3 AdamW steps, losses and every unsharded gradient within 1e-4 relative);
FSDP2's all-gathers and reduce-scatters stay in its hooks, outside the compiled graphs."""
from __future__ import annotations

import pytest
from dist_launch import run_ranks
from dist_workers import fsdp2
from test_ddp import check_matches_eager


@pytest.mark.parametrize("name", ["mlp", "nanogpt"])
def test_fsdp2_matches_eager(name):
    results = run_ranks(fsdp2, name)
    check_matches_eager(results)
    for rank, r in enumerate(results):
        assert "forward" in r["graphs"] and "backward" in r["graphs"], \
            f"rank {rank}: nothing was compiled: {r['graphs']}"
        blocks = 2 if name == "nanogpt" else 1  # compiled modules, each run once per step
        for log in r["compiled"]["logs"]:  # steady-state steps ran the compiled graphs
            kinds = [kind for kind, _ in log]
            assert kinds.count("forward") == blocks and kinds.count("backward") == blocks, \
                f"rank {rank}: compiled graphs run in a step: {log}"
