"""The backend name "tensorsmith" works with and without `import tensorsmith`, in either order
with Dynamo's discovery of the package's entry point (each case in a fresh interpreter)."""
from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

_RUN = """
import torch
{before}
f = torch.compile(lambda x: torch.sin(x) * 2 + 1, backend="tensorsmith")
x = torch.randn(5, 7, dtype=torch.float64).float()
got, want = f(x), torch.sin(x.double()) * 2 + 1
assert (got.double() - want).abs().max().item() < 1e-5, (got, want)
import tensorsmith
assert torch._dynamo.backends.registry.lookup_backend("tensorsmith") is tensorsmith.backend
print("ok")
"""

CASES = {
    "entry point only": "",
    "imported first": "import tensorsmith",
    "backends listed, then imported": "torch._dynamo.list_backends(); import tensorsmith",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_backend_name_resolves(case):
    if "tensorsmith" not in entry_points(group="torch_dynamo_backends").names:
        pytest.skip("the package is not installed (no torch_dynamo_backends entry point)")
    done = subprocess.run([sys.executable, "-c", _RUN.format(before=CASES[case])],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_inductors_mode_setting_is_dropped_quietly(caplog):
    """`torch.compile(mode="reduce-overhead")` (what Hugging Face's CompileConfig passes by default)
    compiles with tensorsmith, without AOTAutograd's "ignoring extra kwargs" warning."""
    import logging

    import torch

    from tensorsmith import records
    records.reset()
    torch._dynamo.reset()
    f = torch.compile(lambda x: torch.sin(x) * 2 + 1, backend="tensorsmith", mode="reduce-overhead")
    x = torch.randn(5, 7)
    with caplog.at_level(logging.WARNING):
        got = f(x)
    torch.testing.assert_close(got, torch.sin(x) * 2 + 1)
    assert records.RECORDS and not records.RECORDS[0].whole_graph_fallback
    assert not [r for r in caplog.records if "ignoring extra kwargs" in r.getMessage()]
