"""attach(): whether, and through what, a TritonGraph is replayed as a CUDA graph after its first
call: a CallSites (one runner per call site; config.cuda_graph_call_sites), a single
CudaGraphRunner, SizeBuckets for a graph with symbolic sizes (one runner per value of its sizes),
or nothing (eligibility.py's rule refused it)."""
from __future__ import annotations

from ... import config
from .call_sites import CallSites
from .eligibility import argument_refusal, refusal, refuse
from .runner import CudaGraphRunner
from .size_buckets import SizeBuckets


def attach(owner, tensors):
    """After `owner`'s first ordinary call with `tensors`: its CUDA-graph runner (a CallSites, one
    runner per call site, call_sites.py), or None (the reason logged and recorded)."""
    reason = refusal(owner.schedule, owner.device)
    if reason is None and owner._run is not owner.namespace.get("run"):
        reason = "the graph runs through the interpreter"
    if reason is None:
        reason = argument_refusal(tensors)
    if reason is not None:
        refuse(owner, reason)
        return None
    if owner.size_names:
        return SizeBuckets(owner)
    if not config.cuda_graph_call_sites:
        return CudaGraphRunner(owner, tensors)
    return CallSites(owner, tensors)
