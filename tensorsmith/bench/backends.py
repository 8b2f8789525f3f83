"""Backend names: "eager" is the model as it is (the baseline, no torch.compile); any other name is
whatever torch.compile accepts as a registered backend (inductor, tensorsmith, aot_eager, or one a
test registers with torch._dynamo.register_backend)."""
from __future__ import annotations

import importlib

import torch

EAGER = "eager"

# Modules a backend imports lazily on its first compile. Imported before a compile is timed, so
# cold-compile latency is compilation, not Python imports (tensorsmith is always imported already).
_LAZY_MODULES = {"inductor": "torch._inductor.compile_fx"}


def known(name: str) -> bool:
    if name == EAGER:
        return True
    from torch._dynamo.backends.registry import lookup_backend

    try:
        lookup_backend(name)
        return True
    except Exception:  # noqa: BLE001 - Dynamo raises its own InvalidBackend
        return False


def preimport(name: str) -> None:
    if name in _LAZY_MODULES:
        importlib.import_module(_LAZY_MODULES[name])


def compiled(model: torch.nn.Module, name: str):
    return model if name == EAGER else torch.compile(model, backend=name)
