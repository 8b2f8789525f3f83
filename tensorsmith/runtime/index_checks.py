"""When a CUDA graph's index check is read.

Kernels that read an index from data (embedding ids, gather indices) set a device flag when one is
out of range, and the graph raises IndexOutOfRange. Reading the flag waits for the GPU, which then
idles while the host works on what comes next: after a training forward, launching the backward;
after its backward (the cross-entropy gradient reads the targets), the optimizer's Python.

So the flags of a training forward or backward are copied to pinned host memory behind its kernels
and read later: at the end of the next compiled call on the device, after that call launched its
own work, by which time the GPU has long finished the graph that set them, so nothing waits.
- A forward's check is read by its backward, so a bad index raises from loss.backward(), before an
  optimizer step could use what it read (element 0 of the table).
- A backward's check is read by the next step's forward. Autograd's backward indexes with the
  forward's own indices and bounds (the gradient has the shape of the indexed tensor), so what it
  could find was already found by the forward's check; reading it a step late costs nothing then.
- A call whose library steps read index data (the embedding gradient's index_add) reads the
  deferred checks before the first of them instead: PyTorch's index kernels assert on the device,
  and a device-side assert poisons the CUDA context for good.
- Once a check raises, the checks still pending on that device are dropped: they belong to the
  failing step or a later one, and would raise again for the same bad data.

Inference graphs, and every graph under config.sync_index_checks, read their flags at the end of
their own call.
"""
from __future__ import annotations

import threading

import torch

from .. import config


def defers(kind: str | None, device: torch.device) -> bool:
    """Whether a graph of this kind ("forward", "backward", "inference") on `device` leaves its
    check to the next call, as the rules above say."""
    return device.type == "cuda" and not config.sync_index_checks and kind in ("forward", "backward")


# device -> [(CUDA event or None, host flags, the graph's cuda.IndexErrorReport)], oldest first
_PENDING: dict[torch.device, list] = {}
_LOCK = threading.Lock()


def defer(report, flags: torch.Tensor) -> None:
    """Queue a copy of `flags` to the host behind the graph's kernels, then zero them for its next
    call; `report.raise_index_error(host_flags, deferred=True)` is called once the copy shows a flag
    set. `report` must not hold the graph (cuda.IndexErrorReport): a check left pending after the
    last call would keep the graph's memory."""
    host = torch.empty(flags.shape, dtype=flags.dtype, pin_memory=flags.is_cuda)
    host.copy_(flags, non_blocking=flags.is_cuda)
    flags.zero_()
    done = None
    if flags.is_cuda:
        done = torch.cuda.Event()
        done.record()
    with _LOCK:
        _PENDING.setdefault(flags.device, []).append((done, host, report))


def pending(device: torch.device) -> int:
    with _LOCK:
        return len(_PENDING.get(device, ()))


def resolve(device: torch.device, count: int) -> None:
    """Read the `count` oldest deferred checks of `device` (waiting for the GPU where it has not
    reached them yet) and raise for the first that found an index out of range."""
    with _LOCK:
        queue = _PENDING.get(device, [])
        taken, queue[:count] = queue[:count], []
    for done, host, report in taken:
        if done is not None:
            done.synchronize()
        if host.any():
            with _LOCK:
                _PENDING.pop(device, None)
            report.raise_index_error(host.tolist(), deferred=True)
