"""One (model, mode, backend) in a fresh subprocess: compile latency and peak memory.

Cold compile = the first call in a new process whose compile caches (TORCHINDUCTOR_CACHE_DIR,
TRITON_CACHE_DIR, TENSORSMITH_CACHE_DIR) point at an empty directory; warm compile = the same in
another new process after the cold one has filled that directory. Compile latency is the first
call's time minus the median of the steady steps that follow. Memory is read in the same process
(see memory.py), as only a process of its own gives a peak RSS that belongs to one model.

Processes come from a fork server that has imported torch, tensorsmith and the model libraries
once, so each probe costs its compile and its steps, not a Python start-up; nothing has been
compiled in the server, so every child starts without compiled state.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
from dataclasses import asdict, dataclass

import torch

from . import backends, zoo
from .memory import PeakMemory
from .results import FAIL_TO_RUN, classify, short_error
from .timing import Clock
from .workload import make_step, optimizer_for, prepare

CACHE_VARIABLES = ("TORCHINDUCTOR_CACHE_DIR", "TENSORSMITH_CACHE_DIR")


@dataclass(frozen=True)
class ProbeSpec:
    model: str
    size: str
    mode: str
    backend: str
    device: str
    cache_dir: str
    warmup: int = 2
    steps: int = 5
    threads: int = 0  # torch threads, as in the benchmark process (0: the default)


def use_cache_dir(path: str) -> dict:
    """Point every compile cache at `path`; returns the previous values for restore_cache_dirs."""
    import tensorsmith

    old = {k: os.environ.get(k) for k in CACHE_VARIABLES + ("TRITON_CACHE_DIR",)}
    old["config"] = tensorsmith.config.cache_dir
    os.makedirs(path, exist_ok=True)
    for k in CACHE_VARIABLES:
        os.environ[k] = path
    os.environ["TRITON_CACHE_DIR"] = os.path.join(path, "triton")
    tensorsmith.config.cache_dir = path
    return old


def restore_cache_dirs(old: dict) -> None:
    import tensorsmith

    tensorsmith.config.cache_dir = old.pop("config")
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def measure(spec: ProbeSpec) -> dict:
    """Runs in the child."""
    if spec.threads:
        torch.set_num_threads(spec.threads)
    use_cache_dir(spec.cache_dir)
    backends.preimport(spec.backend)
    workload = zoo.build(spec.model, spec.size, spec.device)
    model = prepare(workload.model, spec.mode)
    fn = backends.compiled(model, spec.backend)
    step = make_step(workload, fn, spec.mode, optimizer_for(model) if spec.mode == "train" else None)
    clock, memory = Clock(spec.device), PeakMemory(spec.device)
    base = memory.current()
    _, first = clock.wall(step)
    for _ in range(spec.warmup):
        step()
    peak_with_compile = memory.peak()
    memory.reset()
    steady = statistics.median(clock.time(step) for _ in range(spec.steps))
    return {"first_call_s": first, "steady_s": steady, "compile_s": max(0.0, first - steady),
            "peak_bytes": memory.peak(), "peak_with_compile_bytes": peak_with_compile,
            "base_bytes": base, "kind": memory.kind,
            "peak_includes_compile": not memory.reset_worked}


def _child(conn, spec: ProbeSpec) -> None:
    try:
        conn.send(measure(spec))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as a status
        conn.send({"status": classify(exc), "error": short_error(exc)})
    finally:
        conn.close()
        if "torch._inductor.async_compile" in sys.modules:  # its worker pool would outlive us
            try:
                sys.modules["torch._inductor.async_compile"].shutdown_compile_workers()
            except Exception:  # noqa: BLE001
                pass


_CONTEXT = None


def start(preload=()) -> None:
    """Choose the process start method once per run; `preload`: modules the models need."""
    global _CONTEXT
    if _CONTEXT is not None:
        return
    if "forkserver" in mp.get_all_start_methods():
        _CONTEXT = mp.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(["tensorsmith.bench.probe", *preload])
    else:
        _CONTEXT = mp.get_context("spawn")


def run(spec: ProbeSpec, timeout: float) -> dict:
    """The child's measurements, or {"status", "error"} if it failed, crashed or timed out."""
    start()
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(target=_child, args=(sender, spec), daemon=False)
    process.start()
    sender.close()
    try:
        if receiver.poll(timeout):
            result = receiver.recv()
        else:
            result = {"status": "timeout", "error": f"probe took over {timeout:.0f} s"}
    except EOFError:
        result = None
    process.join(10 if result is not None else 30)
    if process.is_alive():
        process.kill()
        process.join()
    if result is None:
        result = {"status": FAIL_TO_RUN, "error": f"probe process died (exit code {process.exitcode})"}
    result["spec"] = asdict(spec)
    return result
