"""The compile cache: warm starts build nothing; corrupted entries are rebuilt; unsafe directories
are refused."""
from __future__ import annotations

import os

import pytest
import torch

import tensorsmith
from tensorsmith.codegen.cpp import build as cpp_build
from tensorsmith.cache import get_or_build
from tensorsmith.errors import CacheError

SOURCE = 'extern "C" int answer() { return %d; }\n'


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    path = str(tmp_path / "cache")
    monkeypatch.setattr(tensorsmith.config, "cache_dir", path)
    return path


def test_second_build_of_the_same_source_is_a_cache_hit(cache_dir):
    library, hit = cpp_build.build_module(SOURCE % 42)
    assert not hit and library.answer() == 42
    library, hit = cpp_build.build_module(SOURCE % 42)
    assert hit and library.answer() == 42
    assert os.stat(cache_dir).st_mode & 0o777 == 0o700


def test_warm_start_of_a_model_compiles_nothing(cache_dir, monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.GELU())
    x = torch.randn(4, 8)
    expected = torch.compile(model, backend="tensorsmith")(x)
    torch._dynamo.reset()
    calls = []
    monkeypatch.setattr(cpp_build.subprocess, "run", lambda *a, **k: calls.append(a) or
                        pytest.fail("the compiler ran on a warm cache"))
    cpp_build.toolchain_fingerprint()  # cached from the first compile: no compiler call
    torch.testing.assert_close(torch.compile(model, backend="tensorsmith")(x), expected)
    assert not calls


def _entry_artifact(cache_dir):
    for root, _, files in os.walk(cache_dir):
        if "kernels.so" in files:
            return os.path.join(root, "kernels.so")
    raise AssertionError("no artifact in the cache")


def test_corrupted_artifact_is_rebuilt_not_loaded(cache_dir):
    cpp_build.build_module(SOURCE % 7)
    artifact = _entry_artifact(cache_dir)
    with open(artifact, "r+b") as f:
        f.seek(100)
        f.write(b"\xde\xad\xbe\xef")
    library, hit = cpp_build.build_module(SOURCE % 7)
    assert not hit and library.answer() == 7


def test_missing_digest_is_rebuilt(cache_dir):
    cpp_build.build_module(SOURCE % 8)
    os.remove(_entry_artifact(cache_dir) + ".sha256")
    _, hit = cpp_build.build_module(SOURCE % 8)
    assert not hit


def test_directory_writable_by_others_is_refused(cache_dir):
    os.makedirs(cache_dir, mode=0o700)
    os.chmod(cache_dir, 0o777)
    with pytest.raises(CacheError, match="writable by group or others"):
        get_or_build("0" * 64, "x", lambda d: None)


@pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user needs root")
def test_entry_owned_by_another_user_is_refused(cache_dir):
    cpp_build.build_module(SOURCE % 9)
    entry = os.path.dirname(_entry_artifact(cache_dir))
    os.chown(entry, 12345, 12345)
    with pytest.raises(CacheError, match="owned by uid 12345"):
        cpp_build.build_module(SOURCE % 9)


def test_unsafe_cache_makes_the_graph_run_through_aten_with_the_reason(cache_dir, monkeypatch):
    os.makedirs(cache_dir, mode=0o700)
    os.chmod(cache_dir, 0o777)
    monkeypatch.setattr(tensorsmith.config, "strict", False)
    from tensorsmith import records
    records.reset()
    x = torch.randn(3)
    torch.testing.assert_close(torch.compile(torch.sin, backend="tensorsmith")(x), torch.sin(x))
    assert "writable by group or others" in (records.RECORDS[0].whole_graph_fallback or "")
