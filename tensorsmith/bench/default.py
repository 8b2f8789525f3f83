"""`make bench` / `python -m tensorsmith.bench`: the default comparison.

The embedded nanoGPT-style model at its default size (on a GPU: GPT-2-small geometry, seq 1024),
training step and inference, eager vs inductor vs tensorsmith, with everything `tensorsmith bench`
measures. It is `tensorsmith bench` with no --models; see command.py for the options.
"""
from __future__ import annotations

from .command import main

__all__ = ["main"]
