"""GPU self-check of CUDA-graph replay (runtime/cuda_graphs/), in one process that installs nothing:

1. parity: an MLP and a tiny nanoGPT trained a few AdamW steps through tensorsmith with CUDA graphs
   on and off vs eager (fp32, TF32 off): every loss, every final gradient and parameter; and that
   the graphs were replayed (the runners' counters), not merely compiled;
2. held outputs: losses kept in a list across training steps, and inference outputs kept across
   calls, must keep their values (a replay must never rewrite an output still referenced), while
   a loop that drops its outputs replays;
3. timing: a small nanoGPT (4 layers, seq 256, batch 8), where host overhead dominates: median
   wall time of a training step and of an inference call, eager and tensorsmith with graphs on/off.

Every row runs inside try/except, so one failure still prints the rest.

    python -m tensorsmith.bench.cuda_graphs_gpu
"""
from __future__ import annotations

import gc
import statistics
import time
import traceback
from collections import Counter

import torch
import torch.nn.functional as F

import tensorsmith
from tensorsmith.bench.gpu import max_relative_error
from tensorsmith.bench.models.nanogpt import GPTConfig, NanoGPT, make_batch
from tensorsmith.bench.models.small import MLP, TINY_GPT
from tensorsmith.bench.train_step import train_step
from tensorsmith import records
from tensorsmith.runtime import cuda

TIMED = GPTConfig(vocab=512, width=256, layers=4, heads=4, seq=256)
ROWS: list[tuple[str, str, str]] = []  # (check, result, detail)


def _row(check: str, ok: bool | None, detail: str) -> None:
    result = "ok" if ok else ("FAIL" if ok is not None else "-")
    ROWS.append((check, result, detail))
    print(f"[{result}] {check}: {detail}", flush=True)


def _guarded(check: str, fn) -> None:
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - one failing check still prints the rest
        traceback.print_exc(limit=-4)
        _row(check, False, f"error {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200])


def _fresh(graphs: bool) -> None:
    tensorsmith.config.cuda_graphs = graphs
    torch._dynamo.reset()
    records.reset()
    gc.collect()
    torch.cuda.empty_cache()


def counters() -> Counter:
    """Replays, captures and ordinary calls (by reason) of the graphs compiled since _fresh()."""
    compiled = {id(r) for r in records.RECORDS}
    total = Counter()
    for graph in list(cuda.LIVE):
        runner = graph.cuda_graph
        if runner is None or id(graph.record) not in compiled:
            continue
        total["replays"] += runner.replays
        total["captures"] += runner.captures
        total.update({f"ordinary: {k}": v for k, v in runner.ordinary.items()})
    return total


def _states() -> str:
    return "; ".join(f"{r.graph_id}={r.cuda_graph}" for r in records.RECORDS)


# -- 1. parity -----------------------------------------------------------------------------------
def _train(make, batches, loss_fn, backend: str | None, graphs: bool = True, keep: bool = False):
    """Losses (floats), the last step's gradients, the final parameters, counters; `keep`: the
    loss tensors are kept across steps and checked at the end."""
    _fresh(graphs)
    torch.manual_seed(0)
    model = make().cuda()
    run = model if backend is None else torch.compile(model, backend=backend)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses, kept, grads = [], [], []
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(run, batch)
        loss.backward()
        grads = [p.grad.detach().clone() for p in model.parameters()]
        opt.step()
        losses.append(loss.item())
        if keep:
            kept.append(loss)
    if keep:
        changed = [i for i, (t, v) in enumerate(zip(kept, losses)) if t.item() != v]
        if changed:
            raise AssertionError(f"kept losses changed after their step: steps {changed}")
    torch.cuda.synchronize()
    return losses, grads, [p.detach().clone() for p in model.parameters()], counters(), _states()


def _parity(name, make, batches, loss_fn) -> None:
    eager = _train(make, batches, loss_fn, None)
    on = _train(make, batches, loss_fn, "tensorsmith", graphs=True)
    off = _train(make, batches, loss_fn, "tensorsmith", graphs=False)

    def worst(a, b):
        return max([abs(x - y) / max(abs(y), 1e-30) for x, y in zip(a[0], b[0])]
                   + [max_relative_error(x, y) for x, y in (*zip(a[1], b[1]), *zip(a[2], b[2]))])

    vs_eager, vs_off, off_eager = worst(on, eager), worst(on, off), worst(off, eager)
    replays = on[3]["replays"]
    # Graphs must add no error of their own (on vs off); vs eager, the compiler's own fp32 error
    # (off vs eager: 3.9e-4 for the tiny nanoGPT's smallest gradients on an H100).
    ok = vs_eager < 1e-3 and vs_off < 1e-5 and replays > 0 and off[3]["replays"] == 0
    _row(f"{name} train parity", ok,
         f"max rel err on-vs-eager {vs_eager:.1e}, on-vs-off {vs_off:.1e}, off-vs-eager {off_eager:.1e}; "
         f"{dict(on[3])}; {on[4]}")


def parity() -> None:
    batches = [(torch.randn(32, 32, device="cuda"), torch.randint(0, 10, (32,), device="cuda"))
               for _ in range(6)]
    _guarded("MLP train parity", lambda: _parity(
        "MLP", MLP, batches, lambda m, b: F.cross_entropy(m(b[0]), b[1])))
    gen = torch.Generator().manual_seed(1)
    gpt_batches = [tuple(t.cuda() for t in make_batch(TINY_GPT, 4, gen)) for _ in range(6)]
    _guarded("tiny nanoGPT train parity", lambda: _parity(
        "tiny nanoGPT", lambda: NanoGPT(TINY_GPT), gpt_batches, lambda m, b: m(*b)))


# -- 2. held outputs -----------------------------------------------------------------------------
def held_losses() -> None:
    batches = [(torch.randn(32, 32, device="cuda"), torch.randint(0, 10, (32,), device="cuda"))
               for _ in range(6)]
    loss_fn = lambda m, b: F.cross_entropy(m(b[0]), b[1])
    eager = _train(MLP, batches, loss_fn, None)
    kept = _train(MLP, batches, loss_fn, "tensorsmith", keep=True)  # raises if a kept loss changed
    err = max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(kept[0], eager[0]))
    _row("kept losses keep their values", err < 1e-4 and kept[3]["replays"] > 0,
         f"max loss rel err vs eager {err:.1e}; {dict(kept[3])} (losses are handed out as copies)")


