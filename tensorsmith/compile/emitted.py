"""What a backend's `emit` step hands to its `build` and `runner` steps (compile/backends.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Emitted:
    """What an emitter made of a schedule: the module source, and what its runner needs besides."""
    source: str
    suffix: str  # of the dumped source file: "cpp" or "py"
    kernels: list = field(default_factory=list)  # per kernel step, the emitter's kernel object
    numerics: Any = None  # the numeric guard the source checks for (C++), or None
