"""tensorsmith: an optimizing compiler for PyTorch models.

    model = torch.compile(model, backend="tensorsmith")
"""
from . import config
from .errors import (AlarmWarning, FallbackWarning, IndexOutOfRange, InputError, NumericsError,
                     NumericsWarning, TensorsmithError, VerifyError)
from .compile.backend import register as _register
from .compile.backend import tensorsmith_backend as backend
from .doctor import doctor
from .explain import explain
from .version import __version__

_register()



def __getattr__(name):
    """`tensorsmith.onnx` imports on first use: it needs the optional `onnx` package."""
    if name == "onnx":
        import importlib
        return importlib.import_module(".onnx", __name__)
    raise AttributeError(f"module 'tensorsmith' has no attribute {name!r}")


__all__ = ["AlarmWarning", "FallbackWarning", "IndexOutOfRange", "InputError", "NumericsError",
           "NumericsWarning", "TensorsmithError", "VerifyError", "backend", "config", "doctor",
           "explain"]