def held_inference() -> None:
    _fresh(True)
    torch.manual_seed(0)
    model = NanoGPT(TINY_GPT).cuda().eval()
    run = torch.compile(model, backend="tensorsmith")
    gen = torch.Generator().manual_seed(2)
    inputs = [make_batch(TINY_GPT, 4, gen)[0].cuda() for _ in range(8)]
    with torch.no_grad():
        expected = [model(x).clone() for x in inputs]
        for x in inputs[:3]:  # warm up and capture, outputs dropped
            run(x)
        dropped_replays = counters()["replays"]
        for x in inputs[:3]:
            run(x)
        dropped_replays = counters()["replays"] - dropped_replays
        outs = [run(x) for x in inputs]  # every output kept
        torch.cuda.synchronize()
    errs = [max_relative_error(o, e) for o, e in zip(outs, expected)]
    ok = max(errs) < 1e-4 and dropped_replays == 3 and counters()["ordinary: outputs held"] > 0
    _row("kept inference outputs keep their values", ok,
         f"max rel err {max(errs):.1e} over {len(outs)} kept outputs; replays while dropping outputs "
         f"{dropped_replays}/3; {dict(counters())}; {_states()}")


# -- 3. timing -----------------------------------------------------------------------------------
def _time(backend: str | None, graphs: bool, mode: str, steps: int = 30) -> tuple[float, Counter]:
    _fresh(graphs)
    torch.manual_seed(0)
    model = NanoGPT(TIMED).cuda()
    if mode == "infer":
        model.eval()
    run = model if backend is None else torch.compile(model, backend=backend)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(1)
    idx, targets = (t.cuda() for t in make_batch(TIMED, 8, gen))

    if mode == "train":
        step = train_step(lambda: run(idx, targets), opt)
    else:
        def step():
            with torch.no_grad():
                run(idx)

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), counters()


def timing() -> None:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    print(f"\n== nanoGPT vocab {TIMED.vocab}, width {TIMED.width}, {TIMED.layers} layers, seq {TIMED.seq}, "
          f"batch 8: median wall ms per call (synchronized) ==")
    print("| mode | eager | tensorsmith, no graphs | tensorsmith, CUDA graphs | speedup | replays |")
    print("|---|---:|---:|---:|---:|---|")
    for mode in ("train", "infer"):
        cells = {}
        for key, backend, graphs in (("eager", None, True), ("off", "tensorsmith", False),
                                     ("on", "tensorsmith", True)):
            try:
                cells[key] = _time(backend, graphs, mode)
            except Exception as e:  # noqa: BLE001 - an error cell, the rest still runs
                traceback.print_exc(limit=-4)
                cells[key] = (float("nan"), Counter({"error": f"{type(e).__name__}: {e}"[:100]}))
        off, on = cells["off"][0], cells["on"][0]
        replays = cells["on"][1]
        print(f"| {mode} | {cells['eager'][0]:.2f} | {off:.2f} | {on:.2f} | {off / on:.2f}x | {dict(replays)} |",
              flush=True)
        _row(f"timing {mode}", replays.get("replays", 0) > 0,
             f"eager {cells['eager'][0]:.2f} ms, no graphs {off:.2f} ms, graphs {on:.2f} ms")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def check_cuda_graphs() -> bool:
    """Run every check; print a table; True when all passed."""
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return False
    ROWS.clear()
    previous = tensorsmith.config.cuda_graphs
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        parity()
        _guarded("kept losses keep their values", held_losses)
        _guarded("kept inference outputs keep their values", held_inference)
        _guarded("timing", timing)
    finally:
        tensorsmith.config.cuda_graphs = previous
    print(f"\n== CUDA graphs self-check on {torch.cuda.get_device_name()} (torch {torch.__version__}) ==")
    print("| check | result | detail |")
    print("|---|---|---|")
    for check, result, detail in ROWS:
        print(f"| {check} | {result} | {detail} |")
    return all(result != "FAIL" for _, result, _ in ROWS)


if __name__ == "__main__":
    raise SystemExit(0 if check_cuda_graphs() else 1)
