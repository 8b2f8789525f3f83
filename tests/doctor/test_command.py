"""`tensorsmith doctor` and `tensorsmith doctor SCRIPT ARGS`: the environment, then what running the
script showed; exit code 0, 1 with --strict and findings, 1 when the script fails."""
from __future__ import annotations

import textwrap

from tensorsmith import cli

SCRIPT = textwrap.dedent("""
    import sys, time
    import torch
    from tensorsmith.bench.models.small import MLP

    model = torch.compile(MLP().eval(), backend="tensorsmith")
    for _ in range(int(sys.argv[1])):
        time.sleep(0.01)  # host work in every step
        with torch.no_grad():
            model(torch.randn(8, 32))
""")


def test_environment_only(capsys):
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("tensorsmith doctor\n") and "environment: " in out
    assert "\nrun" not in out


def test_a_script_is_run_with_its_arguments_and_watched(tmp_path, capsys):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    assert cli.main(["doctor", str(script), "12"]) == 0
    out = capsys.readouterr().out
    assert "environment: " in out and "run (train.py: 12 steps" in out
    assert "outside_graphs: host-bound step" in out
    assert "of each step outside compiled graphs" in out
    assert cli.main(["doctor", "--strict", str(script), "12"]) == 1


def test_a_failing_script_exits_1_with_what_was_found(tmp_path, capsys):
    script = tmp_path / "broken.py"
    script.write_text("raise RuntimeError('no data here')\n")
    assert cli.main(["doctor", str(script)]) == 1
    captured = capsys.readouterr()
    assert "no data here" in captured.err and "broken.py failed (RuntimeError)" in captured.err
    assert "run (broken.py" in captured.out
