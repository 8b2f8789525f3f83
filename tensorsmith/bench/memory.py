"""Peak memory: CUDA allocator statistics on a GPU; on a CPU, the process's peak resident set size.

Peak RSS is a property of a whole process, so it is read in a subprocess that runs one model with
one backend (see probe.py). Linux lets a process reset its high-water mark (writing 5 to
/proc/self/clear_refs), so the peak of the steady-state steps can be told apart from the peak of
compilation; where that is refused, the peak includes compilation and says so.
"""
from __future__ import annotations

import resource

import torch


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def current_rss() -> int | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss() -> int:
    kib = _status_kib("VmHWM")
    if kib is None:  # ru_maxrss is KiB on Linux
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * 1024


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """reset() before the steps of interest, peak() after: bytes, on the device's own terms."""

    def __init__(self, device: str = "cpu"):
        self.cuda = str(device).startswith("cuda")
        self.kind = "cuda" if self.cuda else "rss"
        self.reset_worked = True

    def current(self) -> int | None:
        return torch.cuda.memory_allocated() if self.cuda else current_rss()

    def peak(self) -> int:
        return torch.cuda.max_memory_allocated() if self.cuda else peak_rss()

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self.reset_worked = reset_peak_rss()
