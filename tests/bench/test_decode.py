"""bench/decode.py on the CPU at a few tokens: its table has a row per backend and cache, and
tensorsmith's tokens are eager's (the first step at which they differ: none). Each row runs in its
own process: one that crashes is a row with its signal, and the table goes on."""
from __future__ import annotations

import sys

import pytest

from tensorsmith.bench import decode


def test_decode_table(capsys):
    """The dynamic cache's rows (each row is a process of its own, so each costs a start and a
    compile; generate() with the static cache is checked in tests/frontend/test_symbolic_sizes.py)."""
    pytest.importorskip("transformers")
    decode.main(["--backends", "eager,tensorsmith", "--batches", "2", "--caches", "dynamic",
                 "--new-tokens", "12", "--warm", "2"])
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| tiny")]
    assert [(r[2].strip(), r[3].strip()) for r in rows] == [("dynamic", "eager"), ("dynamic", "tensorsmith")]
    for row in rows:
        assert "error" not in row[4] and row[-1].strip() == "none", row
    assert rows[1][7].strip().endswith("(1 symbolic)")


def test_a_crashing_row_is_an_error_row(monkeypatch, capsys):
    """A row whose process dies of a signal says so; the other rows are still measured."""
    pytest.importorskip("transformers")
    real = decode._row_command
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"]
    monkeypatch.setattr(decode, "_row_command",
                        lambda args, name, batch, cache, backend:
                        crash if backend == "tensorsmith" else real(args, name, batch, cache, backend))
    decode.main(["--backends", "eager,tensorsmith", "--batches", "1", "--caches", "dynamic",
                 "--new-tokens", "4", "--warm", "1"])
    rows = {line.split("|")[4].strip(): line for line in capsys.readouterr().out.splitlines()
            if line.startswith("| tiny")}
    assert "crashed (SIGSEGV)" in rows["tensorsmith"]
    assert "error" not in rows["eager"]
