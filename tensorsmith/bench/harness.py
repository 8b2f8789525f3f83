"""The benchmark run: for each model and mode, every backend on the same model and inputs.

Order of work for one (model, mode):
  1. probes (subprocesses): cold then warm compile latency, and peak memory, per backend;
  2. a float64 eager reference of one call;
  3. each backend's first call, alone (compilation, graph breaks, accuracy against the reference);
  4. warm-up calls, untimed;
  5. interleaved timed rounds, eager and compiled backends alternating, on the device's clock;
  6. medians and bootstrap confidence intervals of each backend's speed-up over eager.
A failure at any point becomes that row's status; the run always goes on.
"""
from __future__ import annotations

import contextlib
import gc
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field

import torch

from . import accuracy, backends, counters, probe, stats, zoo
from .results import (FAIL_ACCURACY, OK, UNAVAILABLE, UNKNOWN_BACKEND, UNKNOWN_MODEL, Row,
                      classify)
from .timing import Clock, interleave
from .workload import make_step, optimizer_for, prepare

MODES = ("train", "infer")

# (model, mode, phase, seconds) of the last run: where a benchmark's own time went.
TIMELINE: list = []


@contextlib.contextmanager
def _phase(model: str, mode: str, phase: str):
    start = time.perf_counter()
    try:
        yield
    finally:
        TIMELINE.append((model, mode, phase, round(time.perf_counter() - start, 2)))


@dataclass
class Settings:
    models: list = field(default_factory=lambda: ["nanogpt"])
    backends: list = field(default_factory=lambda: ["eager", "inductor", "tensorsmith"])
    modes: list = field(default_factory=lambda: list(MODES))
    device: str = "cpu"
    size: str = "auto"
    warmup: int = 2  # untimed calls after the first (compiling) one
    rounds: int | None = None  # fixed number of timed rounds; None: fill `seconds`
    min_rounds: int = 20
    max_rounds: int = 200
    seconds: float = 6.0  # timed-round budget per (model, mode) when rounds is None
    tolerance: float = accuracy.DEFAULT_TOLERANCE
    probes: bool = True  # cold/warm compile latency and peak memory, in subprocesses
    probe_steps: int = 3  # steady steps after compile and warm-up, for the memory peak
    probe_timeout: float = 900.0
    seed: int = 0
    progress: bool = True
    precision: str = "fp32"  # or "bf16": every backend's calls under bfloat16 autocast


def run(settings: Settings, on_task_done=None) -> list[Row]:
    """All rows; on_task_done(rows so far) after each (model, mode), e.g. to save partial results."""
    if settings.probes:
        probe.start(sorted({m for name in settings.models if name in zoo.ZOO
                            for m in zoo.ZOO[name].requires if not zoo.ZOO[name].missing()}))
    tasks = [(m, mode) for m in settings.models for mode in settings.modes]
    TIMELINE.clear()
    per_task = len(dict.fromkeys(settings.backends)) * (4 if settings.probes else 2)
    bar = _progress(len(tasks) * per_task, settings)
    rows = []
    cache_root = tempfile.mkdtemp(prefix="tensorsmith-bench-")
    try:
        for i, (name, mode) in enumerate(tasks):
            rows += run_one(name, mode, settings, cache_root, bar)
            bar.update(max(0, (i + 1) * per_task - bar.n))
            if on_task_done is not None:
                on_task_done(rows)
    finally:
        bar.close()
        shutil.rmtree(cache_root, ignore_errors=True)
    return rows


def run_one(name: str, mode: str, s: Settings, cache_root: str, bar=None) -> list[Row]:
    bar = bar or _progress(0, Settings(progress=False))
    rows = {b: Row(name, mode, b, precision=s.precision) for b in dict.fromkeys(s.backends)}
    entry = zoo.ZOO.get(name)
    if entry is None:
        for row in rows.values():
            row.fail(UNKNOWN_MODEL, f"no model {name!r} in the zoo ({', '.join(zoo.ZOO)})")
        return list(rows.values())
    if entry.missing():
        for row in rows.values():
            row.fail(UNAVAILABLE, f"needs {', '.join(entry.missing())} (pip install tensorsmith[bench])")
        return list(rows.values())
    size = zoo.resolve_size(entry, s.size, s.device)
    for b, row in rows.items():
        row.size = size
        if not backends.known(b):
            row.fail(UNKNOWN_BACKEND, f"torch.compile has no backend {b!r}")
    active = [b for b, row in rows.items() if row.status == OK]
    caches = {b: os.path.join(cache_root, f"{name}-{mode}-{b}") for b in active}
    if s.probes:
        for b in active:
            _probe(rows[b], caches[b], s, bar)
    _in_process(entry.name, size, mode, rows, active, caches, s, bar)
    return list(rows.values())


