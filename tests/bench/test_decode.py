"""bench/decode.py on the CPU at a few tokens: its table has a row per backend and cache, and
tensorsmith's tokens are eager's (the first step at which they differ: none)."""
from __future__ import annotations

import pytest

from tensorsmith.bench import decode


def test_decode_table(monkeypatch, capsys):
    pytest.importorskip("transformers")
    monkeypatch.setattr(decode, "NEW_TOKENS", 12)
    monkeypatch.setattr(decode, "WARM", 2)
    decode.main(["--backends", "eager,tensorsmith", "--batches", "2", "--caches", "static,dynamic"])
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines()
            if line.startswith("| tiny")]
    assert [(r[2].strip(), r[3].strip()) for r in rows] == [
        ("static", "eager"), ("static", "tensorsmith"), ("dynamic", "eager"), ("dynamic", "tensorsmith")]
    for row in rows:
        assert "error" not in row[4] and row[-1].strip() == "none", row
    assert rows[3][7].strip().endswith("(1 symbolic)")
