"""GPU check and benchmark of the Triton backend, in one process that installs nothing:

1. parity: a few ops and two small models on CUDA through tensorsmith vs a float64 eager reference
   (relative error max|out - ref| / max|ref| over the output and every gradient; TF32 off), and
   whether each ran through generated Triton kernels;
2. the device-to-device copy bandwidth (bytes read + written), the memory-bound ceiling;
3. the benchmark: GPT-2 small in the nanoGPT style (vocab 50304, width 768, 12 layers, 12 heads,
   sequence 1024, batch 8, exact GELU, AdamW, float32 with TF32 matmuls allowed; `--bf16`: under
   bfloat16 autocast), train step and inference, eager vs inductor vs tensorsmith: median step time
   over CUDA events, cold compile time (first step minus the median), peak allocated memory, and
   the first step's loss (train) or logits (infer) against eager's.

Every backend runs inside try/except, so one failure still prints the rest.

    python -m tensorsmith.bench.gpu            # everything
    python -m tensorsmith.bench.gpu --quick    # a 4-layer, 256-token model, for a fast look
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import time
import traceback
from collections import Counter

import torch
import torch.nn.functional as F

import tensorsmith
from tensorsmith.bench.host_profile import print_host_profile
from tensorsmith.bench.kernel_profile import print_kernel_profile
from tensorsmith.bench.models.nanogpt import GPTConfig, NanoGPT, make_batch
from tensorsmith.bench.models.small import MLP, TINY_GPT
from tensorsmith.bench.step_timeline import print_step_timeline
from tensorsmith.bench.train_step import no_mark, train_step
from tensorsmith import records
from tensorsmith.compile import memory_budget
from tensorsmith.frontend import attention

GPT2_SMALL = GPTConfig(vocab=50304, width=768, layers=12, heads=12, seq=1024)
QUICK = GPTConfig(vocab=50304, width=768, layers=4, heads=12, seq=256)


def max_relative_error(actual, ref) -> float:
    """max |actual - ref| / max |ref|, in float64."""
    actual, ref = actual.detach().double(), ref.detach().double()
    return ((actual - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item() if ref.numel() else 0.0


def records_summary() -> str:
    graphs = records.RECORDS
    whole = [r.graph_id for r in graphs if r.whole_graph_fallback]
    kernels = sum(r.kernels for r in graphs)
    ops = sorted({f.target for r in graphs for f in r.fallbacks})
    text = f"{len(graphs)} graphs, {kernels} kernels"
    fused = [m.kernel for m in attention.MATCHES]
    if fused:
        text += f", attention fused x{len(fused)} ({', '.join(sorted(set(fused)))} kernels)"
    if whole:
        text += f", WHOLE-GRAPH FALLBACK {whole}: {graphs[0].whole_graph_fallback}"
    if ops:
        text += f", op fallbacks: {', '.join(ops)}"
    captures = Counter(r.cuda_graph or "undecided" for r in graphs)
    text += ", CUDA graphs: " + ", ".join(f"{state} x{n}" for state, n in captures.most_common())
    if memory_budget.PLANNED:
        budget, plan = memory_budget.PLANNED[-1]
        text += f", planned peak {plan.peak / 1e9:.2f} GB" + (f" (budget {budget / 1e9:.2f} GB)" if budget else "")
    return text


# -- parity -------------------------------------------------------------------------------------
def _op_cases(dev):
    w, b = torch.randn(768, device=dev), torch.randn(768, device=dev)
    mask = torch.tril(torch.ones(64, 64, dtype=torch.bool, device=dev))
    return {
        "softmax": (lambda x: F.softmax(x, -1), [torch.randn(64, 1000, device=dev)]),
        "layer_norm": (lambda x, w, b: F.layer_norm(x, (768,), w, b), [torch.randn(256, 768, device=dev), w, b]),
        "gelu": (lambda x: F.gelu(x), [torch.randn(300, 1001, device=dev)]),
        "cross_entropy(5000)": (lambda x: F.cross_entropy(x, torch.arange(64, device=dev) * 7),
                                [torch.randn(64, 5000, device=dev)]),
        "sum over dim 0": (lambda x: x.sum(0), [torch.randn(4096, 768, device=dev)]),
        "masked softmax": (lambda x: F.softmax(x.masked_fill(~mask, float("-inf")), -1),
                           [torch.randn(4, 64, 64, device=dev)]),
        "var_mean": (lambda x: torch.var_mean(x, dim=-1)[0] + x.amax(-1), [torch.randn(128, 33, device=dev)]),
        "argmax": (lambda x: x.argmax(-1).float() + x.max(-1).values, [torch.randn(16, 9000, device=dev)]),
    }


# Calls per parity case, each checked: the 1st launches through Triton's JIT, the 2nd directly
# (codegen/triton/launch.py) and is timed for CUDA graphs, the 3rd captures one, the 4th replays it.
PARITY_CALLS = 4


def _check(fn, inputs, module=None) -> tuple[float, str]:
    """Max relative error of the compiled outputs and gradients vs float64 eager, over PARITY_CALLS
    calls of the compiled function."""
    torch._dynamo.reset()
    records.reset()
    params = list(module.parameters()) if module is not None else []
    leaves = [x.detach().clone().requires_grad_(x.dtype.is_floating_point) for x in inputs]
    compiled = torch.compile(fn, backend="tensorsmith")
    calls, weight = [], None
    for _ in range(PARITY_CALLS):
        out = compiled(*leaves)
        weight = torch.randn_like(out) if weight is None else weight  # the same for every call
        grads = torch.autograd.grad((out * weight).sum(), [x for x in leaves if x.requires_grad] + params)
        calls.append((out.detach(), [g.detach() for g in grads]))
    ref_leaves = [x.detach().double().requires_grad_(x.dtype.is_floating_point) if x.dtype.is_floating_point
                  else x for x in inputs]
    if module is not None:
        module.double()
    ref = fn(*ref_leaves)
    ref_grads = torch.autograd.grad((ref * weight.double()).sum(),
                                    [x for x in ref_leaves if x.requires_grad] + list(module.parameters()
                                                                                      if module else []))
    if module is not None:
        module.float()
    errors = [max_relative_error(out, ref) for out, _ in calls]
    errors += [max_relative_error(g, r) for _, grads in calls for g, r in zip(grads, ref_grads)]
    return max(errors), records_summary()


def autocast_parity(dev) -> None:
    """tiny nanoGPT's loss and gradients under bf16 autocast: compiled vs eager under the same
    autocast, both measured against float64 (the graphs carry autocast's conversions)."""
    torch.manual_seed(0)
    gpt = NanoGPT(TINY_GPT).to(dev)
    idx, targets = (t.to(dev) for t in make_batch(TINY_GPT, 2))
    torch._dynamo.reset()
    records.reset()
    results = {}
    for name, fn in (("eager", gpt), ("tensorsmith", torch.compile(gpt, backend="tensorsmith"))):
        loss, grads = train_step(lambda: fn(idx, targets), autocast="cuda", grads_of=list(gpt.parameters()))()
        results[name] = [loss, *grads]
    summary = records_summary()
    gpt.double()
    loss = gpt(idx, targets)
    ref = [loss] + list(torch.autograd.grad(loss, list(gpt.parameters())))
    gpt.float()
    errs = {k: max(max_relative_error(a, r) for a, r in zip(v, ref)) for k, v in results.items()}
    status = "ok" if errs["tensorsmith"] <= max(1e-2, 2 * errs["eager"]) else "FAIL"
    print(f"{'bf16 autocast tiny nanoGPT':28s} rel err {errs['tensorsmith']:9.2e}  {status:4s}  "
          f"(eager bf16's own {errs['eager']:.2e}) {summary}", flush=True)


def parity(dev) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    print("\n== parity vs float64 eager (outputs and gradients, TF32 off) ==", flush=True)
    cases = dict(_op_cases(dev))
    mlp = MLP().to(dev)
    cases["model: MLP"] = (mlp, [torch.randn(64, 32, device=dev)])
    gpt = NanoGPT(TINY_GPT).to(dev)
    idx, targets = (t.to(dev) for t in make_batch(TINY_GPT, 2))
    cases["model: tiny nanoGPT loss"] = (lambda i, t: gpt(i, t), [idx, targets])
    for name, (fn, inputs) in cases.items():
        module = fn if isinstance(fn, torch.nn.Module) else (gpt if "nanoGPT" in name else None)
        try:
            err, summary = _check(fn, inputs, module)
            status = "ok" if err <= 1e-4 else "FAIL"
            print(f"{name:28s} rel err {err:9.2e}  {status:4s}  {summary}", flush=True)
        except Exception as e:  # noqa: BLE001 - keep going: report every case
            print(f"{name:28s} ERROR {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            traceback.print_exc(limit=-3)
    for check in (autocast_parity, index_check):
        try:
            check(dev)
        except Exception:  # noqa: BLE001 - keep going
            traceback.print_exc(limit=-3)


def index_check(dev) -> None:
    """An out-of-range token id must raise IndexOutOfRange: in a training step from loss.backward()
    (the forward's check is read after the backward's launches: runtime/index_checks.py), before
    the optimizer runs; in inference from the call itself."""
    from tensorsmith.errors import IndexOutOfRange

    torch._dynamo.reset()
    gpt = NanoGPT(TINY_GPT).to(dev)
    run = torch.compile(gpt, backend="tensorsmith")
    idx, targets = (t.to(dev) for t in make_batch(TINY_GPT, 2))
    for _ in range(3):  # compiled, timed for CUDA graphs, captured
        run(idx, targets).backward()
    bad = idx.clone()
    bad[0, 3] = TINY_GPT.vocab
    where = "the forward call"
    try:
        loss = run(bad, targets)
        where = "loss.backward()"
        loss.backward()
        where = "not raised"
    except IndexOutOfRange:
        pass
    with torch.no_grad():
        infer = torch.compile(gpt.eval(), backend="tensorsmith")
        infer(idx)
        try:
            infer(bad)
            infer_where = "not raised"
        except IndexOutOfRange:
            infer_where = "the call"
    ok = where == "loss.backward()" and infer_where == "the call"
    print(f"{'index check (bad token id)':28s} train: raised at {where}; inference: raised at {infer_where}  "
          f"{'ok' if ok else 'FAIL'}", flush=True)


# -- bandwidth ----------------------------------------------------------------------------------
def copy_bandwidth(dev) -> float:
    a = torch.empty(256 * 2**20, dtype=torch.float32, device=dev).normal_()
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(20):
        start.record()
        b.copy_(a)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * a.numel() * 4 / statistics.median(times) / 1e9


# -- benchmark ----------------------------------------------------------------------------------
def _free():
    """Drop the compiled graphs, then what they held: each backend's peak is its own."""
    torch._dynamo.reset()
    gc.collect()
    torch.cuda.empty_cache()
    left = torch.cuda.memory_allocated() / 1e9
    if left > 0.1:
        print(f"   note: {left:.2f} GB still allocated after freeing the last run", flush=True)


# Variants of tensorsmith benchmarked side by side: "tensorsmith:unfused+nographs" runs with these
# knobs of tensorsmith.config set so.
_VARIANTS = {"unfused": ("fuse_attention", False), "nographs": ("cuda_graphs", False),
             "nocheck": ("check_indices", False)}


@contextlib.contextmanager
def _variant(backend: str):
    """The backend's name for torch.compile, with the variant's config knobs set meanwhile."""
    name, _, options = backend.partition(":")
    saved = {}
    try:
        for option in filter(None, options.split("+")):
            knob, value = _VARIANTS[option]
            saved[knob] = getattr(tensorsmith.config, knob)
            setattr(tensorsmith.config, knob, value)
        yield name
    finally:
        for knob, value in saved.items():
            setattr(tensorsmith.config, knob, value)


def bench(backend: str, mode: str, cfg: GPTConfig, batch: int, steps: int, reference: dict,
          reports: tuple[str, ...] = (), bf16: bool = False) -> dict:
    with _variant(backend) as name:
        return _bench(name, mode, cfg, batch, steps, reference, reports, bf16)


# The reports --profile, --timeline and --host add after each run (bench/distributed.py has them too).
REPORTS = {"profile": print_kernel_profile, "timeline": print_step_timeline, "host": print_host_profile}


def _bench(backend: str, mode: str, cfg: GPTConfig, batch: int, steps: int, reference: dict,
           reports: tuple[str, ...], bf16: bool = False) -> dict:
    torch.manual_seed(0)
    model = NanoGPT(cfg).cuda()
    if mode == "infer":
        model.eval()
    run = model if backend == "eager" else torch.compile(model, backend=backend)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4) if mode == "train" else None
    gen = torch.Generator().manual_seed(1)
    idx, targets = (t.cuda() for t in make_batch(cfg, batch, gen))
    records.reset()
    attention.MATCHES.clear()
    memory_budget.PLANNED.clear()

    if mode == "train":
        step = train_step(lambda: run(idx, targets), opt, autocast="cuda" if bf16 else None)
    else:
        def step(mark=no_mark):  # mark(phase) after each phase (bench/step_timeline.py)
            with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                result = run(idx)[0]
                mark("forward")
                return result

    torch.cuda.synchronize()
    t0 = time.perf_counter()
    first = step()
    torch.cuda.synchronize()
    first_s = time.perf_counter() - t0
    key = mode
    if backend == "eager":
        reference[key] = first.float().cpu()
    error = max_relative_error(first.float().cpu(), reference[key]) if key in reference else float("nan")
    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    times, host = [], []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        t0 = time.perf_counter()
        step()
        host.append((time.perf_counter() - t0) * 1e3)  # until the step is queued (or synced)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    median = statistics.median(times)
    for report_name in reports:
        try:
            REPORTS[report_name](step, backend)
        except Exception:  # noqa: BLE001 - a report, not the measurement
            traceback.print_exc(limit=-2)
    result = {"median_ms": median, "host_ms": statistics.median(host), "compile_s": max(first_s - median / 1e3, 0.0) if backend != "eager" else None,
              "peak_gb": torch.cuda.max_memory_allocated() / 1e9, "error": error,
              "notes": records_summary() if backend == "tensorsmith" else ""}
    return result


def benchmark(cfg: GPTConfig, batch: int, steps: int, backends: list[str], modes: list[str],
              reports: tuple[str, ...] = (), bf16: bool = False) -> list:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    rows, reference = [], {}
    for mode in modes:
        for backend in backends:
            print(f"-- {mode} {backend} ...", flush=True)
            try:
                r = bench(backend, mode, cfg, batch, steps, reference, reports, bf16)
                rows.append((mode, backend, r))
                print(f"   {r}", flush=True)
                _free()
            except Exception as e:  # noqa: BLE001 - one backend failing still prints the rest
                rows.append((mode, backend, {"failed": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}))
                traceback.print_exc(limit=-4)
                _free()
    return rows


def print_table(rows, cfg, batch, bandwidth, bf16: bool = False):
    precision = "bf16 autocast" if bf16 else "fp32, TF32 matmuls"
    print(f"\n== nanoGPT vocab {cfg.vocab}, width {cfg.width}, {cfg.layers} layers, {cfg.heads} heads, "
          f"seq {cfg.seq}, batch {batch}; {precision}; copy bandwidth {bandwidth:.0f} GB/s ==")
    print("| mode | backend | median ms | host ms | vs eager | vs inductor | compile s | peak GB | rel err vs eager "
          "| notes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    base = {(m, b): r.get("median_ms") for m, b, r in rows}
    for mode, backend, r in rows:
        if "failed" in r:
            print(f"| {mode} | {backend} | failed | | | | | | | {r['failed'][:120]} |")
            continue
        eager, ind = base.get((mode, "eager")), base.get((mode, "inductor"))
        ratio = lambda b, r=r: f"{b / r['median_ms']:.2f}x" if b else "-"
        compile_s = f"{r['compile_s']:.1f}" if r["compile_s"] is not None else "-"
        print(f"| {mode} | {backend} | {r['median_ms']:.2f} | {r['host_ms']:.2f} | {ratio(eager)} | {ratio(ind)} | "
              f"{compile_s} | "
              f"{r['peak_gb']:.2f} | {r['error']:.1e} | {r['notes']} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 4-layer, 256-token model")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--backends", default="eager,inductor,tensorsmith",
                        help="also variants: tensorsmith:unfused, tensorsmith:nographs, tensorsmith:nocheck (no index "
                             "check), combined with +: tensorsmith:unfused+nographs")
    parser.add_argument("--modes", default="train,infer")
    parser.add_argument("--bf16", action="store_true", help="the benchmark under bfloat16 autocast")
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--skip-bench", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="each backend's device time per kind of kernel, and its top kernels")
    parser.add_argument("--timeline", action="store_true",
                        help="each backend's idle GPU time in one step, and what the host did meanwhile")
    parser.add_argument("--host", action="store_true",
                        help="each backend's host time per step by function (cProfile)")
    args = parser.parse_args(argv)
    import triton

    dev = torch.device("cuda")
    print(f"device {torch.cuda.get_device_name(dev)}, torch {torch.__version__}, triton {triton.__version__}, "
          f"tensorsmith {getattr(tensorsmith, '__version__', '')}", flush=True)
    if not args.skip_parity:
        parity(dev)
    bandwidth = copy_bandwidth(dev)
    print(f"\ndevice-to-device copy: {bandwidth:.0f} GB/s (read + write)", flush=True)
    if args.skip_bench:
        return
    cfg = QUICK if args.quick else GPT2_SMALL
    reports = tuple(name for name in REPORTS if getattr(args, name))
    rows = benchmark(cfg, args.batch, args.steps, args.backends.split(","), args.modes.split(","), reports,
                     args.bf16)
    print_table(rows, cfg, args.batch, bandwidth, args.bf16)


if __name__ == "__main__":
    main()
