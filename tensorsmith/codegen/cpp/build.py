"""Build a C++ module with the system compiler, through the compile cache, and load it."""
from __future__ import annotations

import ctypes
import functools
import os
import platform
import subprocess

import torch

from ...errors import BuildError
from ...cache import content_key, get_or_build

COMPILER = os.environ.get("CXX", "g++")
# -ffp-contract=off: no fused multiply-adds the source does not write, so results round as eager's.
# -fno-trapping-math: nothing reads the floating-point exception flags, and without it GCC may not
# compute both sides of a select whose comparison could raise one (a NaN guard), so loops over
# exp, erf, log and tanh stay scalar on targets without AVX-512's masked operations.
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=c++17", "-fno-math-errno",
         "-fno-trapping-math", "-ffp-contract=off", "-w"]


@functools.lru_cache(maxsize=1)
def toolchain_fingerprint() -> str:
    """Compiler version, torch version and CPU features: what else determines a built module."""
    try:
        version = subprocess.run([COMPILER, "--version"], capture_output=True, text=True,
                                 check=True).stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError) as e:
        raise BuildError(f"no working C++ compiler ({COMPILER}): {e}") from None
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu += next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    return "\n".join([version, torch.__version__, cpu])


def build_module(source: str) -> tuple[ctypes.CDLL, bool]:
    """Compile `source` to a shared library (or take it from the cache) and load it; returns the
    library and whether it was a cache hit."""
    key = content_key("cpp", source, " ".join(FLAGS), toolchain_fingerprint())

    def build(directory: str) -> None:
        src = os.path.join(directory, "kernels.cpp")
        with open(src, "w") as f:
            f.write(source)
        result = subprocess.run([COMPILER, *FLAGS, src, "-o", os.path.join(directory, "kernels.so")],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"{COMPILER} failed on generated code:\n{result.stderr[-4000:]}")

    path, hit = get_or_build(key, "kernels.so", build)
    return ctypes.CDLL(path), hit
