"""Distributed training benchmark: DDP and FSDP2, eager vs inductor vs tensorsmith, under torchrun.

    torchrun --nproc_per_node=2 -m tensorsmith.bench.distributed              # NCCL on GPUs
    torchrun --nproc_per_node=2 -m tensorsmith.bench.distributed --device cpu --backend gloo --tiny
    python -m tensorsmith.bench.distributed --single                          # one process only

The model is the GPU benchmark's: GPT-2 small in the nanoGPT style (vocab 50304, width 768, 12
layers, 12 heads, sequence 1024, exact GELU), batch 8 per GPU, AdamW, float32 with TF32 matmuls
allowed. For each backend it measures, on every rank at once:

- single: the unwrapped model compiled with the backend, each rank training on its own (no
  communication), the one-GPU baseline;
- regional: the same, but each transformer block compiled on its own (`block.compile(...)`), as
  fsdp2 compiles them, without communication: the per-block graphs' host cost alone;
- ddp: `DistributedDataParallel(model)` compiled whole (Dynamo's DDPOptimizer splits the graph at
  bucket boundaries, so gradient all-reduces overlap the backward);
- ddp-view: the same with `gradient_as_bucket_view=True` (each gradient is a view of DDP's bucket:
  no copy back after the all-reduce; DDP still scales each gradient, one kernel per parameter), not
  in the default set;
- fsdp2: `fully_shard` on each transformer block and on the root, each block compiled
  (`block.compile(backend=...)`), the per-layer pattern.

Per run: median step time over the timed steps (CUDA events on a GPU), the slowest rank's; tokens per
second over all ranks; scaling efficiency = single-run step time / distributed step time (the same
per-GPU batch: 1.0 is linear scaling, 0.95 is 1.9x on 2 GPUs); peak allocated memory per GPU (the
largest rank's, less what earlier runs left allocated when it began); compile time (first step minus
the median); the first loss against eager's under the same wrapper. Every run is in try/except, so
one failure still prints the rest. Installs nothing.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import os
import statistics
import time
import traceback

import torch
import torch.distributed as dist

import tensorsmith  # noqa: F401 - registers the backend
from tensorsmith.bench.gpu import REPORTS, records_summary
from tensorsmith.bench.models.nanogpt import GPTConfig, NanoGPT, make_batch
from tensorsmith.bench.train_step import train_step

GPT2_SMALL = GPTConfig(vocab=50304, width=768, layers=12, heads=12, seq=1024)
QUICK = GPTConfig(vocab=50304, width=768, layers=4, heads=12, seq=256)
TINY = GPTConfig(vocab=256, width=64, layers=2, heads=2, seq=64)


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def _say(*args) -> None:
    if _rank() == 0:
        print(*args, flush=True)


def _build(wrapper: str, backend: str, cfg: GPTConfig, device: torch.device):
    """(the callable a step runs, the module whose parameters the optimizer steps)."""
    torch.manual_seed(0)
    model = NanoGPT(cfg).to(device)
    compiled = backend != "eager"
    if wrapper == "single":
        return (torch.compile(model, backend=backend) if compiled else model), model
    if wrapper == "regional":
        for block in model.blocks:
            if compiled:
                block.compile(backend=backend)
        return model, model
    if wrapper in ("ddp", "ddp-view"):
        from torch.nn.parallel import DistributedDataParallel as DDP
        ddp = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                  gradient_as_bucket_view=wrapper == "ddp-view")
        return (torch.compile(ddp, backend=backend) if compiled else ddp), ddp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh(device.type, (_world(),))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
        if compiled:
            block.compile(backend=backend)
    fully_shard(model, mesh=mesh)
    return model, model


class _Clock:
    """Step timing on the device's own clock: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def time_ms(self, fn) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3


@contextlib.contextmanager
def _rank_zero_prints():
    """Reports run on every rank (a step has collectives), but only rank 0 prints."""
    if _rank() == 0:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def _reports(names, step, label: str) -> None:
    """bench/gpu.py's --profile and --timeline for one (wrapper, backend), seen from rank 0."""
    for name in names:
        with _rank_zero_prints():
            REPORTS[name](step, label)


# Wrappers without communication: a rank runs them on its own, and they run without torchrun.
LOCAL_WRAPPERS = ("single", "regional")
WARMUP_STEPS = 3