def _probe(row: Row, cache_dir: str, s: Settings, bar) -> None:
    runs = ("cold",) if row.backend == backends.EAGER else ("cold", "warm")
    for kind in runs:
        bar.set_postfix_str(f"{row.model} {row.mode} {row.backend}: {kind} compile probe")
        spec = probe.ProbeSpec(row.model, row.size, row.mode, row.backend, s.device, cache_dir,
                               warmup=min(s.warmup, 1), steps=s.probe_steps,
                               threads=torch.get_num_threads())
        with _phase(row.model, row.mode, f"{kind} probe {row.backend}"):
            result = probe.run(spec, s.probe_timeout)
        bar.update(1)
        if "error" in result:
            row.notes.append(f"{kind} probe: {result['status']}: {result['error']}")
            continue
        if row.backend != backends.EAGER:
            row.compile[f"{kind}_s"] = result["compile_s"]
            row.compile[f"{kind}_first_call_s"] = result["first_call_s"]
        row.memory = {k: result[k] for k in ("peak_bytes", "peak_with_compile_bytes", "base_bytes",
                                             "kind", "peak_includes_compile")}
    if len(runs) == 1:
        bar.update(1)


def _in_process(name, size, mode, rows, active, caches, s: Settings, bar) -> None:
    bar.set_postfix_str(f"{name} {mode}: building, float64 reference")
    torch._dynamo.reset()
    gc.collect()
    clock = Clock(s.device)
    try:
        workload = zoo.build(name, size, s.device)
    except Exception as exc:  # noqa: BLE001
        for b in active:
            rows[b].fail(classify(exc), exc)
        return
    model = prepare(workload.model, mode)
    for row in rows.values():
        row.summary = workload.summary
    reference, reference_name = None, "float64 eager"
    try:
        with _phase(name, mode, "float64 reference"):
            reference = accuracy.reference(workload, mode)
    except Exception as exc:  # noqa: BLE001 - float32 eager stands in, and the rows say so
        reference_name = f"float32 eager (float64 failed: {classify(exc)})"
        _free(s.device)
    optimizer = optimizer_for(model) if mode == "train" else None

    fns, captured, ts_start = _first_calls(workload, model, mode, rows, active, caches, clock, s, bar)
    _check_accuracy(captured, reference, reference_name, rows,
                    max(s.tolerance, zoo.ZOO[name].tolerance or 0.0))
    del captured, reference
    steps = {b: make_step(workload, fns[b], mode, optimizer) for b in fns
             if rows[b].status in (OK, FAIL_ACCURACY)}
    with _phase(name, mode, "warm-up"):
        _warm_up(steps, rows, s)
        clock.sync()
    bar.set_postfix_str(f"{name} {mode}: timing {', '.join(steps)}")
    with _phase(name, mode, "timed rounds"):
        _record_times(_timed_rounds(steps, rows, clock, s), rows, s.seed)
    if "tensorsmith" in ts_start:
        row, extra = rows["tensorsmith"], counters.tensorsmith_fallbacks(ts_start["tensorsmith"])
        row.fallback_ops, row.fallback_graphs = extra["fallback_ops"], extra["fallback_graphs"]
        row.fallbacks = extra["details"]
        row.recompiles = (row.recompiles or 0) + extra["respecializations"]
    bar.update(len(active))
    del steps, fns, optimizer, model, workload
    torch._dynamo.reset()
    _free(s.device)


def compile_order(active: list[str]) -> list[str]:
    """The order of the backends' first calls: eager, then tensorsmith, then the others as given.
    Dynamo keeps state per code object across backends in a process (which sizes it has made
    dynamic after a recompile, how many recompiles a frame has had): the first compiler meets a
    fresh state, as a user would, and a later one inherits the earlier ones' decisions (Qwen2-MoE:
    12 graphs for tensorsmith alone, 4 after Inductor). Ours goes first, so that what carries over
    can favour the backends we are compared with, never us."""
    return sorted(active, key=lambda b: (b != backends.EAGER, b != "tensorsmith"))


