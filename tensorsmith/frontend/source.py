"""The user's source line behind an FX node, for error messages and the compatibility report."""
from __future__ import annotations

import os
import re

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)\n\s*(?P<code>[^\n]*)')


def source_line(fx_node) -> str | None:
    """"model.py:42 in forward: x = self.fc(x)" from the innermost frame of the node's stack trace."""
    trace = fx_node.meta.get("stack_trace") if hasattr(fx_node, "meta") else None
    if not trace:
        return None
    frames = list(_FRAME.finditer(trace))
    if not frames:
        return None
    f = frames[-1]
    text = f"{os.path.basename(f['file'])}:{f['line']} in {f['fn']}"
    code = f["code"].strip()
    return f"{text}: {code}" if code else text
