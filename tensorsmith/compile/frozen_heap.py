"""Python's garbage collector, while a graph compiles, looks only at objects the compile made.

A compile allocates millions of short-lived objects (fake tensors, FX nodes, our IR), and every so
many allocations CPython's collector walks its oldest generation: every object of the process,
torch's and the user's own included, hundreds of thousands in a transformers model, again and
again during one compile. `gc.freeze()` sets the objects that exist before the compile aside for
its duration, so that collections walk only the compile's own; `gc.unfreeze()` puts them back
afterwards, where the next full collection finds any garbage among them as before.

A process that froze objects itself (a server before it forks its workers) is left as it is: the
compile then runs with the collector as the process set it.
"""
from __future__ import annotations

import contextlib
import gc
import threading

_LOCK = threading.Lock()
_DEPTH = 0  # compiles in progress that froze the heap (a frame's compile may start another)


@contextlib.contextmanager
def old_objects_set_aside():
    """Run the body with the objects that exist now out of the collector's walks."""
    global _DEPTH
    with _LOCK:
        froze = _DEPTH > 0 or gc.get_freeze_count() == 0
        if froze:
            if _DEPTH == 0:
                gc.freeze()
            _DEPTH += 1
    try:
        yield
    finally:
        if froze:
            with _LOCK:
                _DEPTH -= 1
                if _DEPTH == 0:
                    gc.unfreeze()