def run_one(wrapper: str, backend: str, cfg: GPTConfig, batch: int, steps: int,
            device: torch.device, reports=(), warmup: int = WARMUP_STEPS, ab_knob: str | None = None) -> dict:
    """This rank's measurements for one (wrapper, backend); with `ab_knob`, only alternate()'s."""
    from tensorsmith.frontend import attention, report
    report.reset()
    attention.MATCHES.clear()
    # What earlier runs in this process left allocated is not this run's memory.
    held_before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    run, module = _build(wrapper, backend, cfg, device)
    opt = torch.optim.AdamW(module.parameters(), lr=1e-4)
    idx, targets = (t.to(device) for t in
                    make_batch(cfg, batch, torch.Generator().manual_seed(1 + _rank())))

    step = train_step(lambda: run(idx, targets), opt)
    clock = _Clock(device)
    clock.sync()
    t0 = time.perf_counter()
    first_loss = step().item()
    first_s = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    clock.sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if ab_knob:
        return {"ab": alternate(ab_knob, step, clock, steps)}
    times = [clock.time_ms(step) for _ in range(steps)]
    median = statistics.median(times)
    peak = (torch.cuda.max_memory_allocated(device) - held_before) / 1e9 if device.type == "cuda" \
        else float("nan")
    if reports and device.type == "cuda":
        _reports(reports, step, f"{backend} {wrapper}")
    if backend == "tensorsmith":
        _say(f"   rank 0: {records_summary()}")
    return {"median_ms": median, "compile_s": max(first_s - median / 1e3, 0.0),
            "peak_gb": peak, "held_before_gb": held_before / 1e9, "first_loss": first_loss}


AB_ROUNDS = 6


def alternate(knob: str, step, clock, steps: int) -> dict[str, float]:
    """Median step time with tensorsmith.config.<knob> on and off, in one process, alternating
    rounds of `steps` timed steps (one untimed step after each switch), the order flipped every
    round: separate runs of a 2-GPU step vary by several ms, more than many changes are worth.
    Only knobs read at run time (config.direct_launch) change anything here."""
    from tensorsmith import config
    if not isinstance(getattr(config, knob, None), bool):
        raise ValueError(f"--ab needs a boolean tensorsmith.config knob, not {knob!r}")
    before, times = getattr(config, knob), {True: [], False: []}
    try:
        for r in range(AB_ROUNDS):
            for value in (True, False) if r % 2 == 0 else (False, True):
                setattr(config, knob, value)
                step()
                clock.sync()
                times[value] += [clock.time_ms(step) for _ in range(steps)]
    finally:
        setattr(config, knob, before)
    return {f"{knob} on": statistics.median(times[True]), f"{knob} off": statistics.median(times[False])}


def _gather(value):
    if not dist.is_initialized():
        return [value]
    out = [None] * _world()
    dist.all_gather_object(out, value)
    return out


def _free(device):
    """Drop the compiled graphs first, then what they held: each run's peak memory is its own."""
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def benchmark(wrappers, backends, cfg, batch, steps, device, reports=(), warmup=WARMUP_STEPS,
              ab_knob=None) -> dict:
    """{(wrapper, backend): merged result over ranks, or {"failed": reason}}."""
    results = {}
    for wrapper in wrappers:
        for backend in backends:
            _say(f"-- {wrapper} {backend} ...")
            try:
                mine = run_one(wrapper, backend, cfg, batch, steps, device, reports, warmup, ab_knob)
            except Exception as e:  # noqa: BLE001 - one run failing still prints the rest
                traceback.print_exc(limit=-6)
                mine = {"failed": f"rank {_rank()}: {type(e).__name__}: "
                                  f"{(str(e).splitlines() or [''])[0][:200]}"}
            _free(device)
            ranks = _gather(mine)
            failed = [r["failed"] for r in ranks if "failed" in r]
            if failed:
                results[wrapper, backend] = {"failed": failed[0]}
            elif "ab" in mine:
                results[wrapper, backend] = {"ab": [r["ab"] for r in ranks]}
            else:
                results[wrapper, backend] = {
                    "median_ms": max(r["median_ms"] for r in ranks),
                    "compile_s": max(r["compile_s"] for r in ranks),
                    "peak_gb": max(r["peak_gb"] for r in ranks),
                    "held_before_gb": max(r["held_before_gb"] for r in ranks),
                    "first_losses": [r["first_loss"] for r in ranks]}
            _say(f"   {results[wrapper, backend]}")
    return results


def _row(wrapper, backend, r, results, world, tokens_per_rank):
    if "ab" in r:
        return f"| {wrapper} | {backend} | alternating, per rank: " + "; ".join(
            ", ".join(f"{name} {ms:.2f} ms" for name, ms in rank.items()) for rank in r["ab"]) + " |"
    if "failed" in r:
        return f"| {wrapper} | {backend} | failed | | | | | | | {r['failed']} |"
    ranks = 1 if wrapper in LOCAL_WRAPPERS else world
    tok_s = ranks * tokens_per_rank / (r["median_ms"] / 1e3)
    single = results.get(("single", backend), {})
    eff = (f"{single['median_ms'] / r['median_ms']:.2f}"
           if wrapper not in LOCAL_WRAPPERS and "median_ms" in single else "-")
    inductor = results.get((wrapper, "inductor"), {})
    vs_ind = f"{inductor['median_ms'] / r['median_ms']:.2f}x" if "median_ms" in inductor else "-"
    eager = results.get((wrapper, "eager"), {})
    err = "-"
    if "first_losses" in eager and backend != "eager":
        err = f"{max(abs(a - b) / abs(b) for a, b in zip(r['first_losses'], eager['first_losses'])):.1e}"
    compile_s = f"{r['compile_s']:.1f}" if backend != "eager" else "-"
    peak = f"{r['peak_gb']:.2f}" if r["peak_gb"] == r["peak_gb"] else "-"
    return (f"| {wrapper} | {backend} | {ranks} | {r['median_ms']:.2f} | {tok_s:,.0f} | {eff} | "
            f"{vs_ind} | {peak} | {compile_s} | {err} |")


