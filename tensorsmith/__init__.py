"""tensorsmith: an optimizing compiler for PyTorch models.

    model = torch.compile(model, backend="tensorsmith")
"""
from . import config
from .errors import InputError, NumericsError, NumericsWarning, TensorsmithError, VerifyError
from .explain import explain
from .frontend.backend import register as _register
from .frontend.backend import tensorsmith_backend as backend

_register()

__all__ = ["InputError", "NumericsError", "NumericsWarning", "TensorsmithError", "VerifyError", "backend",
           "config", "explain"]
__version__ = "0.1.0"
