"""bench/host_profile.py: per-step host time of tensorsmith's functions, from a real compiled step."""
import torch

from tensorsmith.bench.host_profile import STEPS, print_host_profile


def _table(text: str) -> list[list[str]]:
    """The data rows of a markdown table: [calls/step, own ms, cumulative ms, function]."""
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| calls/step")]


def test_host_profile_counts_the_compiled_graphs_calls_per_step(capsys):
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4))
    compiled = torch.compile(model, backend="tensorsmith")
    x = torch.randn(8, 16)
    calls = []

    def step():
        calls.append(1)
        return compiled(x).sum()

    print_host_profile(step, "tiny mlp", top=200)
    out = capsys.readouterr().out
    assert len(calls) == 1 + STEPS  # one unprofiled, then the profiled ones
    assert "host profile, tiny mlp" in out
    own_time, ours = out.split("tensorsmith, cumulative:")
    rows = _table(ours)
    assert rows and all("tensorsmith" in r[3] or "/" in r[3] for r in rows)
    executor = [r for r in rows if r[3].startswith("runtime/executor.py") and r[3].endswith("__call__")]
    assert executor and executor[0][0] == "1", rows  # the compiled graph: one call per step
    for calls_per_step, own_ms, cumulative_ms, _ in rows:
        assert float(cumulative_ms) >= float(own_ms) - 0.01  # rounded to 0.01 ms
    cumulative = [float(r[2]) for r in rows]
    assert cumulative == sorted(cumulative, reverse=True)
    own = [float(r[1]) for r in _table(own_time)]
    assert own == sorted(own, reverse=True)
