"""`python -m tensorsmith.bench.dynamic`: a workload whose shapes change, as a user runs it.

A Hugging Face GPT-2 config (small on the CPU, GPT-2 small geometry on a GPU) answers requests of
12 different lengths (one forward each), then `generate()`s 96 tokens greedily with the default
dynamic cache: every decode step has a new key/value length. Each backend runs in a fresh process
twice: with empty compile caches (cold) and again with the caches the first run filled (warm). The
table gives the whole time (compiles included), the time of the decode steps after the first few,
how many graphs the backend compiled, and whether the tokens equal eager's.

    python -m tensorsmith.bench.dynamic                  # eager, inductor, tensorsmith on the CPU
    python -m tensorsmith.bench.dynamic --device cuda --backends inductor,tensorsmith
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from .child import run_json

_CHILD = "--child"
LENGTHS = (5, 9, 14, 17, 23, 31, 38, 44, 52, 61, 70, 77)  # the 12 request lengths
NEW_TOKENS = 96
STEADY_FROM = 16  # decode steps before this one count as warm-up in the steady per-token time


def _model(device: str):
    import torch

    from tensorsmith.bench.torchvision_stubs import torchvision_without_ops
    torchvision_without_ops()
    import transformers

    if device == "cpu":
        cfg = transformers.GPT2Config(n_layer=2, n_embd=128, n_head=4, vocab_size=1000, n_positions=256)
    else:
        cfg = transformers.GPT2Config(n_positions=1024)
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(cfg).to(device).eval(), cfg.vocab_size


def _child(backend: str, device: str) -> dict:
    """One process's run: requests, then generation; returns the measurements and tokens."""
    import torch

    model, vocab = _model(device)
    eager_forward = model.forward
    if backend != "eager":
        import tensorsmith  # noqa: F401  (registers the backend)
        model.forward = torch.compile(model.forward, backend=backend)
    gen = torch.Generator().manual_seed(1)
    requests = [torch.randint(0, vocab, (1, n), generator=gen).to(device) for n in LENGTHS]
    prompt = torch.randint(0, vocab, (1, 12), generator=gen).to(device)
    step_times = []

    def timed_forward(*args, **kwargs):
        began = time.perf_counter()
        out = forward(*args, **kwargs)
        if device != "cpu":
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - began)
        return out

    forward, model.forward = model.forward, timed_forward
    began = time.perf_counter()
    with torch.no_grad():
        for ids in requests:
            model(ids)
        step_times.clear()
        tokens = model.generate(prompt, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=0)
    if device != "cpu":
        torch.cuda.synchronize()
    total = time.perf_counter() - began
    steady = step_times[STEADY_FROM:]
    compiled = 0
    if backend == "tensorsmith":
        from tensorsmith import records
        compiled = sum(max(r.specializations, 1) for r in records.RECORDS if not r.whole_graph_fallback)
    model.forward = eager_forward
    return {"total_s": total, "decode_ms": 1e3 * sum(steady) / max(len(steady), 1),
            "graphs_compiled": compiled, "tokens": tokens.tolist()}


def _run(backend: str, device: str, cache: str) -> dict:
    env = dict(os.environ, TRITON_CACHE_DIR=f"{cache}/triton", TORCHINDUCTOR_CACHE_DIR=f"{cache}/inductor",
               TENSORSMITH_CACHE_DIR=f"{cache}/tensorsmith")
    return run_json([sys.executable, "-m", "tensorsmith.bench.dynamic", _CHILD, backend, device], env=env)


def main(argv=None) -> None:
    if argv is None and len(sys.argv) > 3 and sys.argv[1] == _CHILD:
        print(json.dumps(_child(sys.argv[2], sys.argv[3])), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", default="eager,inductor,tensorsmith")
    args = parser.parse_args(argv)
    rows, reference = [], None
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as cache:
            for caches in ("cold", "warm"):
                result = _run(backend, args.device, cache)
                if backend == "eager" and reference is None:
                    reference = result.get("tokens")
                rows.append((backend, caches, result))
                if backend == "eager":
                    break  # eager compiles nothing: one run
    if reference is None:
        reference = _run("eager", args.device, tempfile.mkdtemp()).get("tokens")
    inductor = {c: r["total_s"] for b, c, r in rows if b == "inductor" and "total_s" in r}
    print(f"12 requests (lengths {LENGTHS[0]}..{LENGTHS[-1]}) + generate({NEW_TOKENS} tokens), {args.device}")
    print("| backend | caches | total s | vs inductor | decode ms/token | graphs compiled | tokens |")
    print("|---|---|---:|---:|---:|---:|---|")
    for backend, caches, r in rows:
        if "error" in r:
            print(f"| {backend} | {caches} | error: {r['error']} | | | | |")
            continue
        ratio = f"{r['total_s'] / inductor[caches]:.2g}x" if caches in inductor else "-"
        same = "same as eager" if r["tokens"] == reference else "DIFFERENT"
        print(f"| {backend} | {caches} | {r['total_s']:.2f} | {ratio} | {r['decode_ms']:.2f} | "
              f"{r['graphs_compiled'] or '-'} | {same} |")


if __name__ == "__main__":
    main()
