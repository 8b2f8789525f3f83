"""The math functions generated Triton code calls as `dm.<name>` when compiled for a GPU: CUDA's
libdevice (interpreted_math.py stands in under TRITON_INTERPRET=1, which has no libdevice).

libdevice rather than `tl.exp`/`tl.sin`: those lower to approximate hardware instructions whose
error grows with the argument; libdevice is within an ulp or two of the correctly rounded result.
The CUDA implementations are taken directly: the generic `triton.language.extra.libdevice` stubs are
only swapped for them when reached through that module's own name.
"""
from triton.language.extra.cuda.libdevice import (  # noqa: F401
    acos,
    acosh,
    asin,
    asinh,
    atan,
    atan2,
    atanh,
    ceil,
    cos,
    cosh,
    erf,
    exp,
    exp2,
    expm1,
    floor,
    fmod,
    log,
    log1p,
    log2,
    pow,
    rint,
    sin,
    sinh,
    tan,
    tanh,
    trunc,
)

NAMES = ("exp", "log", "log1p", "expm1", "sin", "cos", "tan", "tanh", "erf", "asin", "acos",
         "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "exp2", "floor", "ceil",
         "rint", "trunc", "pow", "atan2", "fmod")
