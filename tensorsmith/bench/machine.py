"""What the numbers were measured on, and settings that quietly make a benchmark wrong or slow.

Every result file carries the machine (CPU and GPU model, cores, memory, load), the versions of
everything that matters, and the tensorsmith commit, so that two result files can be told apart;
`warnings()` names configurations that would make every number mislead.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess

import torch

from ..doctor.machine import load_average


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    try:
        import psutil
        return psutil.cpu_count(logical=False)
    except ImportError:
        return None


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "--verify", "HEAD"], cwd=here,
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def info(device: str) -> dict:
    data = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "torch_threads": torch.get_num_threads(),
        "memory_bytes": _memory_bytes(),
        "load_average_1min": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "device": device,
        "versions": {p: _version(p) for p in ("torch", "numpy", "transformers", "diffusers",
                                              "timm", "tensorsmith")},
        "tensorsmith_commit": _git_commit(),
    }
    if torch.cuda.is_available():
        data["gpu"] = torch.cuda.get_device_name(0)
        data["gpu_count"] = torch.cuda.device_count()
        data["cuda"] = torch.version.cuda
        data["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
    return data


def warnings(device: str) -> list[str]:
    """Settings under which the numbers mislead: each becomes a line in every report."""
    import tensorsmith
    import torch._dynamo

    found = []
    cores, threads = os.cpu_count() or 1, torch.get_num_threads()
    load = load_average()
    if load is not None and load > 0.5 * cores:
        found.append(f"machine busy: load average {load:.1f} on {cores} cores at the start; "
                     "step times are noisier (the intervals show how much)")
    if threads > cores:
        found.append(f"torch uses {threads} threads on {cores} cores (oversubscribed)")
    if threads == 1 and cores > 1 and not device.startswith("cuda"):
        found.append(f"torch uses 1 thread on {cores} cores (OMP_NUM_THREADS?)")
    if torch._dynamo.config.suppress_errors:
        found.append("torch._dynamo.config.suppress_errors is on: a backend that fails silently "
                     "runs eager")
    if os.environ.get("TORCHDYNAMO_DISABLE") == "1" or getattr(torch._dynamo.config, "disable", False):
        found.append("TorchDynamo is disabled: every 'compiled' run is eager")
    for var in ("TORCH_LOGS", "TORCH_COMPILE_DEBUG", "TORCHINDUCTOR_COMPILE_THREADS"):
        if os.environ.get(var):
            found.append(f"{var}={os.environ[var]} is set (slows or changes compilation)")
    if os.environ.get("CUDA_LAUNCH_BLOCKING") == "1":
        found.append("CUDA_LAUNCH_BLOCKING=1: every kernel launch waits for the GPU")
    if torch.is_anomaly_enabled():
        found.append("autograd anomaly detection is on (slow backward)")
    if tensorsmith.config.debug or tensorsmith.config.dump_dir:
        found.append("TENSORSMITH_DEBUG/TENSORSMITH_DUMP is set (compile time includes logging)")
    if device.startswith("cuda") and not torch.cuda.is_available():
        found.append("--device cuda but CUDA is not available")
    return found
