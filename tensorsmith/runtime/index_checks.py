"""When a CUDA graph's index check is read.

Kernels that read an index from data (embedding ids, gather indices) set a device flag when one is
out of range, and the graph raises IndexOutOfRange. Reading the flag waits for the GPU. At the end
of a training forward that wait left the GPU idle while the host then launched the backward: 16 ms
of GPT-2 small's 76 ms step on an H100 (60 ms without the check).

So a training forward's flags are copied to pinned host memory behind its kernels and read later:
at the end of the next compiled call on the device — normally its backward, by which time the GPU
has long finished the forward, so nothing waits — after that call launched its own work. The error
is then raised from loss.backward(), before an optimizer step could use what the bad index read
(element 0 of the table). A call whose library steps read index data (the embedding gradient's
index_add) reads the deferred checks before the first of them instead: PyTorch's index kernels
assert on the device, and a device-side assert poisons the CUDA context for good (seen on the H100). Inference and backward graphs, and every graph under
config.sync_index_checks, still read their flags at the end of their own call.
"""
from __future__ import annotations

import threading

import torch

# device -> [(CUDA event or None, host flags, graph)], oldest first
_PENDING: dict[torch.device, list] = {}
_LOCK = threading.Lock()


def defer(graph, flags: torch.Tensor) -> None:
    """Queue a copy of `flags` to the host behind the graph's kernels, then zero them for its next
    call; `graph.raise_index_error(host_flags)` is called once the copy shows a flag set."""
    host = torch.empty(flags.shape, dtype=flags.dtype, pin_memory=flags.is_cuda)
    host.copy_(flags, non_blocking=flags.is_cuda)
    flags.zero_()
    done = None
    if flags.is_cuda:
        done = torch.cuda.Event()
        done.record()
    with _LOCK:
        _PENDING.setdefault(flags.device, []).append((done, host, graph))


def pending(device: torch.device) -> int:
    with _LOCK:
        return len(_PENDING.get(device, ()))


def resolve(device: torch.device, count: int) -> None:
    """Read the `count` oldest deferred checks of `device` (waiting for the GPU where it has not
    reached them yet) and raise for the first that found an index out of range."""
    with _LOCK:
        queue = _PENDING.get(device, [])
        taken, queue[:count] = queue[:count], []
    for done, host, graph in taken:
        if done is not None:
            done.synchronize()
        if host.any():
            graph.raise_index_error(host.tolist(), deferred=True)
