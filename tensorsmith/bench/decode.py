"""`python -m tensorsmith.bench.decode`: per-token latency of Hugging Face `generate()`, as users
run it, eager vs Inductor vs tensorsmith in one run.

Per model, batch and cache (`static`: `cache_implementation="static"`, every decode step the same
shapes; `dynamic`: the default cache, one longer each step), each backend generates NEW_TOKENS
greedy tokens after a PROMPT-token prompt, twice; the second run's decode steps after the first
WARM ones give the steady per-token latency (median). Inductor runs as its users would pick it:
`mode="reduce-overhead"` (CUDA graphs) with the static cache on a GPU, its default otherwise;
`inductor:MODE` names a mode (`inductor:default`: none). The
table also gives the first run's whole time (compiles included), how many graphs tensorsmith
compiled, and the first step at which the tokens differ from eager's (none: identical).

Each row runs in its own process, so that a backend that crashes the interpreter (a segfault in a
compiled kernel's launcher, say) becomes that row's error, not the end of the table. `generate()`
runs with `disable_compile=True`: with the static cache on a GPU it would otherwise compile the
forward itself, with Inductor, around the backend the row measures.

Models: `gpt2` (GPT-2 small geometry), `llama1b` (a 1.1B Llama: TinyLlama's geometry), `tiny`
(2-layer GPT-2, for the CPU); random weights, in bfloat16 on a GPU (float32 on the CPU).

    python -m tensorsmith.bench.decode --device cuda --models gpt2,llama1b --batches 1,8
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from .child import run_json

PROMPT = 32
NEW_TOKENS = 64
WARM = 8  # decode steps of the timed run not counted


def _model(name: str, device: str):
    import torch
    import transformers

    from .torchvision_stubs import torchvision_without_ops
    torchvision_without_ops()
    if name == "tiny":
        cfg = transformers.GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, n_positions=256)
        cls = transformers.GPT2LMHeadModel
    elif name == "gpt2":
        cfg, cls = transformers.GPT2Config(n_positions=1024), transformers.GPT2LMHeadModel
    elif name == "llama1b":
        cfg = transformers.LlamaConfig(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                       num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                                       max_position_embeddings=2048)
        cls = transformers.LlamaForCausalLM
    else:
        raise SystemExit(f"unknown model {name!r} (tiny, gpt2, llama1b)")
    torch.manual_seed(0)
    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    with torch.device(device):
        model = cls(cfg).to(dtype).eval()
    return model, cfg.vocab_size


def _generate(model, prompt, cache: str, new_tokens: int, times: list | None):
    import torch
    settings = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                    disable_compile=True)
    if cache == "static":
        settings["cache_implementation"] = "static"
    forward = model.forward

    def timed(*args, **kwargs):
        began = time.perf_counter()
        out = forward(*args, **kwargs)
        if prompt.is_cuda:
            torch.cuda.synchronize()
        if times is not None:
            times.append(time.perf_counter() - began)
        return out

    model.forward = timed
    try:
        with torch.no_grad():
            return model.generate(prompt, **settings)
    finally:
        model.forward = forward


def _run(model, vocab, backend: str, batch: int, cache: str, device: str, new_tokens: int, warm: int) -> dict:
    import torch
    torch._dynamo.reset()
    eager = model.forward
    if backend != "eager":
        backend, _, mode = backend.partition(":")
        options = {}
        if backend == "inductor" and cache == "static" and device != "cpu" and not mode:
            mode = "reduce-overhead"
        if mode and mode != "default":
            options["mode"] = mode
        model.forward = torch.compile(eager, backend=backend, **options)
    if backend == "tensorsmith":
        from tensorsmith import records
        records.reset()
    prompt = torch.randint(0, vocab, (batch, PROMPT), generator=torch.Generator().manual_seed(1)).to(device)
    try:
        began = time.perf_counter()
        tokens = _generate(model, prompt, cache, new_tokens, None)
        first = time.perf_counter() - began
        times: list = []
        _generate(model, prompt, cache, new_tokens, times)
    except Exception as e:  # noqa: BLE001 - a row of the table, not the end of the run
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"}
    finally:
        model.forward = eager
    graphs = "-"
    if backend == "tensorsmith":
        from tensorsmith import records
        symbolic = sum(r.symbolic for r in records.RECORDS)
        graphs = f"{sum(max(r.specializations, 1) for r in records.RECORDS)}" + \
            (f" ({symbolic} symbolic)" if symbolic else "")
    return {"first_s": first, "token_ms": 1e3 * statistics.median(times[1 + warm:]), "graphs": graphs,
            "tokens": tokens[:, PROMPT:].tolist()}


def _row_command(args, name: str, batch: int, cache: str, backend: str) -> list:
    return [sys.executable, "-m", "tensorsmith.bench.decode", "--device", args.device, "--models", name,
            "--batches", str(batch), "--caches", cache, "--backends", backend,
            "--new-tokens", str(args.new_tokens), "--warm", str(args.warm), "--one-row"]


def _in_child(args, name: str, batch: int, cache: str, backend: str) -> dict:
    """One row, run by `_one_row` in a fresh process; a crash or a hang is that row's error."""
    return run_json(_row_command(args, name, batch, cache, backend), timeout=args.row_timeout)


