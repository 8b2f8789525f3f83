"""Memory a compiled model's graphs hold between calls, released when the model goes.

Dynamo keeps a compiled frame's code, and with it our graphs, cached on the model's code objects
until `torch._dynamo.reset()`, long after the user dropped the model: their arenas, CUDA graphs and
static buffers would live as long as the process. Each Dynamo compile (compile/backend.py) makes an
`Owner`, kept on its TracingContext, which AOTAutograd restores when it compiles the backward
later; every graph built for it (forward, backward, per-shape specializations) joins it. When the
first parameter among the compile's inputs is freed (the model is gone), each graph's `release()`
frees what it holds; a graph called again afterwards (another model of the same class, matching
Dynamo's guards) allocates it anew.
"""
from __future__ import annotations

import contextlib
import threading
import weakref

import torch

_ATTRIBUTE = "_tensorsmith_owner"
_LOCAL = threading.local()  # an Owner named for builds outside Dynamo's compile (specializations)


class Owner:
    """The graphs built for one Dynamo compile, held weakly."""

    def __init__(self):
        self.graphs: weakref.WeakSet = weakref.WeakSet()

    def release(self) -> None:
        for graph in list(self.graphs):
            graph.release()


def own(example_inputs) -> None:
    """Start an Owner for the Dynamo compile under way, released when the first nn.Parameter among
    `example_inputs` is freed (none: nothing is released, as before)."""
    context = torch._guards.TracingContext.try_get()
    anchor = next((t for t in example_inputs if isinstance(t, torch.nn.Parameter)), None)
    if context is None or anchor is None:
        return
    owner = Owner()
    setattr(context, _ATTRIBUTE, owner)
    weakref.finalize(anchor, owner.release)


def current() -> Owner | None:
    """The Owner of the compile under way (the forward's, when AOTAutograd compiles a backward)."""
    return getattr(_LOCAL, "owner", None) or \
        getattr(torch._guards.TracingContext.try_get(), _ATTRIBUTE, None)


@contextlib.contextmanager
def owned_by(owner: Owner | None):
    """Graphs built meanwhile join `owner` (a graph compiled per shape at a later call)."""
    before = getattr(_LOCAL, "owner", None)
    _LOCAL.owner = owner
    try:
        yield
    finally:
        _LOCAL.owner = before


def adopt(graph) -> None:
    """Have `graph` (with a `release()` method) released with the current Owner, if any."""
    owner = current()
    if owner is not None:
        owner.graphs.add(graph)
