"""Run a function on 2 CPU processes joined by the gloo backend, and collect what each returns.

Each rank runs `target(rank, world, *args)` in a fresh process (one thread, a FileStore rendezvous
in a temporary directory: no port to race for) and writes its result, or its traceback, to a file.
Processes are forked from a forkserver that imported torch, tensorsmith and the target's module once
(per test process) and warmed up Dynamo's lazy imports (dist_warmup.py), so a rank starts at once
instead of spending seconds importing; the server ran one thread and no collective, so forking it
is safe. The parent waits with a deadline: a rank that hangs is killed and the test fails saying
which rank, instead of the suite hanging. Collectives time out after `collective_timeout` seconds.
"""
from __future__ import annotations

import datetime
import multiprocessing
import multiprocessing.forkserver
import os
import tempfile
import time
import traceback

import torch


def _rank_main(rank, world, directory, collective_timeout, target, args):
    path = os.path.join(directory, f"rank{rank}.pt")
    try:
        torch.set_num_threads(1)
        import torch.distributed as dist

        import tensorsmith
        torch._dynamo.reset()
        tensorsmith.config.strict = True  # a compiler error fails the test, as in tests/conftest.py
        dist.init_process_group("gloo", init_method="file://" + os.path.join(directory, "store"),
                                rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=collective_timeout))
        try:
            result = {"ok": target(rank, world, *args)}
        finally:
            dist.destroy_process_group()
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        result = {"error": traceback.format_exc()}
    torch.save(result, path)


def _failed(directory, rank) -> bool:
    path = os.path.join(directory, f"rank{rank}.pt")
    return not os.path.exists(path) or "error" in torch.load(path, weights_only=False)


def _forkserver(module: str):
    """The forkserver context, its server started with this folder importable (Python 3.11's
    forkserver ignores the parent's sys.path for its preloads; PYTHONPATH is set only meanwhile)."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["torch.distributed", "dist_warmup", module])
    saved = os.environ.get("PYTHONPATH")
    here = os.path.dirname(os.path.abspath(__file__))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [here, os.path.dirname(here)] + ([saved] if saved else []))
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        if saved is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = saved
    return ctx


def run_ranks(target, *args, world: int = 2, timeout: float = 120.0,
              collective_timeout: float = 60.0) -> list:
    """`target(rank, world, *args)` on `world` gloo processes; the list of their return values.
    Raises AssertionError naming the rank and its traceback if a rank failed or hung."""
    ctx = _forkserver(target.__module__)
    with tempfile.TemporaryDirectory(prefix="tensorsmith-dist-") as directory:
        procs = [ctx.Process(target=_rank_main, daemon=True,
                             args=(rank, world, directory, collective_timeout, target, args))
                 for rank in range(world)]
        for p in procs:
            p.start()
        deadline = time.monotonic() + timeout
        while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
            if any(p.exitcode not in (None, 0) or _failed(directory, rank)
                   for rank, p in enumerate(procs) if not p.is_alive()):
                # A rank failed: the others wait in a collective that will never complete.
                deadline = min(deadline, time.monotonic() + 5)
            time.sleep(0.1)
        hung = [rank for rank, p in enumerate(procs) if p.is_alive()]
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        results, errors = [], []
        for rank, p in enumerate(procs):
            path = os.path.join(directory, f"rank{rank}.pt")
            if rank in hung:
                errors.append(f"rank {rank} did not finish (killed; limit {timeout:.0f} s, or 5 s "
                              "after another rank failed)")
            elif not os.path.exists(path):
                errors.append(f"rank {rank} exited with code {p.exitcode} without a result")
            else:
                result = torch.load(path, weights_only=False)
                if "error" in result:
                    errors.append(f"rank {rank} raised:\n{result['error']}")
                else:
                    results.append(result["ok"])
        assert not errors, "\n".join(errors)
        return results