def _first_difference(tokens, reference) -> str:
    if reference is None or tokens is None:
        return "?"
    steps = [step for row, ref in zip(tokens, reference) for step, (a, b) in enumerate(zip(row, ref)) if a != b]
    return "none" if not steps else str(min(steps))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="tiny")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--caches", default="static,dynamic")
    parser.add_argument("--backends", default="eager,inductor,tensorsmith")
    parser.add_argument("--new-tokens", type=int, default=NEW_TOKENS)
    parser.add_argument("--warm", type=int, default=WARM, help="decode steps of the timed run not counted")
    parser.add_argument("--row-timeout", type=float, default=900.0, help="seconds a row may take")
    parser.add_argument("--one-row", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_row:
        _one_row(args)
        return
    print(f"generate(): {PROMPT}-token prompt, {args.new_tokens} new tokens, greedy; {args.device}")
    print("| model | batch | cache | backend | first run s | ms/token | vs inductor | graphs "
          "| tokens differ from step |")
    print("|---|---:|---|---|---:|---:|---:|---|---|")
    for name in args.models.split(","):
        for batch in map(int, args.batches.split(",")):
            for cache in args.caches.split(","):
                results = {b: _in_child(args, name, batch, cache, b) for b in args.backends.split(",")}
                reference = results.get("eager", {}).get("tokens")
                # Against the first Inductor row that ran (reduce-overhead may crash: then its default).
                inductor = next((r["token_ms"] for b, r in results.items()
                                 if b.startswith("inductor") and "token_ms" in r), None)
                for backend, r in results.items():
                    if "error" in r:
                        print(f"| {name} | {batch} | {cache} | {backend} | error: {r['error']} | | | | |")
                        continue
                    ratio = f"{r['token_ms'] / inductor:.2f}x" if inductor else "-"
                    print(f"| {name} | {batch} | {cache} | {backend} | {r['first_s']:.1f} | {r['token_ms']:.2f} | "
                          f"{ratio} | {r['graphs']} | {_first_difference(r['tokens'], reference)} |", flush=True)


def _one_row(args) -> None:
    """The child's side of `_in_child`: one model, batch, cache and backend; prints one JSON line."""
    import tensorsmith  # noqa: F401  (registers the backend)
    model, vocab = _model(args.models, args.device)
    print(json.dumps(_run(model, vocab, args.backends, int(args.batches), args.caches, args.device,
                          args.new_tokens, args.warm)), flush=True)


if __name__ == "__main__":
    main()
