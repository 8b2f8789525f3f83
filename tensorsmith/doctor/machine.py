"""What the machine offers this process: the physical cores it may run on (affinity, SMT siblings,
a container's CPU quota), the load on them, and what `nvidia-smi` says where it can be run."""
from __future__ import annotations

import math
import os
import subprocess

_SYS_CPU = "/sys/devices/system/cpu"


def usable_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:
        return set(range(os.cpu_count() or 1))


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def physical_cores(cpus: set[int]) -> int:
    """Distinct (package, core) pairs among `cpus`: SMT siblings share a core's arithmetic units."""
    cores = set()
    for cpu in cpus:
        topology = f"{_SYS_CPU}/cpu{cpu}/topology"
        core, package = _read(f"{topology}/core_id"), _read(f"{topology}/physical_package_id")
        if core is None or package is None:
            return len(cpus)
        cores.add((package, core))
    return len(cores) or len(cpus)


def cpu_quota() -> float | None:
    """A container's CPU limit in cores (cgroup v2 `cpu.max`, else v1 CFS quota), or None."""
    limit = _read("/sys/fs/cgroup/cpu.max")
    if limit:
        quota, _, period = limit.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    quota = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
    period = _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    if quota and period and int(quota) > 0:
        return int(quota) / int(period)
    return None


def cores_available() -> int:
    """Physical cores this process may use: its affinity's, capped by a CPU quota."""
    cores = physical_cores(usable_cpus())
    quota = cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def nvidia_smi(*args: str, timeout: float = 10.0) -> list[list[str]] | None:
    """`nvidia-smi ARGS --format=csv,noheader,nounits` as rows of fields; None where it cannot run."""
    try:
        done = subprocess.run(["nvidia-smi", *args, "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [[field.strip() for field in line.split(",")] for line in done.stdout.splitlines()
            if line.strip()]
