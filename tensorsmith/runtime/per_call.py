"""Wrapper lines for the buffers a graph with symbolic sizes allocates on each call (its memory
plan has no arena: memory.py). A buffer is allocated by the step that writes it and freed after
the last step that reads it; both generated runtimes (compiled.py, cuda.py) use these."""
from __future__ import annotations

from ..codegen.schedule import Schedule, reads
from ..ir.sizes import is_symbolic


def last_reads(schedule: Schedule) -> dict[str, int]:
    """The last step that reads each buffer."""
    last = {}
    for i, step in enumerate(schedule.steps):
        for b in reads(step):
            last[b] = i
    return last


def frees(inputs, step: int, per_call: set, last_read: dict) -> list[str]:
    """The wrapper line freeing the buffers allocated per call that `step` reads last."""
    done = sorted({b for b in inputs if b in per_call and last_read[b] == step})
    return [f"    del {', '.join(done)}"] if done else []


def empty(t, device=None) -> str:
    """Python allocating a buffer of type `t` (on `device`, else its own); symbolic sizes are the
    wrapper's size arguments."""
    shape = repr(t.shape) if not is_symbolic(t.shape) else \
        "(" + "".join(f"{d}, " for d in t.shape) + ")"
    return f"torch.empty({shape}, dtype=torch.{str(t.dtype.torch_dtype)[6:]}, device='{device or t.device}')"