def print_table(results, cfg, batch, steps, device, world):
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    versions = f"torch {torch.__version__}"
    if device.type == "cuda":
        try:
            import triton
            versions += f", Triton {triton.__version__}"
        except ImportError:
            pass
        versions += f", NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}"
    backend = dist.get_backend() if dist.is_initialized() else "none"
    print(f"\n== {world} x {name} ({versions}; {backend}); nanoGPT vocab {cfg.vocab}, width "
          f"{cfg.width}, {cfg.layers} layers, {cfg.heads} heads, seq {cfg.seq}, batch {batch} per "
          f"rank; AdamW, fp32{' (TF32 matmuls)' if device.type == 'cuda' else ''}; medians of {steps} "
          "steps, slowest rank ==")
    print("| wrapper | backend | ranks | median ms/step | tokens/s | scaling eff | vs inductor "
          "| peak GB/GPU | compile s | 1st loss rel err vs eager |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (wrapper, backend_), r in results.items():
        print(_row(wrapper, backend_, r, results, world, batch * cfg.seq))
    print("scaling eff = single-rank step time / distributed step time at the same per-rank batch "
          f"(tokens/s on {world} ranks over {world} x the single rank's); 1st loss rel err: each "
          "rank's first-step loss against eager's under the same wrapper, the largest.", flush=True)
    held = [f"{w} {b} {r['held_before_gb']:.2f} GB" for (w, b), r in results.items()
            if r.get("held_before_gb", 0.0) > 0.05]
    if held:
        print("peak GB/GPU leaves out what earlier runs in this process still had allocated when a run "
              "began: " + ", ".join(held), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--backend", default=None, help="process group backend (nccl on cuda, "
                        "gloo on cpu by default)")
    parser.add_argument("--backends", default="eager,inductor,tensorsmith",
                        help="torch.compile backends, comma-separated (eager: uncompiled)")
    parser.add_argument("--wrappers", default="single,ddp,fsdp2",
                        help="single (no communication: the one-GPU baseline), regional (single, each "
                             "block compiled on its own), ddp, ddp-view (gradient_as_bucket_view), fsdp2")
    parser.add_argument("--single", action="store_true",
                        help="only the single-rank runs (also what runs without torchrun)")
    parser.add_argument("--quick", action="store_true", help="4 layers, sequence 256")
    parser.add_argument("--tiny", action="store_true", help="a tiny model, for a CPU smoke run")
    parser.add_argument("--batch", type=int, default=8, help="per rank")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=WARMUP_STEPS, help="untimed steps after the first")
    parser.add_argument("--timeout", type=float, default=900, help="collective timeout, seconds")
    parser.add_argument("--profile", action="store_true",
                        help="rank 0's device time per kind of kernel and its top kernels, per run")
    parser.add_argument("--timeline", action="store_true",
                        help="rank 0's idle GPU time in one step and what its host did meanwhile")
    parser.add_argument("--host", action="store_true", help="rank 0's host time per step by function")
    parser.add_argument("--ab", metavar="KNOB", help="instead of the table's figures: each rank's median "
                        "step with tensorsmith.config.KNOB on and off, alternating in one process "
                        f"({AB_ROUNDS} rounds of --steps each)")
    args = parser.parse_args(argv)

    cfg = TINY if args.tiny else QUICK if args.quick else GPT2_SMALL
    launched = "RANK" in os.environ and "WORLD_SIZE" in os.environ
    if args.device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
        if launched:  # the ranks share the host's cores
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(os.environ["WORLD_SIZE"])))
    wrappers = args.wrappers.split(",")
    if args.single or not launched:
        wrappers = [w for w in wrappers if w in LOCAL_WRAPPERS] or ["single"]
    if launched:
        dist.init_process_group(args.backend or ("nccl" if args.device == "cuda" else "gloo"),
                                timeout=datetime.timedelta(seconds=args.timeout),
                                **({"device_id": device} if args.device == "cuda" else {}))
    try:
        reports = [name for name in REPORTS if getattr(args, name)]
        results = benchmark(wrappers, args.backends.split(","), cfg, args.batch, args.steps, device,
                            reports, args.warmup, args.ab)
        if _rank() == 0:
            print_table(results, cfg, args.batch, args.steps, device, _world())
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


if __name__ == "__main__":
    main()
