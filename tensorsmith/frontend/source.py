"""The user's source line behind an FX node, for error messages and the compatibility report."""
from __future__ import annotations

import functools
import os
import re

import torch

_TORCH_DIR = os.path.dirname(torch.__file__)
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)\n\s*(?P<code>[^\n]*)')


def source_line(fx_node) -> str | None:
    """"model.py:42 in forward: x = self.fc(x)": the innermost frame of the node's stack trace that
    is the user's code rather than PyTorch's own (nn.Linear's forward, say)."""
    meta = getattr(fx_node, "meta", {})
    line = _user_line(meta.get("stack_trace") or "")
    return _module_path(meta) if line is None else line


@functools.lru_cache(maxsize=4096)
def _user_line(stack_trace: str) -> str | None:
    """source_line of a stack trace (None: no frames in it). Remembered: the nodes of one source
    line, and of a model's repeated layers, share their trace."""
    frames = list(_FRAME.finditer(stack_trace))
    if not frames:
        return None
    user = [f for f in frames if not f["file"].startswith(_TORCH_DIR)]
    f = (user or frames)[-1]
    text = f"{os.path.basename(f['file'])}:{f['line']} in {f['fn']}"
    code = f["code"].strip()
    return f"{text}: {code}" if code else text


def _module_path(meta) -> str | None:
    """Without a stack trace (a torch module compiled directly), name the module: "Linear L['fn']"."""
    stack = meta.get("nn_module_stack")
    if not stack:
        return None
    path, cls = list(stack.values())[-1]
    return f"module {path} ({getattr(cls, '__name__', cls)})"
