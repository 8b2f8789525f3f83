"""Measured choices kept on disk: which library, or which way round, ran a product faster for a
signature, so that a warm start (a new process with the cache filled) measures nothing.

One JSON file per kind of choice and machine (torch version, processor) in the compile cache's
private directory. A process reads the file at its first lookup; each new choice is merged into it
through a temporary file renamed into place, so processes measuring at once (the ranks of one job)
never read half a file, and the last writer's file keeps everyone's entries it had read. A file that
is not valid JSON, or an entry that is not a boolean, is ignored: the choice is measured again.
Without a usable cache directory the choices live in memory only.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import tempfile
import threading

import torch

from .cache import cache_root, content_key
from .errors import CacheError
from .log import log


@functools.cache
def machine() -> str:
    """What a measured choice depends on besides its signature: torch, and the processor."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu += "".join(line for line in f if line.startswith(("model name", "flags")))[:4096]
    except OSError:
        pass
    return f"{torch.__version__}\n{cpu}"


class Choices:
    """signature -> bool, like a dict (get, item assignment, len, values), backed by a file."""

    def __init__(self, kind: str, directory: str | None = None):
        self.kind = kind
        self._directory = directory  # None: the cache root's "choices" directory
        self._entries: dict[str, bool] | None = None  # the file's, by each signature's repr
        self._known: dict[tuple, bool] = {}  # looked up by the signature itself: no repr per call
        self._lock = threading.Lock()

    def _path(self) -> str | None:
        try:
            directory = self._directory or os.path.join(cache_root(), "choices")
            os.makedirs(directory, mode=0o700, exist_ok=True)
        except (OSError, CacheError) as e:
            log(1, f"measured {self.kind} choices kept in memory only: {e}")
            return None
        return os.path.join(directory, f"{self.kind}-{content_key(machine())[:16]}.json")

    def _read(self, path: str | None) -> dict[str, bool]:
        if path is None or not os.path.exists(path):
            return {}
        try:
            with open(path) as f:
                stored = json.load(f)
        except (OSError, ValueError) as e:
            log(1, f"ignoring {path}: {e}")
            return {}
        if not isinstance(stored, dict):
            return {}
        return {k: v for k, v in stored.items() if isinstance(k, str) and isinstance(v, bool)}

    def _loaded(self) -> dict[str, bool]:
        if self._entries is None:
            with self._lock:
                if self._entries is None:
                    self._entries = self._read(self._path())
        return self._entries

    def get(self, signature: tuple) -> bool | None:
        choice = self._known.get(signature)
        if choice is None:
            choice = self._loaded().get(repr(signature))
            if choice is not None:
                self._known[signature] = choice
        return choice

    def __setitem__(self, signature: tuple, choice: bool) -> None:
        entries = self._loaded()
        with self._lock:
            self._known[signature] = choice
            entries[repr(signature)] = choice
            path = self._path()
            if path is None:
                return
            merged = {**self._read(path), **entries}
            try:
                fd, staging = tempfile.mkstemp(prefix=".choices-", dir=os.path.dirname(path))
                with os.fdopen(fd, "w") as f:
                    json.dump(merged, f)
                os.replace(staging, path)
            except OSError as e:
                log(1, f"could not keep a measured {self.kind} choice in {path}: {e}")

    def __len__(self) -> int:
        return len(self._loaded())

    def values(self):
        return self._loaded().values()
