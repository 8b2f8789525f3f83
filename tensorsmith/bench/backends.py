"""Backend names: "eager" is the model as it is (the baseline, no torch.compile); any other name is
whatever torch.compile accepts as a registered backend (inductor, tensorsmith, aot_eager, or one a
test registers with torch._dynamo.register_backend)."""
from __future__ import annotations

import importlib

import torch

EAGER = "eager"
CHECKED = "tensorsmith+checks"  # tensorsmith with config.check_numerics = "warn" (numeric guards)

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


def tensorsmith_with(**settings):
    """tensorsmith with `tensorsmith.config` `settings` while each graph compiles (they are read
    then; the backward is compiled now too, not at its first call). Each call returns a backend
    object of its own, so Dynamo never hands a model the graphs compiled for another copy of it."""
    def backend(gm, example_inputs, **kwargs):
        from torch._functorch import config as functorch_config

        from .. import config
        from ..compile.backend import tensorsmith_backend

        previous = {name: getattr(config, name) for name in settings}
        for name, value in settings.items():
            setattr(config, name, value)
        try:
            with functorch_config.patch(force_non_lazy_backward_lowering=True):
                return tensorsmith_backend(gm, example_inputs, **kwargs)
        finally:
            for name, value in previous.items():
                setattr(config, name, value)
    return backend


_checked_backend = tensorsmith_with(check_numerics="warn")  # CHECKED: numeric guards on


def register_checked() -> None:
    from torch._dynamo.backends.registry import _COMPILER_FNS, register_backend

    if CHECKED not in _COMPILER_FNS:
        register_backend(name=CHECKED)(_checked_backend)


register_checked()
