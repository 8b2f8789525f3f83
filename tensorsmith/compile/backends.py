"""The code generators, as data: `BACKENDS` maps a name to the module with its schedule, emitter,
builder and runner, and `backend_for` picks one for a graph by its device and `config.executor`.

Every backend runs the same fusion (passes/fuse.py) and memory plan; they differ in the source
they emit, how it is built and what runs it. "interpreter" generates nothing: the graph runs
node by node through ir/interpret.py (runtime/executor.py).
"""
from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .. import config
from ..ir.graph import Graph, graph_device


def backend_for(graph: Graph) -> str:
    """"cpp", "triton" or "interpreter" for this graph: its device and `config.executor` decide
    (the interpreter for executor "interpreter", values on several devices, or a CUDA graph where
    Triton is not installed)."""
    return backend_for_device(graph_device(graph))


def backend_for_device(device: str | None) -> str:
    """backend_for's choice for a graph whose values are all on `device` (None: several)."""
    if config.executor == "interpreter" or device is None:
        return "interpreter"
    if device == "cpu":
        return {"cpp": "cpp", "triton": "triton"}.get(config.executor, "interpreter")
    if device.startswith("cuda") and importlib.util.find_spec("triton"):
        return "triton"
    return "interpreter"


# name -> the module of compile/ whose `schedule`, `emit`, `build` and `runner` generate its code
# (None: no code, ir/interpret.py runs the graph node by node). Imported on first use: the Triton
# backend imports Triton.
BACKENDS: dict[str, str | None] = {
    "cpp": "cpp",  # C++/OpenMP, g++ through the cache, runtime/compiled.py's CompiledGraph (CPU)
    "triton": "triton",  # Triton, its JIT, runtime/cuda.py's TritonGraph (CUDA; CPU when interpreted)
    "interpreter": None,
}


# The backends whose code takes symbolic sizes (ir/sizes.py); a symbolic graph for any other is
# compiled per concrete shape (specialize.py).
SYMBOLIC_BACKENDS = {"interpreter", "cpp", "triton"}


def steps_of(backend: str) -> ModuleType | None:
    """The module holding `backend`'s schedule, emit, build and runner functions."""
    name = BACKENDS[backend]
    return importlib.import_module(f"{__package__}.{name}") if name else None
