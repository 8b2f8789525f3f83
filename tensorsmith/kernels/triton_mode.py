"""Our @triton.jit code in either of Triton's modes: compiled for the GPU, or run on the CPU by its
interpreter (TRITON_INTERPRET=1, how the tests run it).

@triton.jit reads TRITON_INTERPRET when it decorates, and tests set it after our modules are
imported; a kernel and every jitted function it calls must be decorated for the same mode. So the
kernels are taken from `kernel_module(name, interpreting())`, and a module of kernels takes the
jitted helpers of another from `kernel_module(other, _INTERPRETED)`, where each such module sets
`_INTERPRETED = knobs.runtime.interpret` (how its functions were decorated).
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys

from triton import knobs


def interpreting() -> bool:
    """Whether Triton runs kernels on the CPU now (TRITON_INTERPRET=1), read at each call."""
    return bool(knobs.runtime.interpret)


@functools.cache
def kernel_module(name: str, interpreted: bool):
    """Module `name` with its @triton.jit functions decorated for `interpreted`: the module itself
    when it was imported in that mode, else a second copy loaded from its file with the flag set."""
    module = importlib.import_module(name)
    if module._INTERPRETED == interpreted:
        return module
    spec = importlib.util.spec_from_file_location(f"{name}_{'interpreted' if interpreted else 'jit'}",
                                                  module.__file__)
    copy = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = copy  # the JIT resolves a kernel's globals through its module
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1" if interpreted else "0"
    try:
        spec.loader.exec_module(copy)
    finally:
        if saved is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = saved
    return copy
