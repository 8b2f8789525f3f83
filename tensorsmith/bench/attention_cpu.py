"""CPU attention kernels side by side: tensorsmith's C++ flash kernel (kernels/flash_cpp.py),
PyTorch's CPU flash attention (aten._scaled_dot_product_flash_attention_for_cpu and its backward),
and the math version (matmul, masked_fill, softmax, matmul; backward through autograd).

    python -m tensorsmith.bench.attention_cpu [--rounds N] [--threads 1,2]

Prints the median milliseconds of forward and forward+backward per shape and thread count. The
three are timed in interleaved rounds (order rotating), so a slow spell of a shared machine lands
on each of them; at one thread the clock is the thread's CPU time, else wall time.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time

import torch

from ..kernels import flash_cpp

SHAPES = [  # B, H, L, D, causal
    (8, 4, 128, 64, True),    # the CPU default model
    (4, 12, 512, 64, True),
    (4, 12, 512, 64, False),
]


def _ours(q, k, v, causal, scale, grad):
    def fwd():
        return flash_cpp.forward(q, k, v, None, causal, scale)

    def fwd_bwd():
        out, lse = fwd()
        return flash_cpp.backward(grad, q, k, v, out, lse, None, causal, scale)
    return fwd, fwd_bwd


def _torch_flash(q, k, v, causal, scale, grad):
    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu

    def fwd():
        return op(q, k, v, 0.0, causal, scale=scale)

    def fwd_bwd():
        out, lse = fwd()
        return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward(
            grad, q, k, v, out, lse, 0.0, causal, scale=scale)
    return fwd, fwd_bwd


def _math(q, k, v, causal, scale, grad):
    L, S = q.shape[-2], k.shape[-2]
    above = torch.ones(L, S, dtype=torch.bool).triu(1) if causal else None

    def attend(q, k, v):
        s = (q @ k.transpose(-1, -2)) * scale
        if above is not None:
            s = s.masked_fill(above, float("-inf"))
        return torch.softmax(s, dim=-1) @ v

    def fwd():
        with torch.no_grad():
            return attend(q, k, v)

    def fwd_bwd():
        qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
        return torch.autograd.grad(attend(qq, kk, vv), (qq, kk, vv), grad)
    return fwd, fwd_bwd


IMPLEMENTATIONS = {"tensorsmith": _ours, "torch flash": _torch_flash, "math": _math}


def _clock(threads: int):
    return time.thread_time if threads == 1 else time.perf_counter


def measure(shape, threads: int, rounds: int) -> dict[str, tuple[float, float]]:
    """{implementation: (forward ms, forward+backward ms)}, medians over interleaved rounds."""
    B, H, L, D, causal = shape
    torch.manual_seed(0)
    q, k, v, grad = (torch.randn(B, H, L, D) for _ in range(4))
    scale = 1 / math.sqrt(D)
    clock = _clock(threads)
    steps = {name: make(q, k, v, causal, scale, grad) for name, make in IMPLEMENTATIONS.items()}
    times = {(name, i): [] for name in steps for i in range(2)}
    for step_pair in steps.values():  # warm up (and build our kernel)
        for step in step_pair:
            step()
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            for i, step in enumerate(steps[name]):
                start = clock()
                step()
                times[name, i].append(clock() - start)
    return {name: tuple(statistics.median(times[name, i]) * 1e3 for i in range(2)) for name in names}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", default=f"1,{torch.get_num_threads()}",
                        help="comma-separated thread counts (default: 1 and all)")
    args = parser.parse_args(argv)
    counts = sorted({int(t) for t in args.threads.split(",")})
    before = torch.get_num_threads()
    header = f"{'shape (B,H,L,D)':<22}{'causal':<8}{'threads':>7}  " + "  ".join(
        f"{name + ' fwd':>16}{name + ' f+b':>16}" for name in IMPLEMENTATIONS)
    print("median ms (forward; forward+backward)")
    print(header)
    try:
        for shape in SHAPES:
            for threads in counts:
                torch.set_num_threads(threads)
                result = measure(shape, threads, args.rounds)
                B, H, L, D, causal = shape
                print(f"{(B, H, L, D)!s:<22}{causal!s:<8}{threads:>7}  " + "  ".join(
                    f"{result[name][0]:>16.2f}{result[name][1]:>16.2f}" for name in IMPLEMENTATIONS),
                    flush=True)
    finally:
        torch.set_num_threads(before)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
