"""`make bench` for now: the embedded nanoGPT-style model, eager vs tensorsmith, one table.

Measures a training step (forward, backward, AdamW) and inference: median step time over repeats
after warm-up, the first compiled call (compile included) separately, and the largest relative
error of compiled against eager (losses over the steps; logits at inference).
"""
from __future__ import annotations

import argparse
import copy
import platform

import torch

from .models.nanogpt import GPTConfig, NanoGPT, make_batch
from .timing import median_seconds, timed


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-12)).item()


def _train_step(model, opt, idx, targets):
    opt.zero_grad(set_to_none=True)
    loss = model(idx, targets)
    loss.backward()
    opt.step()
    return loss.detach()


def bench_train(cfg: GPTConfig, batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    eager = NanoGPT(cfg)
    compiled_model = copy.deepcopy(eager)
    compiled = torch.compile(compiled_model, backend="tensorsmith")
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in (eager, compiled_model)]
    batches = [make_batch(cfg, batch) for _ in range(3)]
    # Same weights, same batches: the losses of three steps must match.
    compiled_losses, first = [], None
    for i, (idx, targets) in enumerate(batches):
        loss, seconds = timed(lambda: _train_step(compiled, opts[1], idx, targets))
        compiled_losses.append(loss)
        first = seconds if i == 0 else first
    eager_losses = [_train_step(eager, opts[0], idx, targets) for idx, targets in batches]
    error = max(_relative(c, e) for c, e in zip(compiled_losses, eager_losses))
    idx, targets = batches[0]
    return {
        "eager": median_seconds(lambda: _train_step(eager, opts[0], idx, targets), repeats),
        "tensorsmith": median_seconds(lambda: _train_step(compiled, opts[1], idx, targets), repeats),
        "first_call": first, "error": error,
    }


def bench_infer(cfg: GPTConfig, batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = NanoGPT(cfg).eval()
    compiled = torch.compile(model, backend="tensorsmith")
    idx, _ = make_batch(cfg, batch)
    with torch.no_grad():
        out, first = timed(lambda: compiled(idx))
        error = _relative(out, model(idx))
        return {
            "eager": median_seconds(lambda: model(idx), repeats),
            "tensorsmith": median_seconds(lambda: compiled(idx), repeats),
            "first_call": first, "error": error,
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--small", action="store_true", help="a tiny model, for a quick check")
    args = parser.parse_args(argv)
    cfg = GPTConfig(vocab=64, width=32, layers=1, heads=2, seq=16) if args.small else GPTConfig()
    print(f"nanoGPT vocab={cfg.vocab} width={cfg.width} layers={cfg.layers} heads={cfg.heads} "
          f"seq={cfg.seq} batch={args.batch}; torch {torch.__version__}, {platform.machine()}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'mode':<10}{'eager ms':>10}{'tensorsmith ms':>16}{'ratio':>8}{'first call s':>14}"
          f"{'max rel err':>13}")
    for mode, run in (("train", bench_train), ("inference", bench_infer)):
        r = run(cfg, args.batch, args.repeats)
        print(f"{mode:<10}{r['eager'] * 1e3:>10.1f}{r['tensorsmith'] * 1e3:>16.1f}"
              f"{r['tensorsmith'] / r['eager']:>8.2f}{r['first_call']:>14.2f}{r['error']:>13.2e}")
    print("ratio = tensorsmith / eager time (lower is better); execution is the reference "
          "interpreter until code generation lands.")
    return 0
