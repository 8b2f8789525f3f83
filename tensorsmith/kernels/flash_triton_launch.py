"""Host side shared by the Triton flash-attention kernels' forward (flash_triton.py) and backward
(flash_triton_backward.py): launches as data (`Launch`), so that running and compiling ahead read
the same arguments; the first config that fits the GPU; the mask's arguments and its pre-pass
(tile_ranges.py); block and precision choices.
"""
from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import torch
import triton
from triton.runtime.errors import OutOfResources

from ..codegen.triton.build import compile_and_load
from ..codegen.triton.launch import launch
from .tile_ranges import Job, Ranges, prepass
from .triton_mode import interpreting, kernel_module

LOG2E = 1.4426950408889634


def head_block(D: int) -> int:
    """D padded to a power of two, at least 16 (the smallest tl.dot operand)."""
    return max(16, triton.next_power_of_2(D))


def precision(dtype: torch.dtype) -> str:
    """tl.dot's input_precision: TF32 for float32 exactly when PyTorch's float32 matmuls use it.
    Under the interpreter "numpy": flash_triton_tiles.dot then multiplies in float32 (numpy),
    whatever the dtype."""
    if interpreting():
        return "numpy"
    if dtype == torch.float32:
        return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"
    return "tf32"  # ignored for 16-bit inputs; the target's default


def device_guard(t: torch.Tensor | torch.device):
    """The tensor's (or the device's) CUDA device made current, where Triton compiles and launches."""
    device = t.device if isinstance(t, torch.Tensor) else t
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def mask_args(mask: torch.Tensor | None, q: torch.Tensor):
    """(tensor, its four strides, MASK_KIND): 0 no mask, 1 bool, 2 additive."""
    if mask is None:
        return q, (0, 0, 0, 0), 0
    if mask.dtype == torch.bool:
        return mask.view(torch.uint8), tuple(mask.stride()), 1
    return mask, tuple(mask.stride()), 2


class _Pointer:
    """What Triton's warmup reads of a meta tensor argument: its dtype, and an address with the
    alignment the real tensor will have (allocations are 16-byte aligned, plus its storage offset)."""

    def __init__(self, t: torch.Tensor):
        self.dtype = t.dtype
        self.address = t.storage_offset() * t.element_size()

    def data_ptr(self) -> int:
        return self.address


class Launch(NamedTuple):
    """One kernel launch as data, so that running it and compiling it ahead read the same arguments."""
    kernel: Any  # a @triton.jit function
    grid: tuple
    args: tuple  # tensors (real, or meta when only compiled) and scalars
    options: dict  # constexprs, num_warps, num_stages

    def run(self) -> None:
        launch(self.kernel, self.grid, self.args, self.options)  # directly, once compiled

    def compile(self) -> None:
        """Compile without launching, then build and load the launcher and the GPU module, as the
        first launch would; raises OutOfResources where the kernel does not fit the GPU."""
        args = [_Pointer(a) if isinstance(a, torch.Tensor) and a.is_meta else a for a in self.args]
        compile_and_load(self.kernel, *args, grid=self.grid, **self.options)


_FIRST_FIT: dict = {}


def first_fit(key, configs: list, probe):
    """The first of `configs` whose kernel (the Launch probe(config)) fits the GPU, remembered per
    key: one past its shared memory raises OutOfResources when compiled and loaded, before any
    launch. Several threads may race to fill in a key; they write the same index."""
    if interpreting():
        return configs[0]
    if key not in _FIRST_FIT:
        for i, config in enumerate(configs):
            try:
                probe(config).compile()
            except OutOfResources:
                if i == len(configs) - 1:
                    raise
                continue
            _FIRST_FIT[key] = i
            break
    return configs[_FIRST_FIT[key]]


def mask_ranges(m, m_strides, mask_kind: int, is_causal: bool, B, H, Lq, Lk, jobs: list[Job]):
    """([Launch] of the mask's pre-pass, [Ranges] per job) for the kernels' loop bounds (see
    tile_ranges.py); without a mask no pre-pass, and the kernels bound their loops by the causal
    diagonal alone (the Ranges then point anywhere and are never read)."""
    if mask_kind == 0:
        return [], [Ranges(m, 0, 0)] * len(jobs)
    specs, ranges = prepass(kernel_module("tensorsmith.kernels.tile_ranges", interpreting()), m,
                            m_strides, mask_kind, is_causal, B, H, Lq, Lk, jobs)
    return [Launch(*spec) for spec in specs], ranges
