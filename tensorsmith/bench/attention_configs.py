"""Sweep of the Triton flash-attention kernels' tile configs on the GPU (installs nothing), to choose
the defaults in kernels/flash_triton.py (`_forward_configs`) and flash_triton_backward.py
(`_configs`): each candidate (BLOCK_M, BLOCK_N, num_warps, num_stages) is forced as the only config,
compiled, checked against the default's result, and timed with triton.testing.do_bench.

The inputs are GPT-2 small's attention as the compiled model passes it: q, k and v strided views
of one (B, L, 3, H, D) projection, causality given as the tril bool mask broadcast over (B, H), or
as is_causal; float32 with TF32 on, and bfloat16.

    python -m tensorsmith.bench.attention_configs                      # float32 (TF32), tril mask
    python -m tensorsmith.bench.attention_configs --dtypes bfloat16 --causal
"""
from __future__ import annotations

import argparse
import itertools
import traceback
from unittest import mock

import torch

from tensorsmith.bench.gpu import max_relative_error
from tensorsmith.kernels import flash_triton, flash_triton_backward


def _inputs(dtype, B=8, H=12, L=1024, D=64):
    qkv = torch.randn(B, L, 3, H, D, device="cuda", dtype=dtype)
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    mask = torch.tril(torch.ones(L, L, dtype=torch.bool, device="cuda"))[None, None].expand(B, H, L, L)
    return q, k, v, mask, torch.randn(B, H, L, D, device="cuda", dtype=dtype)


def _candidates(resident_sizes, streamed_sizes, warps, stages):
    return [(r, s, w, st) for r, s, w, st in itertools.product(resident_sizes, streamed_sizes, warps, stages)
            if r >= s]


def _time(fn) -> float:
    import triton.testing

    return triton.testing.do_bench(fn, warmup=10, rep=50)


def _trials(run, patch_for, candidates) -> list:
    """(ms, config, max relative difference from the default's result, or why it failed) per
    candidate: `run()` -> a tensor or tuple of tensors, with `patch_for(config)` forcing the config."""
    flash_triton._FIRST_FIT.clear()
    ref = run()
    results = []
    for config in candidates:
        with patch_for(config):
            flash_triton._FIRST_FIT.clear()
            try:
                got = run()
                pairs = zip(got, ref) if isinstance(ref, tuple) else [(got, ref)]
                results.append((_time(run), config, max(max_relative_error(g, r) for g, r in pairs)))
            except Exception as e:  # noqa: BLE001 - a config that does not fit
                results.append((float("inf"), config, f"{type(e).__name__}"))
    flash_triton._FIRST_FIT.clear()
    return results


def sweep_forward(q, k, v, mask, is_causal, candidates):
    scale = q.shape[-1] ** -0.5
    return _trials(lambda: flash_triton.forward(q, k, v, mask, is_causal, scale)[0],
                   lambda c: mock.patch.object(flash_triton, "_forward_configs", lambda *_: [c]), candidates)


def sweep_backward(q, k, v, mask, is_causal, do, candidates, queries_outer: bool):
    """Time the whole backward with one kernel's config forced (dK/dV, or dQ when queries_outer)."""
    scale = q.shape[-1] ** -0.5
    flash_triton._FIRST_FIT.clear()
    out, lse = flash_triton.forward(q, k, v, mask, is_causal, scale)
    default = flash_triton_backward._configs

    def patch_for(config):
        def forced(block_d, itemsize, queries_outer, swept=queries_outer):
            return [config] if queries_outer == swept else default(block_d, itemsize, queries_outer)
        return mock.patch.object(flash_triton_backward, "_configs", forced)

    return _trials(lambda: flash_triton_backward.backward(do, q, k, v, out, lse, mask, is_causal, scale),
                   patch_for, candidates)


def _print(title, results, default, top=6):
    results = sorted(results, key=lambda r: r[0])
    base = next((ms for ms, c, _ in results if c == default), None)
    print(f"\n{title} (default {default}: {base if base is None else f'{base:.3f}'} ms)")
    for ms, config, err in results[:top]:
        ratio = f"{ms / base:.2f}x" if base else ""
        print(f"   {config}  {ms:.3f} ms  {ratio}  max rel diff vs default {err if isinstance(err, str) else f'{err:.1e}'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float32", help="e.g. float32,bfloat16")
    parser.add_argument("--causal", action="store_true", help="also with is_causal instead of the mask")
    args = parser.parse_args(argv)
    torch.backends.cuda.matmul.allow_tf32 = True
    for dtype in (getattr(torch, name) for name in args.dtypes.split(",")):
        torch.manual_seed(0)
        q, k, v, mask, do = _inputs(dtype)
        itemsize = q.element_size()
        forms = [("tril mask", mask, False)] + ([("is_causal", None, True)] if args.causal else [])
        for label, m, causal in forms:
            try:
                forward = _candidates((64, 128), (32, 64, 128), (4, 8), (2, 3, 4))
                _print(f"{dtype} {label}: forward", sweep_forward(q, k, v, m, causal, forward),
                       flash_triton._forward_configs(64, itemsize)[0])
                backward = _candidates((64, 128), (16, 32, 64), (4, 8), (1, 2, 3))
                kv = [(s, r, w, st) for r, s, w, st in backward]
                _print(f"{dtype} {label}: backward, dK/dV config (BLOCK_M, BLOCK_N, ...)",
                       sweep_backward(q, k, v, m, causal, do, kv, False),
                       flash_triton_backward._configs(64, itemsize, False)[0])
                _print(f"{dtype} {label}: backward, dQ config (BLOCK_M, BLOCK_N, ...)",
                       sweep_backward(q, k, v, m, causal, do, backward, True),
                       flash_triton_backward._configs(64, itemsize, True)[0])
            except Exception:  # noqa: BLE001 - keep going
                traceback.print_exc(limit=-3)


if __name__ == "__main__":
    main()
