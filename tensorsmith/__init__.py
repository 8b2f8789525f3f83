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

__all__ = ["AlarmWarning", "FallbackWarning", "IndexOutOfRange", "InputError", "NumericsError",
           "NumericsWarning", "TensorsmithError", "VerifyError", "backend", "config", "doctor",
           "explain"]
