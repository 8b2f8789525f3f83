"""GPU check of float16/bfloat16 in generated Triton kernels, in one process that installs nothing.

    python -m tensorsmith.bench.half_gpu            # parity table, then the autocast step timing
    python -m tensorsmith.bench.half_gpu --no-time  # parity only

1. ops: small bf16/fp16 graphs on CUDA through tensorsmith vs eager PyTorch on the same inputs
   (eager computes each op in float32 and rounds to the half type; the kernels do the same, so
   expect 0-1 ulp for single ops and a few for chains): the most ulps apart, the relative error
   max|out - eager| / max|eager| over finite values, whether NaN/inf sit at the same places, and
   the compiled graphs' kernels, library calls and op fallbacks.
2. models: an MLP and a tiny nanoGPT train step (loss and every gradient) under
   torch.autocast("cuda", torch.bfloat16), compiled vs eager under the same autocast, both also
   measured against float64.
3. timing: a nanoGPT train step (4 layers, width 768, sequence 256, batch 8) under bf16 autocast:
   eager vs tensorsmith with half values kept out of kernels (op-by-op through PyTorch, as before)
   vs in kernels.

Each row runs with tensorsmith.config.half_kernels on (the "half off" rows with it off).
Every row runs inside try/except, so one failure still prints the rest.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import traceback

import torch
import torch.nn.functional as F

import tensorsmith  # noqa: F401 - registers the backend
from tensorsmith.bench.models.nanogpt import GPTConfig, NanoGPT, make_batch
from tensorsmith.bench.models.small import MLP, TINY_GPT
from tensorsmith.bench.train_step import train_step
from tensorsmith import records

TIMED_GPT = GPTConfig(vocab=50304, width=768, layers=4, heads=12, seq=256)


@contextlib.contextmanager
def half_fusion(on: bool):
    """Half values in generated kernels (on) or through PyTorch op by op (off), meanwhile."""
    saved = tensorsmith.config.half_kernels
    tensorsmith.config.half_kernels = on
    try:
        yield
    finally:
        tensorsmith.config.half_kernels = saved


def _ordered(t: torch.Tensor) -> torch.Tensor:
    bits = t.view(torch.int16).int() & 0xFFFF
    magnitude = bits & 0x7FFF
    return torch.where(bits >= 0x8000, -magnitude, magnitude)


def ulps(actual: torch.Tensor, expected: torch.Tensor) -> int | None:
    """The most ulps between two half tensors at finite places (None for other dtypes)."""
    if actual.dtype not in (torch.float16, torch.bfloat16) or actual.dtype != expected.dtype:
        return None
    finite = torch.isfinite(expected) & torch.isfinite(actual)
    if not finite.any():
        return 0
    return int((_ordered(actual[finite]) - _ordered(expected[finite])).abs().max())


def _rel(actual, ref) -> float:
    actual, ref = actual.detach().double(), ref.detach().double()
    finite = torch.isfinite(ref) & torch.isfinite(actual)
    if not finite.any():
        return 0.0
    return ((actual - ref)[finite].abs().max() / ref[finite].abs().max().clamp_min(1e-30)).item()


def _same_specials(actual, ref) -> bool:
    if not actual.dtype.is_floating_point:
        return torch.equal(actual, ref)
    return torch.equal(torch.isnan(actual), torch.isnan(ref)) and torch.equal(
        actual.isinf() & (actual > 0), ref.isinf() & (ref > 0)) and torch.equal(
        actual.isinf() & (actual < 0), ref.isinf() & (ref < 0))


def counts() -> str:
    """The compiled graphs' kernels, library calls, op fallbacks and whole-graph fallbacks."""
    graphs = records.RECORDS
    kernels = sum(r.kernels for r in graphs)
    library = sum(r.library_calls for r in graphs)
    ops = sorted({f.target for r in graphs for f in r.fallbacks})
    whole = [r.graph_id for r in graphs if r.whole_graph_fallback]
    text = f"{len(graphs)} graphs, {kernels} kernels, {library} library calls"
    if ops:
        text += f", op fallbacks: {', '.join(ops)}"
    if whole:
        text += f", WHOLE-GRAPH FALLBACK {whole}: {graphs[0].whole_graph_fallback}"
    return text


