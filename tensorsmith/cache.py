"""The compile cache: content-addressed artifacts in a per-user directory.

An entry's key hashes everything that determines the artifact (source, flags, compiler, torch
version, CPU features). The directory is created 0700 and refused if another user owns it or others
can write to it; an artifact is loaded only if its SHA-256 matches the digest recorded beside it,
else it is rebuilt. Builds go to a temporary directory and are renamed into place, so a crashed or
concurrent build never leaves a half-written artifact under a valid name.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from typing import Callable

from . import config
from .errors import CacheError
from .log import log


def content_key(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def file_digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _check_private(path: str) -> None:
    info = os.stat(path)
    if info.st_uid != os.getuid():
        raise CacheError(f"refusing cache directory {path}: owned by uid {info.st_uid}, not {os.getuid()}")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise CacheError(f"refusing cache directory {path}: writable by group or others "
                         f"(mode {stat.filemode(info.st_mode)})")


def cache_root() -> str:
    root = config.cache_dir
    os.makedirs(root, mode=0o700, exist_ok=True)
    _check_private(root)
    return root


def get_or_build(key: str, artifact_name: str, build: Callable[[str], None]) -> tuple[str, bool]:
    """The path of the artifact for `key` and whether it came from the cache; `build(directory)`
    writes `artifact_name` into the directory it is given when there is no valid entry."""
    root = cache_root()
    entry = os.path.join(root, key[:2], key)
    artifact = os.path.join(entry, artifact_name)
    digest_path = artifact + ".sha256"
    if os.path.isdir(entry):
        _check_private(entry)
        try:
            with open(digest_path) as f:
                if f.read().strip() == file_digest(artifact):
                    return artifact, True
            log(1, f"cache entry {key[:12]} does not match its digest; rebuilding")
        except OSError:
            log(1, f"cache entry {key[:12]} is incomplete; rebuilding")
        shutil.rmtree(entry, ignore_errors=True)
    os.makedirs(os.path.dirname(entry), mode=0o700, exist_ok=True)
    _check_private(os.path.dirname(entry))
    staging = tempfile.mkdtemp(prefix="build-", dir=os.path.dirname(entry))
    try:
        build(staging)
        with open(os.path.join(staging, artifact_name + ".sha256"), "w") as f:
            f.write(file_digest(os.path.join(staging, artifact_name)))
        try:
            os.rename(staging, entry)
        except OSError:  # another process built it meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return artifact, False
