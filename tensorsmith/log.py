"""Debug output on stderr, gated by `TENSORSMITH_DEBUG` (config.debug). The levels, in one place:

  0  nothing (the default)
  1  one line per graph: its ops, fallbacks, kernels, library calls and arena; a graph run whole
     through ATen and why; CUDA-graph decisions
  2  each pass's time and whether it changed the graph; decisions per call (captures and replays,
     direct launches, kernels compiled and loaded)
  3  the IR after the passes, and the schedule: each generated kernel's loops and stages (kernel
     IR) and each library call, over named buffers
  4  the generated kernel source (C++ or Triton) of each graph

`TENSORSMITH_DUMP=dir` writes the same stages to files instead (dump.py).
"""
from __future__ import annotations

import sys
from typing import Callable

from . import config


def log(level: int, message: str | Callable[[], str]) -> None:
    """Print `message` (or what the callable returns: text that costs to make) at `level` and up."""
    if config.debug >= level:
        print(f"tensorsmith: {message() if callable(message) else message}", file=sys.stderr)
