"""Checks of the setup around the compiler, one function each, each returning findings: versions,
settings that slow everything, torch threads against the cores, TF32, the compile cache, the GPU."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re

import torch

from .. import cache, config
from ..errors import CacheError
from ..version import __version__
from . import gpu, machine, measure
from .findings import Finding

TORCH_SUPPORTED = (2, 11)  # the oldest torch tensorsmith runs on
TORCH_TESTED = (2, 13)  # the newest it was tested on
TRITON_SUPPORTED = (3, 6)


def _major_minor(version: str) -> tuple[int, int]:
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found[1]), int(found[2])) if found else (0, 0)


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> list[Finding]:
    """torch against the versions tensorsmith supports; Triton and the driver where CUDA is used."""
    found = []
    torch_version = _major_minor(torch.__version__)
    if torch_version < TORCH_SUPPORTED:
        found.append(Finding("versions", f"torch {torch.__version__} is older than tensorsmith "
                             "supports (>= 2.11)", "graphs may fail to compile and run through ATen",
                             "pip install 'torch>=2.11'", "error"))
    elif torch_version > TORCH_TESTED:
        found.append(Finding("versions", f"torch {torch.__version__} is newer than tensorsmith was "
                             "tested with (2.11 to 2.13)", "not measured: an untested Dynamo may "
                             "break graphs differently", "pip install 'torch>=2.11,<2.14' if "
                             "graphs fall back", "note"))
    if torch.cuda.is_available():
        found += _triton() + gpu.driver()
    return found


def _triton() -> list[Finding]:
    if importlib.util.find_spec("triton") is None:
        return [Finding("versions", "Triton is not installed", "CUDA graphs run on tensorsmith's "
                        "reference interpreter, op by op: far slower than eager",
                        "pip install 'triton>=3.6'", "error")]
    version = _package_version("triton") or "0.0"
    if _major_minor(version) < TRITON_SUPPORTED:
        return [Finding("versions", f"Triton {version} is older than tensorsmith supports (>= 3.6)",
                        "kernels may fail to build, and their graphs run through ATen",
                        "pip install 'triton>=3.6'", "error")]
    return []


def settings() -> list[Finding]:
    """Switches that make every step slow or every 'compiled' run eager."""
    found = []
    if os.environ.get("TORCHDYNAMO_DISABLE") == "1" or getattr(torch._dynamo.config, "disable", False):
        found.append(Finding("settings", "TorchDynamo is disabled (TORCHDYNAMO_DISABLE)",
                             "torch.compile does nothing: every compiled model runs eagerly",
                             "unset TORCHDYNAMO_DISABLE", "error"))
    if config.executor == "interpreter":
        found.append(Finding("settings", "TENSORSMITH_EXECUTOR=interpreter", "graphs run on the "
                             "reference interpreter, op by op: far slower than eager",
                             "unset TENSORSMITH_EXECUTOR", "error"))
    if os.environ.get("CUDA_LAUNCH_BLOCKING") == "1":
        found.append(Finding("settings", "CUDA_LAUNCH_BLOCKING=1", "every kernel launch waits for "
                             "the GPU: the host can never run ahead", "unset CUDA_LAUNCH_BLOCKING"))
    if torch.is_anomaly_enabled():
        found.append(Finding("settings", "autograd anomaly detection is on", "every backward op "
                             "is checked and traced: a much slower backward",
                             "torch.autograd.set_detect_anomaly(False) outside debugging"))
    if torch.are_deterministic_algorithms_enabled():
        found.append(Finding("settings", "torch.use_deterministic_algorithms(True)", "some ops run "
                             "slower deterministic kernels", "turn it off where bitwise "
                             "reproducibility is not needed", "note"))
    if config.debug or config.dump_dir:
        found.append(Finding("settings", "TENSORSMITH_DEBUG or TENSORSMITH_DUMP is set", "compiles "
                             "also print or write every stage", "unset them outside debugging",
                             "note"))
    if config.check_numerics != "off":
        found.append(Finding("settings", f"numeric guards are on ({config.check_numerics})",
                             "kernels check their stores and library steps their results",
                             "TENSORSMITH_CHECK_NUMERICS=off once the model is trusted", "note"))
    return found


def threads() -> list[Finding]:
    """torch's thread count against the physical cores this process may use, with the cost
    measured: the same small workload timed at the current count and at the alternatives."""
    current, cores = torch.get_num_threads(), machine.cores_available()
    timings = measure.cpu_workload_ms(sorted({current, cores, 1}))
    best = min(timings, key=timings.get)
    compare = best if best != current else cores
    ratio = timings[current] / timings[compare]
    effect = (f"a small matmul/elementwise workload takes {timings[current]:.1f} ms at {current} "
              f"threads, {timings[compare]:.1f} ms at {compare}: {ratio:.1f}x "
              + ("slower" if ratio >= 1 else "(not slower right now: it costs most when other work "
                                           "competes for the cores)"))
    fix = (f"torch.set_num_threads({compare}) before the first step (or OMP_NUM_THREADS={compare}); "
           "DataLoader workers also need cores")
    if current > cores:
        return [Finding("threads", f"torch uses {current} threads on {cores} physical core(s) "
                        "available to this process (oversubscribed)", effect, fix)]
    if compare != current and ratio >= 1.5:
        load = machine.load_average()
        busy = f"; load average {load:.1f}" if load is not None else ""
        return [Finding("threads", f"torch's {current} thread(s) are slower here than {compare} "
                        f"({cores} physical core(s) available{busy})", effect, fix)]
    return []


def _tf32_off() -> bool:
    return (torch.get_float32_matmul_precision() == "highest"
            and not torch.backends.cuda.matmul.allow_tf32)


def tf32() -> list[Finding]:
    """TF32 off on a CUDA device with tensor cores for it (compute capability 8.0 and up)."""
    if not torch.cuda.is_available():
        return []
    major, minor = torch.cuda.get_device_capability()
    if major < 8 or not _tf32_off():
        return []
    timed = measure.tf32_matmul_ms()
    effect = (f"a 4096-square float32 matmul takes {timed[0]:.2f} ms, {timed[1]:.2f} ms with TF32: "
              f"{timed[0] / timed[1]:.1f}x" if timed else
              "float32 matmuls and convolutions skip the TF32 tensor cores (several times slower; "
              "not measured here)")
    return [Finding("tf32", f"TF32 is off on {torch.cuda.get_device_name()} (compute capability "
                    f"{major}.{minor}): float32 matmuls run at full precision", effect,
                    "torch.set_float32_matmul_precision('high') at the start (TF32: ~1e-3 "
                    "relative error in matmuls)")]


def cudnn_benchmark(convolutions_on_cuda: bool) -> list[Finding]:
    """cudnn.benchmark off while convolutions run on CUDA (a note: it helps fixed input shapes)."""
    if not convolutions_on_cuda or torch.backends.cudnn.benchmark:
        return []
    return [Finding("cudnn_benchmark", "torch.backends.cudnn.benchmark is off and the model runs "
                    "convolutions on CUDA", "cuDNN uses its heuristic algorithm, not the fastest "
                    "it would find (not measured)", "torch.backends.cudnn.benchmark = True when "
                    "input shapes are fixed", "note")]


def compile_cache() -> list[Finding]:
    """The compile cache's directory: refused (not private) or not writable."""
    directory = config.cache_dir
    fix = (f"chmod 700 {directory} (or set TENSORSMITH_CACHE_DIR to a private directory of "
           "your own)")
    try:
        root = cache.cache_root()
    except CacheError as e:
        return [Finding("compile_cache", f"the compile cache is refused: {e}", "every graph runs "
                        "through ATen as traced: compiled is no faster than eager", fix, "error")]
    except OSError as e:
        return [Finding("compile_cache", f"the compile cache {directory} cannot be created: {e}",
                        "every graph runs through ATen as traced: compiled is no faster than eager",
                        "set TENSORSMITH_CACHE_DIR to a writable private directory", "error")]
    if not os.access(root, os.W_OK | os.X_OK):
        return [Finding("compile_cache", f"the compile cache {root} is not writable",
                        "builds cannot be stored: graphs fall back to ATen", fix, "error")]
    return []


def gpu_state() -> list[Finding]:
    if not torch.cuda.is_available():
        return []
    return gpu.device_state() + gpu.other_processes()


CHECKS = (versions, settings, threads, tf32, compile_cache, gpu_state)


def check_environment() -> list[Finding]:
    return [finding for check in CHECKS for finding in check()]


def context() -> list[str]:
    """What the environment checks looked at, one line each."""
    cpus = machine.usable_cpus()
    load = machine.load_average()
    lines = [f"tensorsmith {__version__}, torch {torch.__version__}, Python "
             f"{platform.python_version()}, executor {config.executor}",
             f"CPU: {len(cpus)} usable logical cpu(s), {machine.cores_available()} physical "
             f"core(s), {torch.get_num_threads()} torch thread(s)"
             + (f", load average {load:.1f}" if load is not None else "")]
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name()} (compute capability "
                     f"{'.'.join(map(str, torch.cuda.get_device_capability()))}), CUDA "
                     f"{torch.version.cuda}, Triton {_package_version('triton') or 'missing'}")
    else:
        lines.append("GPU: none (CUDA not available)")
    lines.append(f"compile cache: {config.cache_dir}")
    return lines
