"""`tensorsmith bench` from the command line: the listing, and a run whose bad input becomes rows
and a non-zero status, with its reports written."""
from __future__ import annotations

import json

from tensorsmith import cli


def test_list(capsys):
    assert cli.main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("nanogpt", "gpt2", "llama", "bert", "t5", "vit", "unet", "resnet"):
        assert f"\n{name}" in "\n" + out


def test_bad_names_become_rows_and_status_2(tmp_path, capsys):
    status = cli.main(["bench", "--models", "nanogpt,nope", "--backends", "eager,nope_backend",
                       "--mode", "infer", "--device", "cpu", "--size", "tiny", "--rounds", "3",
                       "--no-probes", "--no-progress", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert status == 2
    assert "| nope | infer | eager | unknown_model |" in out
    assert "| nanogpt | infer | nope_backend | unknown_backend |" in out
    assert "| nanogpt | infer | eager | ok |" in out
    doc = json.loads((tmp_path / "results.json").read_text())
    assert {r["status"] for r in doc["results"]} == {"ok", "unknown_model", "unknown_backend"}
    assert (tmp_path / "results.md").read_text().count("| nanogpt |") == 2
    assert (tmp_path / "speedup.png").exists() and (tmp_path / "compile.png").exists()
