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