def _first_calls(workload, model, mode, rows, active, caches, clock, s, bar):
    """Each backend's first call alone: it compiles, its counters are its own, and what it
    computed is kept for the accuracy check."""
    fns, captured, ts_start = {}, {}, {}
    for b in compile_order(active):
        bar.set_postfix_str(f"{rows[b].model} {mode} {b}: first call")
        old_env = probe.use_cache_dir(caches[b])  # the probes' (warm) caches
        try:
            count = counters.FirstCall()
            ts_start[b] = count.records_start
            fns[b] = _in_precision(backends.compiled(model, b), s)
            with _phase(rows[b].model, mode, f"first call {b}"):
                captured[b], rows[b].first_call_s = clock.wall(
                    lambda: accuracy.capture(workload, fns[b], mode, model))
            if b != backends.EAGER:
                _set_counts(rows[b], count.result())
        except Exception as exc:  # noqa: BLE001
            rows[b].fail(classify(exc), exc)
            fns.pop(b, None)
            _free(s.device)
        finally:
            probe.restore_cache_dirs(old_env)
        bar.update(1)
    return fns, captured, ts_start


def _in_precision(fn, s: Settings):
    """`fn` as the settings' precision runs it: itself for fp32, under bfloat16 autocast for bf16
    (the float64 reference stays float64: eager's own bf16 error sets the tolerance's floor)."""
    if s.precision == "fp32":
        return fn
    device_type = torch.device(s.device).type

    def autocast(**inputs):
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return fn(**inputs)
    return autocast


def _check_accuracy(captured, reference, reference_name, rows, tolerance) -> None:
    ref = reference or captured.get(backends.EAGER)  # float32 eager stands in if float64 failed
    for b, tensors in captured.items():
        if ref is None:
            rows[b].notes.append("no accuracy check: neither float64 nor float32 eager ran")
            continue
        eager = captured.get(backends.EAGER) if b != backends.EAGER else None
        result = accuracy.compare(tensors, ref, eager, tolerance, reference_name)
        rows[b].accuracy = result.to_dict()
        if b != backends.EAGER and not result.passed:
            rows[b].fail(FAIL_ACCURACY, f"max relative error {result.max_rel_error:.3g} "
                                        f"({result.worst}) over tolerance {tolerance:g}")


def _warm_up(steps: dict, rows: dict, s: Settings) -> None:
    """Untimed calls; a graph compiled here is already a recompile."""
    for b in list(steps):
        try:
            for _ in range(s.warmup):
                before = counters.graphs_compiled()
                steps[b]()
                if rows[b].recompiles is not None:
                    rows[b].recompiles += counters.graphs_compiled() - before
        except Exception as exc:  # noqa: BLE001
            rows[b].fail(classify(exc), exc)
            del steps[b]
            _free(s.device)


def _record_times(samples: dict, rows: dict, seed: int) -> None:
    for b, times in samples.items():
        rows[b].samples_s = times
        if times:
            rows[b].median_s = stats.median(times)
    eager = samples.get(backends.EAGER)
    for b, times in samples.items():  # paired: only when both ran every round
        if b != backends.EAGER and eager and times and len(eager) == len(times):
            rows[b].speedup = stats.speedup(eager, times, seed=seed).to_dict()


def _set_counts(row: Row, counts: dict) -> None:
    row.graphs, row.graph_breaks, row.recompiles = (counts["graphs"], counts["graph_breaks"],
                                                    counts["recompiles"])


def _timed_rounds(steps: dict, rows: dict, clock: Clock, s: Settings) -> dict:
    if not steps:
        return {}
    last = [counters.graphs_compiled()]

    def after_call(b):  # a graph compiled after the first call is a recompile
        now = counters.graphs_compiled()
        if now > last[0] and rows[b].recompiles is not None:
            rows[b].recompiles += now - last[0]
        last[0] = now

    def on_error(b, exc):
        rows[b].fail(classify(exc), exc)
        _free(s.device)

    rounds = s.rounds
    if rounds is None:  # one round to learn its cost, then fill the budget
        probe_round = interleave(steps, 1, clock, on_error, after_call)
        cost = sum(t[0] for t in probe_round.values() if t) or 1e-3
        rounds = int(min(s.max_rounds, max(s.min_rounds, math.ceil(s.seconds / cost))))
        steps = {b: f for b, f in steps.items() if rows[b].status in (OK, FAIL_ACCURACY)}
    return interleave(steps, rounds, clock, on_error, after_call)


def _free(device: str) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        with contextlib.suppress(Exception):
            torch.cuda.empty_cache()


class _NoBar:
    n = 0

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass


def _progress(total: int, s: Settings):
    if not s.progress:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, file=sys.stderr, unit="step", dynamic_ncols=True, disable=None,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
