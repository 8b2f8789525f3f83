"""A progress bar on stderr: tqdm when it is installed (the `data` and `bench` extras), else none."""
from __future__ import annotations

import contextlib
import sys

ENABLED = True  # the Python API and the CLI switch it off with progress=False / --no-progress


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass


@contextlib.contextmanager
def progress(total: int, description: str, unit: str = "sample"):
    """A bar for `total` units; silent below 10,000 units, without tqdm, or when disabled."""
    if not ENABLED or total < 10_000:
        yield _Silent()
        return
    try:
        from tqdm import tqdm
    except ImportError:
        yield _Silent()
        return
    with tqdm(total=total, desc=description, unit=unit, unit_scale=True, file=sys.stderr,
              dynamic_ncols=True, leave=False) as bar:
        yield bar
