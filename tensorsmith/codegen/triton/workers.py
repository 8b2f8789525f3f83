"""Triton kernels compiled in worker processes (compile_worker.py), loaded here from Triton's cache.

Threads compiling in the background share the GIL, and most of Triton's compile holds it: GPT-2
small's first step waited ~11 s for its ~50 kernels on the H100 machine. So a kernel about to be
compiled is first specialized here: Triton's JIT is asked to compile it with a cache hook that
records what it would compile (signature, constants, attributes, options) and stops it. A worker
process compiles that for this GPU's target, with no CUDA context of its own, into Triton's on-disk
cache; this process's own compile then finds it there.

Workers are plain subprocesses running compile_worker.py, not multiprocessing's: a spawned
multiprocessing child re-imports the user's main script, which usually trains at module level.
Anything that goes wrong on the way (a worker that died, a Triton whose hook data this does not
read) only means the kernel is compiled here instead, as before.
"""
from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading
from concurrent.futures import Future

from ... import config
from ...log import log
from . import compile_worker

_WORKER_SCRIPT = compile_worker.__file__
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class _Worker:
    """One worker process and the thread that feeds it jobs from the pool's queue, one at a time."""

    def __init__(self, jobs: queue.Queue):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_ROOT,
                                                                        os.environ.get("PYTHONPATH")])))
        self.process = subprocess.Popen([sys.executable, _WORKER_SCRIPT], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
        self.jobs = jobs
        threading.Thread(target=self._feed, name="tensorsmith-compile-feed", daemon=True).start()

    def _feed(self) -> None:
        while True:
            job, future = self.jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                compile_worker.write_message(self.process.stdin, job)
                error = compile_worker.read_message(self.process.stdout)
                if error is None and self.process.poll() is not None:
                    error = f"the worker exited ({self.process.returncode})"
            except (OSError, EOFError, ValueError) as e:
                error = f"the worker is gone: {e}"
            future.set_result(error)
            if self.process.poll() is not None:  # dead: leave the rest to the other workers
                return

    def close(self) -> None:
        try:
            self.process.stdin.close()  # the worker's loop ends at the end of its input
            self.process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()


class WorkerPool:
    """`pool.submit(job) -> Future` of None (compiled) or an error's text."""

    def __init__(self, size: int):
        self.jobs: queue.Queue = queue.Queue()
        self.workers = [_Worker(self.jobs) for _ in range(size)]

    def submit(self, job: tuple) -> Future:
        future: Future = Future()
        self.jobs.put((job, future))
        return future

    def close(self) -> None:
        for worker in self.workers:
            worker.close()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> WorkerPool | None:
    """The process's worker pool, started on first use; None when config.compile_workers is 0."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None and config.compile_workers > 0:
            _POOL = WorkerPool(config.compile_workers)
            atexit.register(_POOL.close)
            log(1, f"started {config.compile_workers} Triton compile workers")
        return _POOL


# -- specialization ----------------------------------------------------------------------------
_CAPTURE = threading.local()  # .on: this thread asks for specializations; .found: the last one
_HOOK_LOCK = threading.Lock()
_previous_hook = None


def _capture_hook(**kwargs):
    """Triton's jit_cache_hook: on a capturing thread, record the compile and skip it (True);
    elsewhere, whatever hook was installed before."""
    if getattr(_CAPTURE, "on", False):
        _CAPTURE.found = (kwargs["fn"].jit_function, kwargs["compile"]["specialization_data"])
        return True
    return _previous_hook(**kwargs) if _previous_hook is not None else None


def _install_hook() -> None:
    global _previous_hook
    from triton import knobs

    with _HOOK_LOCK:
        if knobs.runtime.jit_cache_hook is not _capture_hook:
            _previous_hook = knobs.runtime.jit_cache_hook
            knobs.runtime.jit_cache_hook = _capture_hook


def specialize(kernel, *args, **options) -> tuple | None:
    """(module name, module file, kernel name, specialization data): what Triton would compile for
    these arguments (warmup's), or None when it has compiled it already in this process."""
    _install_hook()
    _CAPTURE.on, _CAPTURE.found = True, None
    try:
        kernel.warmup(*args, **options)
    finally:
        _CAPTURE.on = False
    if _CAPTURE.found is None:
        return None
    jit, data = _CAPTURE.found
    module = sys.modules[jit.fn.__module__]
    path = getattr(module, "__file__", None) if module.__name__.startswith("tensorsmith_triton_") else None
    return module.__name__, path, jit.fn.__name__, data


def compile_in_worker(kernel, *args, **options) -> None:
    """Compile `kernel` for these arguments in a worker process into Triton's cache (waiting for it),
    so that compiling it here afterwards is a cache hit. Does nothing (the caller's compile then
    does the work) without workers, or when a worker could not."""
    workers = pool()
    if workers is None:
        return
    import triton

    try:
        job = specialize(kernel, *args, **options)
    except Exception as e:  # noqa: BLE001 - the compile here will say what is wrong, if anything
        log(2, f"no specialization for a compile worker: {e}")
        return
    if job is None:
        return
    target = triton.runtime.driver.active.get_current_target()
    error = workers.submit((*job, dict(target.__dict__))).result()
    if error is not None:
        log(1, f"a compile worker failed on {job[2]} (compiling it here instead): {error.splitlines()[0]}")
