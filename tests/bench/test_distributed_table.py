"""bench/distributed.py's table: scaling against the same backend's single run, and the memory
earlier runs of the process still held, named under the table instead of counted in a run's peak."""
import random

import torch

from tensorsmith.bench.distributed import TINY, print_table


def _run(median_ms, held_gb):
    return {"median_ms": median_ms, "compile_s": 1.0, "peak_gb": random.uniform(1, 2),
            "held_before_gb": held_gb, "first_losses": [5.0, 5.0]}


def test_the_table_scales_against_single_and_names_memory_held_from_earlier_runs(capsys):
    single_ms, ddp_ms, held = random.uniform(40, 50), random.uniform(50, 60), random.uniform(1, 9)
    results = {("single", "tensorsmith"): _run(single_ms, 0.0),
               ("ddp", "tensorsmith"): _run(ddp_ms, 0.01),  # below the 0.05 GB noise floor
               ("fsdp2", "tensorsmith"): _run(ddp_ms, held)}
    print_table(results, TINY, 4, 3, torch.device("cpu"), 2)
    out = capsys.readouterr().out
    ddp_row = next(line for line in out.splitlines() if line.startswith("| ddp |"))
    assert f"| {single_ms / ddp_ms:.2f} |" in ddp_row
    assert f"| {results['ddp', 'tensorsmith']['peak_gb']:.2f} |" in ddp_row
    held_line = next(line for line in out.splitlines() if line.startswith("peak GB/GPU leaves out"))
    assert f"fsdp2 tensorsmith {held:.2f} GB" in held_line and "ddp" not in held_line
