"""Launching Triton kernels without Triton's per-launch Python: generated ones (KernelLaunch) and
the hand-written attention kernels (`launch`).

`kernel[grid](*args)` goes through JITFunction.run on every launch: it binds and specializes the
arguments, builds a cache key, looks the compiled kernel up and asks for the current device and
stream, all host time before the launcher's C code runs. Where a graph is not replayed as a CUDA
graph (FSDP2's per-block graphs, a regional compile), that host time is the step's, once per launch.
A generated kernel's arguments are tensors (and sizes it does not specialize on) and its grid is
fixed (or counted from the sizes), so after the graph's first call KernelLaunch holds the
compiled kernel and calls its launcher directly with the current stream.

The compiled kernel was specialized for 16-byte aligned pointers (compile/triton.py compiles it
ahead with dtypes standing in for the buffers, which Triton takes as aligned). A launch whose
checked tensors (all but the arena views, constants and flags, aligned by construction) are not
all aligned (a user's view at an odd offset) goes through the JIT, which compiles the kernel for
them, as does every launch while a launch hook (a profiler's) is set or config.direct_launch is
off, before the graph's first call, and under TRITON_INTERPRET.

A kernel of a graph with symbolic sizes also takes the sizes (ints Triton does not specialize on, so
one compiled kernel serves all values that fit int32, the type it was compiled for) and is
launched with a grid counted from them at each call (`over`).
"""
from __future__ import annotations

import torch

from ... import config
from .build import compile_and_load, interpreting

ALIGNMENT = 16
INT32_LIMIT = 2**31
SAMPLE_SIZE = 2  # what a size argument is compiled ahead with: an int32, like every size below 2**31
_current_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # (device index) -> handle


try:
    from triton import knobs as _knobs
except ImportError:  # an older Triton: no hooks to honour here, so no direct path either
    _knobs = None


def _launch_hooks_set() -> bool:
    """Whether a launch hook is set: a non-empty HookChain (Triton 3.5 on; an empty one is always
    there) or, in older Triton, any value but None. Asked at every launch, so no generator."""
    if _knobs is None:
        return True
    enter, leave = _knobs.runtime.launch_enter_hook, _knobs.runtime.launch_exit_hook
    return bool((enter is not None and getattr(enter, "calls", True)) or
                (leave is not None and getattr(leave, "calls", True)))


def argument_dtypes(buffers, kernel) -> list:
    """What stands in for a generated kernel's arguments when compiling it ahead: its buffers'
    dtypes, a sample value per size it takes, then its int32 index-check flag's dtype."""
    return [buffers[b].type.dtype.torch_dtype for b in kernel.args] + [SAMPLE_SIZE] * len(kernel.sizes) + \
        [torch.int32]


def static_grid(grid) -> tuple | None:
    """A kernel's launch grid as the launcher takes it (three ints), or None where it is counted
    from the sizes at each launch."""
    return None if any(isinstance(g, str) for g in grid) else _grid3(grid)


class KernelLaunch:
    """`launch(*tensors)`: one generated kernel over its fixed grid and warps, on the current
    stream (`launch.over(grid, *arguments)` where the grid is counted from the sizes); direct once
    `bind` found the compiled kernel."""

    __slots__ = ("jit", "grid", "num_warps", "checked", "direct", "device_index")

    def __init__(self, jit, grid: tuple, num_warps: int, checked: tuple[int, ...] | None = None):
        self.jit = jit
        self.grid = static_grid(grid)  # None: each launch gives it
        self.num_warps = num_warps
        # The arguments whose alignment each launch checks: None for all; the wrapper leaves out
        # its arena views, constants and flags, aligned by construction (runtime/memory.py).
        self.checked = checked
        self.direct = None  # (launcher, function, packed metadata) once bound
        self.device_index = 0

    def bind(self, dtypes: list[torch.dtype], device: torch.device) -> bool:
        """Find the kernel compiled for 16-byte aligned arguments of these dtypes (compiled ahead or
        at the first call: a cache hit) and hold its launcher; False where this Triton's compiled
        kernels lack the parts a direct launch needs."""
        with torch.cuda.device(device):
            compiled = compile_and_load(self.jit, *dtypes, grid=self.grid or (1, 1, 1),
                                        num_warps=self.num_warps)
        parts = _launcher_parts(compiled)
        if parts is None or len(self.jit.arg_names) != len(dtypes):
            return False
        self.direct, self.device_index = parts, device.index or 0
        return True

    def __call__(self, *args):
        direct = self.direct
        if direct is None or not config.direct_launch or _launch_hooks_set() or \
                _misaligned(args, self.checked):
            self.jit[self.grid](*args, num_warps=self.num_warps)
            return
        launcher, function, metadata = direct
        g0, g1, g2 = self.grid
        launcher(g0, g1, g2, _current_stream(self.device_index), function, metadata, None, None, None, *args)

    def over(self, grid: tuple, *args):
        """A launch over `grid` (counted from this call's sizes); sizes that do not fit int32 go
        through the JIT, which compiles the kernel for int64 ones."""
        direct = self.direct
        if direct is None or not config.direct_launch or _launch_hooks_set() or \
                _misaligned(args, self.checked) or _wide(args):
            self.jit[grid](*args, num_warps=self.num_warps)
            return
        launcher, function, metadata = direct
        g0, g1, g2 = _grid3(grid)
        launcher(g0, g1, g2, _current_stream(self.device_index), function, metadata, None, None, None, *args)


