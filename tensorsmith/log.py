"""Debug output gated by TENSORSMITH_DEBUG levels."""
from __future__ import annotations

import sys

from . import config


def log(level: int, message: str) -> None:
    if config.debug >= level:
        print(f"tensorsmith: {message}", file=sys.stderr)
