"""Where one step's device time goes, by kind of kernel, for any backend (bench/gpu.py --profile).

Comparing backends needs the same buckets for each: matrix products (cuBLAS/CUTLASS), attention
kernels (ours, PyTorch's flash/efficient ones), generated kernels (ours, or Inductor's `triton_*`),
copies and memsets, and the rest (ATen's own elementwise and reduction kernels). For our generated
kernels the bandwidth over the bytes of the buffers they touch is printed too: an upper bound on the
bytes moved (broadcast reads count whole), set against the measured copy bandwidth.
"""
from __future__ import annotations

import re
from collections.abc import Container

import torch

_MATMUL = re.compile(r"gemm|xmma|cutlass|nvjet|splitK|cublas|sm90_|sm80_", re.IGNORECASE)
_ATTENTION = re.compile(r"^_(forward|delta|dkdv|dq)_kernel$|flash|fmha|attention", re.IGNORECASE)
KINDS = ("matmul", "attention", "generated", "copies", "other")


def kernel_kind(name: str, ours: Container[str]) -> str:
    """The bucket of a device kernel named `name`; `ours` are tensorsmith's generated kernels."""
    if name in ours or name.startswith("triton_"):
        return "generated"
    if "Memcpy" in name or "Memset" in name:
        return "copies"
    if _ATTENTION.search(name):
        return "attention"
    if _MATMUL.search(name):
        return "matmul"
    return "other"


def _generated(facts: str) -> dict:
    """{kernel name: fact} over the live CUDA graphs: `facts` is "kernel_bytes" or "kernel_sources"."""
    from tensorsmith.runtime.cuda import LIVE

    found = {}
    for graph in list(LIVE):
        found.update(getattr(graph, facts)())
    return found


def print_kernel_profile(step, label: str, top: int = 40) -> dict[str, float]:
    """Profile one call of `step`; print its device time per kind and its top kernels. Returns the
    milliseconds per kind (and 'total')."""
    from torch.profiler import ProfilerActivity, profile

    ours = label.startswith("tensorsmith")
    moved = _generated("kernel_bytes") if ours else {}
    lines = _generated("kernel_sources") if ours else {}
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if getattr(e, "device_time_total", 0) > 0]
    events.sort(key=lambda e: -e.device_time_total)
    kind = {e.key: kernel_kind(e.key, moved) for e in events}
    ms = dict.fromkeys(KINDS, 0.0)
    launches = dict.fromkeys(KINDS, 0)
    for e in events:
        ms[kind[e.key]] += e.device_time_total / 1e3
        launches[kind[e.key]] += e.count
    ms["total"] = sum(ms[k] for k in KINDS)
    print(f"   {label}: {ms['total']:.2f} ms of device time per step: " +
          ", ".join(f"{k} {ms[k]:.2f} ms ({launches[k]}x)" for k in KINDS))
    ours = [e for e in events if e.key in moved]
    if ours:
        seconds = sum(e.device_time_total for e in ours) / 1e6
        touched = sum(moved[e.key] * e.count for e in ours)
        print(f"   generated kernels move at most {touched / seconds / 1e9:.0f} GB/s over the buffers they touch")
    for e in events[:top]:
        avg_us = e.device_time_total / max(e.count, 1)
        gbs = f"{moved[e.key] / (avg_us * 1e3):7.0f} GB/s" if e.key in moved else ""
        line = lines.get(e.key, "")
        print(f"   {e.device_time_total / 1e3:8.2f} ms {e.count:4d}x {avg_us:8.1f} us {gbs:>12s}  "
              f"{kind[e.key]:9s} {e.key[:80]}" + (f"  <- {line.strip()[:70]}" if line else ""))
    return ms
