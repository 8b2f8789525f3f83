"""Small timed workloads that put a number on a setting's cost: the same work at two thread counts,
float32 matmuls with and without TF32."""
from __future__ import annotations

import statistics
import time

import torch


def _cpu_work(a: torch.Tensor, b: torch.Tensor) -> None:
    for _ in range(4):
        torch.tanh(a @ a).mul_(0.5)
    (b * b).add_(1.0).sum()


def _timed_at(threads: int, a: torch.Tensor, b: torch.Tensor) -> float:
    torch.set_num_threads(threads)
    _cpu_work(a, b)  # the thread pool resized and warm
    start = time.perf_counter()
    _cpu_work(a, b)
    return time.perf_counter() - start


def cpu_workload_ms(thread_counts, reps: int = 7) -> dict[int, float]:
    """Median milliseconds of a small matmul + elementwise workload with torch at each thread
    count; the counts take turns, so that load from elsewhere falls on all of them alike."""
    previous = torch.get_num_threads()
    a, b = torch.randn(256, 256), torch.randn(1 << 19)
    times: dict[int, list[float]] = {n: [] for n in thread_counts}
    try:
        for _ in range(reps):
            for n in times:
                times[n].append(_timed_at(n, a, b))
    finally:
        torch.set_num_threads(previous)
    return {n: statistics.median(t) * 1000 for n, t in times.items()}


def _cuda_matmul_ms(a: torch.Tensor, precision: str, reps: int) -> float:
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(precision)
    try:
        a @ a
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            a @ a
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / reps * 1000
    finally:
        torch.set_float32_matmul_precision(previous)


def tf32_matmul_ms(size: int = 4096, reps: int = 5) -> tuple[float, float] | None:
    """(ms without TF32, ms with TF32) of a float32 `size`-square matmul on the current CUDA device,
    or None where it cannot run."""
    try:
        a = torch.randn(size, size, device="cuda")
        return _cuda_matmul_ms(a, "highest", reps), _cuda_matmul_ms(a, "high", reps)
    except (RuntimeError, AssertionError):  # no usable device (AssertionError: torch without CUDA)
        return None
