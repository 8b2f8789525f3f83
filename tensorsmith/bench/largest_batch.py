"""`python -m tensorsmith.bench.largest_batch`: the largest batch that trains, per model and backend,
and the step time at a fixed batch, in one table.

A training step (forward, backward, AdamW; bfloat16 autocast on a GPU) runs in a fresh process per
measurement, so that an out-of-memory error or a compile cache cannot leak into the next one. Its
peak is the allocator's peak over the whole run, the first (compiling, capturing) step included
(on the CPU: the process's peak resident memory). Peak memory grows linearly with the batch, so
two runs (at `--batch` and twice it) give the bytes per sample and the fixed part; the largest
batch they predict for the device's memory is then run, and stepped down by a tenth until it fits
(at most three tries): the table reports that verified batch, not the prediction. Backend
`tensorsmith+budget` is tensorsmith under `TENSORSMITH_MEMORY_BUDGET` (`--budget`, default 0.85 of
the device's memory: the optimizer's state is outside the planned step).

    python -m tensorsmith.bench.largest_batch --device cuda --models gpt2,llama1b
    python -m tensorsmith.bench.largest_batch --models tiny --capacity-mb 2000   # the CPU, a pretend capacity
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from .child import run_json

BACKENDS = "eager,inductor,tensorsmith,tensorsmith+budget"
SEQ = 1024
TRIES = 3
MAX_GROWTH = 64  # the largest batch predicted is at most this many times the base batch


def _model(name: str, device: str):
    """(model, loss of a batch of token ids, vocab, sequence length) for `name`."""
    import torch

    from .models.nanogpt import GPTConfig, NanoGPT
    from .models.small import TINY_GPT
    if name in ("tiny", "gpt2"):
        cfg = TINY_GPT if name == "tiny" else GPTConfig(vocab=50304, width=768, layers=12, heads=12, seq=SEQ)
        model = NanoGPT(cfg).to(device)
        return model, lambda m, ids: m(ids, ids), cfg.vocab, cfg.seq
    if name == "llama1b":
        import transformers
        cfg = transformers.LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                       num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                                       max_position_embeddings=SEQ)
        with torch.device(device):
            model = transformers.LlamaForCausalLM(cfg)
        return model, lambda m, ids: m(input_ids=ids, labels=ids).loss, cfg.vocab_size, SEQ
    raise SystemExit(f"unknown model {name!r} (tiny, gpt2, llama1b)")


def _one_run(name: str, backend: str, batch: int, device: str) -> dict:
    """In the child: two training steps at `batch`; the peak over both and the second's time."""
    import torch

    from .memory import peak_rss
    from .train_step import train_step
    torch.manual_seed(0)
    model, loss_of, vocab, seq = _model(name, device)
    run = model
    if backend != "eager":
        import tensorsmith  # noqa: F401  (registers the backend)
        run = torch.compile(model, backend=backend.split("+")[0])
    ids = torch.randint(0, vocab, (batch, seq), device=device)
    step = train_step(lambda: loss_of(run, ids), torch.optim.AdamW(model.parameters(), lr=1e-4),
                      autocast="cuda" if device == "cuda" else None)
    try:
        step()
        began = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
    except torch.OutOfMemoryError:
        return {"error": "out of memory"}
    step_ms = 1e3 * (time.perf_counter() - began)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else peak_rss()
    return {"peak": peak, "step_ms": step_ms}


def _measure(args, name: str, backend: str, batch: int) -> dict:
    """`_one_run` in a fresh process (its error, or its crash, as the result)."""
    env = dict(os.environ)
    if backend.endswith("+budget"):
        env["TENSORSMITH_MEMORY_BUDGET"] = args.budget
    command = [sys.executable, "-m", "tensorsmith.bench.largest_batch", "--one-run", name, backend, str(batch),
               "--device", args.device]
    return run_json(command, env=env, timeout=args.run_timeout)


def _fits(result: dict, capacity: int) -> bool:
    return "peak" in result and result["peak"] <= capacity


def largest(args, name: str, backend: str, capacity: int) -> dict:
    """One row: the base batch's peak and step time, bytes per sample, the predicted and the
    verified largest batch."""
    base, double = _measure(args, name, backend, args.batch), _measure(args, name, backend, 2 * args.batch)
    row = {"base": base}
    if not (_fits(base, capacity) and "peak" in double):
        row["error"] = base.get("error") or double.get("error") or "the base batch does not fit"
        return row
    per_sample = max((double["peak"] - base["peak"]) / args.batch, 1.0)
    fixed = base["peak"] - per_sample * args.batch
    batch = predicted = min(max(int((capacity - fixed) // per_sample), args.batch), MAX_GROWTH * args.batch)
    row.update(per_sample=per_sample, predicted=predicted)
    for _ in range(TRIES):
        if _fits(_measure(args, name, backend, batch), capacity):
            row["largest"] = batch
            return row
        batch = max(int(batch * 0.9), args.batch)
    row["largest"] = None
    return row


def _capacity(args) -> int:
    if args.capacity_mb:
        return int(args.capacity_mb * 2**20)
    import torch
    return torch.cuda.get_device_properties(0).total_memory


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="tiny")
    parser.add_argument("--backends", default=BACKENDS)
    parser.add_argument("--batch", type=int, default=4, help="the base batch (and twice it) for the fit")
    parser.add_argument("--budget", default="0.85", help="TENSORSMITH_MEMORY_BUDGET of the +budget rows")
    parser.add_argument("--capacity-mb", type=float, help="memory to fit in (default: the GPU's)")
    parser.add_argument("--run-timeout", type=float, default=300.0)
    parser.add_argument("--one-run", nargs=3, metavar=("MODEL", "BACKEND", "BATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_run:
        name, backend, batch = args.one_run
        print(json.dumps(_one_run(name, backend, int(batch), args.device)), flush=True)
        return
    capacity = _capacity(args)
    print(f"largest training batch within {capacity / 2**30:.1f} GiB; {args.device}; base batch {args.batch}")
    print("| model | backend | peak GB at base batch | step ms at base batch | MB per sample "
          "| predicted largest | largest that fits | vs eager |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        eager = None
        for backend in args.backends.split(","):
            row = largest(args, name, backend, capacity)
            base = row["base"]
            if "error" in row:
                print(f"| {name} | {backend} | error: {row['error']} | | | | | |", flush=True)
                continue
            if backend == "eager":
                eager = row["largest"]
            ratio = f"{row['largest'] / eager:.2f}x" if eager and row["largest"] else "-"
            print(f"| {name} | {backend} | {base['peak'] / 1e9:.2f} | {base['step_ms']:.1f} | "
                  f"{row['per_sample'] / 1e6:.1f} | {row['predicted']} | {row['largest'] or 'none'} | {ratio} |",
                  flush=True)


if __name__ == "__main__":
    main()
