"""Combine functions for tl.reduce in our Triton kernels (flash attention and its mask pre-pass).

tl.sum, tl.max and the like are jitted in Triton's standard library, decorated for the mode Triton
was imported in, which the interpreter cannot call when TRITON_INTERPRET was set later. Callers
take these through `kernel_module` (triton_mode.py), decorated as their own kernels are.
"""
from __future__ import annotations

import triton
import triton.language as tl
from triton import knobs

_INTERPRETED = knobs.runtime.interpret  # how this copy's functions were decorated


@triton.jit
def add(a, b):
    return a + b


@triton.jit
def maximum(a, b):
    return tl.maximum(a, b)


@triton.jit
def minimum(a, b):
    return tl.minimum(a, b)


@triton.jit
def bitwise_or(a, b):
    return a | b