# -- ops ----------------------------------------------------------------------------------------
def _op_cases(dev):
    def h(*shape, dtype=torch.bfloat16, scale=1.0):
        return (torch.randn(*shape, device=dev) * scale).to(dtype)

    cases = {}
    for name, dt in (("bf16", torch.bfloat16), ("f16", torch.float16)):
        w, b = h(768, dtype=dt), h(768, dtype=dt)
        special = h(64, 1000, dtype=dt, scale=3)
        special[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
        cases.update({
            f"{name} add": (lambda x, y: x + y, [h(4096, 1024, dtype=dt), h(4096, 1024, dtype=dt)], 0),
            f"{name} exp": (torch.exp, [h(4096, 1024, dtype=dt)], 1),
            f"{name} gelu (erf)": (F.gelu, [h(300, 1001, dtype=dt, scale=2)], 1),
            f"{name} chain add,mul,gelu,tanh,exp": (
                lambda x, y: torch.tanh(F.gelu(x * y + x)).exp(), [h(300, 1001, dtype=dt),
                                                                  h(300, 1001, dtype=dt)], 3),
            f"{name} softmax (NaN/inf row)": (lambda x: F.softmax(x, -1), [special], 1),
            f"{name} layer_norm": (lambda x, w, b: F.layer_norm(x, (768,), w, b),
                                   [h(256, 768, dtype=dt, scale=3), w, b], 2),
            f"{name} sum rows (fp32 acc)": (lambda x: x.sum(-1), [h(64, 5000, dtype=dt)], 2),
            f"{name} amax/where": (lambda x, y: torch.where(x > y, x, y).amax(-1),
                                   [h(128, 999, dtype=dt), h(128, 999, dtype=dt)], 0),
            f"{name} explicit casts": (lambda x, y, dt=dt: ((x.float() * 3).to(dt).float() + y.float()).to(dt),
                                       [h(1000, 333, dtype=dt), h(1000, 333, dtype=dt)], 0),
            f"{name} + float32 promotion": (lambda x, y: x * 0.1 + y,
                                            [h(1000, 333, dtype=dt), torch.randn(1000, 333, device=dev)],
                                            0),
        })
    x = h(512, 512, dtype=torch.float16, scale=40)
    x[0, 0], x[0, 1] = 70.0, -70.0
    cases["f16 overflow to inf"] = (lambda x: (x * 1000, x.exp()), [x], 0)
    return cases


def op_parity(dev) -> list[tuple]:
    rows = []
    torch.manual_seed(0)
    for name, (fn, inputs, max_ulps) in _op_cases(dev).items():
        try:
            torch._dynamo.reset()
            records.reset()
            with half_fusion(True):
                out = torch.compile(fn, backend="tensorsmith")(*inputs)
            ref = fn(*inputs)
            outs = out if isinstance(out, tuple) else (out,)
            refs = ref if isinstance(ref, tuple) else (ref,)
            worst = max((ulps(a, e) or 0) for a, e in zip(outs, refs))
            rel = max(_rel(a, e) for a, e in zip(outs, refs))
            specials = all(_same_specials(a, e) for a, e in zip(outs, refs))
            dtypes = all(a.dtype == e.dtype for a, e in zip(outs, refs))
            ok = worst <= max_ulps and specials and dtypes and rel <= 1e-2
            rows.append((name, f"{worst}", f"{rel:.1e}", "yes" if specials else "NO",
                         "ok" if ok else "FAIL", counts()))
        except Exception as e:  # noqa: BLE001 - keep going: report every case
            rows.append((name, "-", "-", "-", "ERROR", f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"))
            traceback.print_exc(limit=-3)
    return rows


# -- models -------------------------------------------------------------------------------------
def _autocast_grads(fn, params, args, dev):
    loss, grads = train_step(lambda: fn(*args), autocast=dev.type, grads_of=params)()
    return [loss, *grads]


def model_parity(dev) -> list[tuple]:
    rows = []
    torch.manual_seed(0)
    mlp = MLP().to(dev)
    x, y = torch.randn(64, 32, device=dev), torch.randint(0, 10, (64,), device=dev)
    gpt = NanoGPT(TINY_GPT).to(dev)
    idx, targets = (t.to(dev) for t in make_batch(TINY_GPT, 2))
    models = {
        "bf16 autocast MLP train step": (mlp, lambda m: F.cross_entropy(m(x.to(next(m.parameters()).dtype)), y)),
        "bf16 autocast tiny nanoGPT train step": (gpt, lambda m: m(idx, targets)),
    }
    for name, (module, loss_of) in models.items():
        try:
            torch._dynamo.reset()
            records.reset()
            params = list(module.parameters())
            with half_fusion(True):
                compiled = torch.compile(module, backend="tensorsmith")
                got = _autocast_grads(loss_of, params, [compiled], dev)
            summary = counts()
            eager = _autocast_grads(loss_of, params, [module], dev)
            module.double()
            loss = loss_of(module)
            ref = [loss] + list(torch.autograd.grad(loss, list(module.parameters())))
            module.float()
            vs_eager = max(_rel(a, e) for a, e in zip(got, eager))
            err = max(_rel(a, r) for a, r in zip(got, ref))
            eager_err = max(_rel(a, r) for a, r in zip(eager, ref))
            ok = vs_eager <= 1e-2 or err <= 2 * eager_err
            rows.append((name, "-", f"{vs_eager:.1e}", f"f64: {err:.1e} (eager {eager_err:.1e})",
                         "ok" if ok else "FAIL", summary))
        except Exception as e:  # noqa: BLE001 - keep going
            rows.append((name, "-", "-", "-", "ERROR", f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"))
            traceback.print_exc(limit=-3)
    return rows


# -- timing -------------------------------------------------------------------------------------
def time_step(dev, variant: str, steps: int = 10) -> tuple:
    torch.manual_seed(0)
    torch._dynamo.reset()
    records.reset()
    model = NanoGPT(TIMED_GPT).to(dev)
    idx, targets = (t.to(dev) for t in make_batch(TIMED_GPT, 8, torch.Generator().manual_seed(1)))
    run = model if variant == "eager" else torch.compile(model, backend="tensorsmith")
    step = train_step(lambda: run(idx, targets), autocast="cuda", grads_of=list(model.parameters()))

    with half_fusion(variant != "tensorsmith, half off"):
        first = step()
        for _ in range(2):
            step()
        torch.cuda.synchronize()
        times = []
        for _ in range(steps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    return first, statistics.median(times), (counts() if variant != "eager" else "")


def timing(dev) -> None:
    print(f"\n== bf16 autocast train step (forward + grads), nanoGPT width {TIMED_GPT.width}, "
          f"{TIMED_GPT.layers} layers, seq {TIMED_GPT.seq}, batch 8 ==")
    print("| variant | median ms | loss rel diff vs eager | graphs |")
    print("|---|---:|---:|---|")
    eager_loss = None
    for variant in ("eager", "tensorsmith, half off", "tensorsmith, half in kernels"):
        try:
            (loss, _), ms, summary = time_step(dev, variant)
            if eager_loss is None:
                eager_loss = loss
            print(f"| {variant} | {ms:.2f} | {_rel(loss, eager_loss):.1e} | {summary} |", flush=True)
        except Exception as e:  # noqa: BLE001 - keep going
            print(f"| {variant} | failed | | {type(e).__name__}: {str(e).splitlines()[0][:100]} |")
            traceback.print_exc(limit=-3)
        torch.cuda.empty_cache()


def print_rows(rows) -> None:
    print("| case | max ulps vs eager | rel err vs eager | NaN/inf as eager | status | compiled graphs |")
    print("|---|---:|---:|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-time", action="store_true", help="skip the autocast step timing")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    rows = op_parity(dev) + model_parity(dev)
    print("\n== float16/bfloat16 through generated Triton kernels vs eager ==")
    print_rows(rows)
    if not args.no_time:
        timing(dev)


if __name__ == "__main__":
    main()
