"""CUDA graphs for a graph with symbolic sizes: one capture per value of its sizes (a bucket).

A capture records the kernels' grids and the buffers' addresses, so it replays only calls with the
sizes it saw. SizeBuckets gives each tuple of sizes that comes again its own CudaGraphRunner
(runner.py: timed on that call, captured on the next with the same sizes, replayed after), and
keeps at most config.cuda_graph_buckets of them, dropping the least recently used (its pool and
static outputs go with it). Sizes seen once run the ordinary way and create nothing: a decode
loop whose cache grows by one each step never captures, while a server's recurring lengths each
replay from their third call.
"""
from __future__ import annotations

from collections import OrderedDict

from ... import config
from .runner import CudaGraphRunner

SEEN = 256  # size tuples remembered (most recent) for "came again"


class _WithSizes:
    """The TritonGraph as one bucket's runner sees it: its wrapper with the bucket's sizes bound."""

    def __init__(self, owner, values: tuple):
        self._owner = owner
        self._run = lambda *tensors: owner._run(*tensors, *values)

    def __getattr__(self, name):
        return getattr(self._owner, name)


class SizeBuckets:
    """`buckets(tensors, values) -> outputs` for a symbolic TritonGraph whose sizes are `values`.
    Counters: `ordinary` (calls with sizes not yet seen twice), `dropped` (runners evicted)."""

    def __init__(self, owner):
        self.owner = owner
        self.runners: OrderedDict[tuple, CudaGraphRunner] = OrderedDict()
        self.seen: OrderedDict[tuple, None] = OrderedDict()
        self.ordinary = self.dropped = 0

    def __call__(self, tensors, values: tuple):
        runner = self.runners.get(values)
        if runner is not None:
            self.runners.move_to_end(values)
            return runner(tensors)
        if values not in self.seen:
            self.seen[values] = None
            if len(self.seen) > SEEN:
                self.seen.popitem(last=False)
            self.ordinary += 1
            return self.owner._run(*tensors, *values)
        runner = self.runners[values] = CudaGraphRunner(_WithSizes(self.owner, values), tensors)
        if len(self.runners) > max(config.cuda_graph_buckets, 1):
            self.runners.popitem(last=False)
            self.dropped += 1
        return runner(tensors)
