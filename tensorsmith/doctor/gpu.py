"""The NVIDIA devices as `nvidia-smi` sees them: driver against torch's CUDA, clock slowdowns,
uncorrected ECC errors, other processes on the device. Silent where nvidia-smi cannot be read."""
from __future__ import annotations

import os

import torch

from . import machine
from .findings import Finding

# The oldest driver each CUDA major version runs on (minor-version compatibility).
MIN_DRIVER = {11: 450, 12: 525, 13: 580}

_SLOWDOWNS = {  # nvidia-smi field -> what it means
    "clocks_throttle_reasons.hw_slowdown": "hardware slowdown (power brake or overheating)",
    "clocks_throttle_reasons.hw_thermal_slowdown": "hardware thermal slowdown",
    "clocks_throttle_reasons.sw_thermal_slowdown": "software thermal slowdown",
}


def _visible(rows: list[list[str]]) -> list[list[str]]:
    """Rows (index first) of the devices CUDA_VISIBLE_DEVICES leaves this process, when it lists
    indices."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if not visible or not all(v.strip().isdigit() for v in visible.split(",")):
        return rows
    keep = {v.strip() for v in visible.split(",")}
    return [r for r in rows if r[0] in keep]


def driver() -> list[Finding]:
    """The driver against the CUDA version torch was built with."""
    rows = machine.nvidia_smi("--query-gpu=driver_version")
    cuda = torch.version.cuda
    if not rows or not cuda:
        return []
    version, cuda_major = rows[0][0], int(cuda.split(".")[0])
    needed = MIN_DRIVER.get(cuda_major)
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return []
    if needed is None or major >= needed:
        return []
    return [Finding("versions", f"NVIDIA driver {version} is older than CUDA {cuda} (torch's) needs",
                    f"CUDA {cuda_major}.x needs driver >= {needed}: kernels fail to load or CUDA is "
                    "unavailable", f"install driver >= {needed}, or a torch built for an older CUDA",
                    "error")]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def device_state() -> list[Finding]:
    """Clock slowdowns and uncorrected ECC errors of each visible device."""
    fields = ["index", "name", "clocks.sm", "clocks.max.sm", "ecc.errors.uncorrected.volatile.total",
              *_SLOWDOWNS]
    rows = machine.nvidia_smi(f"--query-gpu={','.join(fields)}")
    found = []
    for row in _visible(rows or []):
        if len(row) != len(fields):
            continue
        values = dict(zip(fields, row))
        gpu = f"GPU {values['index']} ({values['name']})"
        active = [why for key, why in _SLOWDOWNS.items() if values[key].lower() == "active"]
        if active:
            found.append(Finding(
                "gpu_clocks", f"{gpu} is slowing its clocks: {', '.join(active)}",
                f"SM clock {values['clocks.sm']} MHz of {values['clocks.max.sm']} MHz max",
                "check the device's cooling and power (nvidia-smi -q -d PERFORMANCE shows why)"))
        errors = _number(values["ecc.errors.uncorrected.volatile.total"])
        if errors:
            found.append(Finding(
                "gpu_ecc", f"{gpu} has {int(errors)} uncorrected ECC error(s) since the driver loaded",
                "results on this device may be wrong; the device may need a reset",
                "run on another GPU and have the device checked (nvidia-smi -q -d ECC)", "error"))
    return found


def other_processes() -> list[Finding]:
    """Compute processes on the devices besides this one (which may be listed under a host pid
    inside a container, so one unknown process is allowed once this process uses CUDA)."""
    rows = machine.nvidia_smi("--query-compute-apps=pid,process_name,used_memory")
    if rows is None:
        return []
    others = [r for r in rows if len(r) == 3 and r[0] != str(os.getpid())]
    unseen_self = torch.cuda.is_initialized() and len(others) == len(rows)
    if len(others) <= int(unseen_self):
        return []
    listed = ", ".join(f"pid {pid} {name.rsplit('/', 1)[-1]} ({memory} MiB)"
                       for pid, name, memory in others[:4])
    maybe_self = " (one may be this process, under its host pid)" if unseen_self else ""
    return [Finding("gpu_processes", f"{len(others)} other process(es) use the GPU{maybe_self}: "
                    f"{listed}", "they share the device's compute and memory: step times vary "
                    "with their load", "run alone on the device (CUDA_VISIBLE_DEVICES=a free GPU) "
                    "or stop them")]
