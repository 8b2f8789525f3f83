"""Load generated Triton source as a Python module, through the compile cache (Triton's JIT reads a
kernel's source from its file, and compiles each kernel on its first launch)."""
from __future__ import annotations

import importlib.util
import os
import sys
import time

import torch
import triton

from ...log import log
from ...cache import content_key, get_or_build


def interpreting() -> bool:
    """Whether Triton runs kernels through its CPU interpreter (TRITON_INTERPRET=1), read anew at
    each compile: tests turn it on for their own module only."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def compile_and_load(kernel, *args, **options):
    """Compile the @triton.jit `kernel` for these arguments without launching it (Triton's warmup),
    then build its launcher and load it on the current device, as its first launch would — Triton
    otherwise does both there, on the calling thread, and building a launcher runs a C compiler.
    Raises OutOfResources where the kernel does not fit the GPU."""
    began = time.perf_counter()
    compiled = kernel.warmup(*args, **options)
    load = getattr(compiled, "_init_handles", None)  # Triton 3.x; older ones load at launch
    if load is not None:
        load()
    warps = f" ({options['num_warps']} warps)" if "num_warps" in options else ""
    log(2, f"compiled and loaded {getattr(compiled, 'name', kernel)}{warps} "
           f"in {(time.perf_counter() - began) * 1e3:.0f} ms")
    return compiled


def load_module(source: str) -> tuple[object, bool]:
    """The module defined by `source` (from the cache when built before) and whether it was a hit."""
    key = content_key("triton", source, triton.__version__, torch.__version__, str(interpreting()))

    def build(directory: str) -> None:
        with open(f"{directory}/kernels.py", "w") as f:
            f.write(source)

    path, hit = get_or_build(key, "kernels.py", build)
    name = f"tensorsmith_triton_{key[:16]}"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # Triton resolves a kernel's globals through its module
        spec.loader.exec_module(module)
    return module, hit