def _wide(args) -> bool:
    """Whether an integer argument does not fit the int32 the kernel was compiled for."""
    for a in args:
        if type(a) is int and not -INT32_LIMIT <= a < INT32_LIMIT:
            return True
    return False

def _misaligned(args, checked: tuple[int, ...] | None = None) -> bool:
    """Whether any of `args` (only those at `checked`, when given) is not ALIGNMENT-aligned."""
    for i in range(len(args)) if checked is None else checked:
        if args[i].data_ptr() % ALIGNMENT:
            return True
    return False


def _grid3(grid) -> tuple[int, int, int]:
    """A launch grid as the launcher takes it: three sizes, the missing ones 1."""
    return tuple(grid) + (1,) * (3 - len(grid))


def _launcher_parts(compiled) -> tuple | None:
    """(launcher, function, packed metadata) of a compiled kernel, the launcher built and the
    module loaded on the current device; None where this Triton's compiled kernels lack one."""
    parts = tuple(getattr(compiled, name, None) for name in ("run", "function", "packed_metadata"))
    return None if any(p is None for p in parts) else parts


# Hand-written kernels (attention's) take integers too (strides, sizes), on which Triton
# specializes; their launches look the compiled kernel up by the exact values of those, each
# tensor's dtype and alignment, the constexprs and the device: a key at least as fine as Triton's
# own, so it never picks a kernel compiled for other arguments.
_BY_ARGUMENTS: dict = {}
_MAX_KEYS = 4096  # distinct keys kept; then the table starts over


def _argument_key(args) -> tuple:
    return tuple((a.dtype, a.data_ptr() % ALIGNMENT == 0) if isinstance(a, torch.Tensor) else (type(a), a)
                 for a in args)


def launch(kernel, grid: tuple, args: tuple, options: dict) -> None:
    """`kernel[grid](*args, **options)` on the current CUDA stream; directly through the compiled
    launcher once this key was launched before."""
    if _current_stream is None or not config.direct_launch or _launch_hooks_set() or interpreting():
        kernel[grid](*args, **options)
        return
    device = torch.cuda.current_device()
    key = (kernel, device, _argument_key(args), tuple(options.items()))
    entry = _BY_ARGUMENTS.get(key)
    if entry is None:
        entry = _compiled_entry(kernel, grid, args, options)
        if len(_BY_ARGUMENTS) >= _MAX_KEYS:
            _BY_ARGUMENTS.clear()
        _BY_ARGUMENTS[key] = entry
    launcher, function, metadata, tail = entry
    g0, g1, g2 = _grid3(grid)
    launcher(g0, g1, g2, _current_stream(device), function, metadata, None, None, None, *args, *tail)


def _compiled_entry(kernel, grid, args, options) -> tuple:
    """(launcher, function, packed metadata, the constexpr values after `args` in signature order)
    of the kernel compiled for these arguments (Triton's warmup: a cache hit once compiled)."""
    parts = _launcher_parts(kernel.warmup(*args, grid=grid, **options))
    if parts is None:
        raise RuntimeError("this Triton's compiled kernels have no launcher to call directly")
    tail = tuple(options[p.name] if p.name in options else p.default for p in kernel.params[len(args):])
    return (*parts, tail)
