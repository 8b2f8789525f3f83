"""Memory samples, once per step: CUDA memory allocated, or the process's resident set."""
from __future__ import annotations

import os
from typing import Callable

import torch

MIB = 1 << 20


def memory_sampler(outputs) -> tuple[Callable[[], int], str]:
    """CUDA memory allocated where the graph's outputs are on CUDA, else the resident set (from
    /proc, else psutil; without either every sample is 0: memory is not watched)."""
    try:
        device = next((t.device for t in outputs if isinstance(t, torch.Tensor) and t.is_cuda), None)
    except TypeError:
        device = None
    if device is not None:
        return (lambda: cuda_allocated_bytes(device)), "CUDA memory allocated"
    if not resident_bytes():
        try:
            import psutil
        except ImportError:
            return resident_bytes, "resident memory"
        process = psutil.Process()
        return (lambda: process.memory_info().rss), "resident memory"
    return resident_bytes, "resident memory"


def cuda_allocated_bytes(device) -> int:
    """`torch.cuda.memory_allocated(device)` read from the allocator's nested statistics:
    memory_allocated flattens all of them into one dict first, which cost a decode step on an H100
    more host time than its kernels' launches."""
    stats = torch.cuda.memory_stats_as_nested_dict(device)
    return stats.get("allocated_bytes", {}).get("all", {}).get("current", 0)


_STATM = {"fd": -1, "pid": -1}
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> int:
    """The resident set: a pread of /proc/self/statm, reopened in a forked child; 0 where there is
    no /proc."""
    if _STATM["pid"] != os.getpid():
        if _STATM["fd"] >= 0:
            os.close(_STATM["fd"])  # the parent's, inherited
        _STATM["pid"] = os.getpid()
        try:
            _STATM["fd"] = os.open(f"/proc/{os.getpid()}/statm", os.O_RDONLY)
        except OSError:
            _STATM["fd"] = -1
    if _STATM["fd"] < 0:
        return 0
    return int(os.pread(_STATM["fd"], 128, 0).split()[1]) * _PAGE
