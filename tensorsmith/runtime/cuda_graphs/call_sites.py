"""One CUDA-graph capture per call site, for a graph that several places call in turn.

Dynamo compiles identical blocks once: under FSDP2's per-block compile (or any regional compile,
`block.compile()`), one forward graph serves all twelve transformer blocks of a step, one after the
other, and one backward graph serves them again in reverse. A single capture cannot serve them:
each block brings its own weights and activations, and block k's outputs are still held (saved for
its backward) when block k+1 calls. CallSites gives each position in that order its own
CudaGraphRunner (runner.py), which captures and replays as for a graph with one caller.

The order is found from the outputs' lifetimes. A *generation* is the run of calls during which
something the earlier calls of it returned is still alive; it ends at a call that finds all of
them dead (the next training step's first block, after the backward freed everything). When
two generations in a row had the same length P > 1, the k-th call of each later generation goes to
site k mod P. Otherwise (one caller, the usual case, or no steady pattern within DETECTION_CALLS
calls) every call goes to the one runner, as while watching, and nothing is tracked any more.

A site's runner takes in place only the arguments that are another capture's static outputs (the
block before it, or its forward's saved activations for a backward site), which stay put while
that capture replays; it copies every other argument into its own buffer. Under FSDP2 the gathered
weights land in new memory each step, at times where they were the step before and at times not,
so "unchanged since the last call" (what a single runner goes by) does not tell that they stay
put. A backward site whose saved activations would be too costly to copy waits, up to twice as many
calls as a single runner, until its forward replays.

The site a call lands on never decides what it computes: each runner replays only when its
in-place arguments are where they were captured and its outputs are free, and runs the call the
ordinary way otherwise. A wrong guess costs speed, not correctness.
"""
from __future__ import annotations

from collections import Counter

from torch.multiprocessing.reductions import StorageWeakRef

from ...log import log
from .eligibility import graph_name
from .runner import CudaGraphRunner

DETECTION_CALLS = 256  # calls watched for a steady order; then one runner for good
MAX_SITES = 64


class CallSites:
    """`runner(tensors) -> outputs` for one TritonGraph, over one CudaGraphRunner per call site."""

    def __init__(self, owner, tensors):
        self.owner = owner
        self.sites = [CudaGraphRunner(owner, tensors)]
        self.period: int | None = None  # set once a steady order is found; 1: one runner for good
        self.watched = 0  # calls watched so far
        self.lengths: list[int] = []  # lengths of the finished generations
        self.in_generation = 0  # calls in the current generation
        self.alive: list = []  # what the current generation's calls returned: weak refs, runners
        self.position = 0  # calls since the order was found (in multi-site mode)

    # counters over all sites (bench/cuda_graphs_gpu.py reads them)
    @property
    def replays(self) -> int:
        return sum(s.replays for s in self.sites)

    @property
    def captures(self) -> int:
        return sum(s.captures for s in self.sites)

    @property
    def ordinary(self) -> Counter:
        return sum((s.ordinary for s in self.sites), Counter())

    def __call__(self, tensors):
        if self.period is None:
            return self._watching(tensors)
        if self.period == 1:
            return self.sites[0](tensors)
        k = self.position % self.period
        self.position += 1
        if k >= len(self.sites):
            self.sites.append(CudaGraphRunner(self.owner, tensors, captured_in_place_only=True))
        return self.sites[k](tensors)

    # -- finding the order ------------------------------------------------------------------------
    def _watching(self, tensors):
        self.alive = [p for p in self.alive if _alive(p)]  # what died stays dead: checked once
        if self.in_generation and not self.alive:
            self._generation_ended()
            if self.period is not None:
                return self(tensors)
        site = self.sites[0]
        outputs = site(tensors)
        self.in_generation += 1
        self.watched += 1
        self.alive.extend(_probes(site, outputs, tensors))
        if self.period is None and self.watched >= DETECTION_CALLS:
            self._settle_on(1, "no steady order of calls")
        return outputs

    def _generation_ended(self) -> None:
        self.lengths.append(self.in_generation)
        log(2, f"{graph_name(self.owner)}: generations of {self.lengths[-4:]} calls")
        self.in_generation, self.alive = 0, []
        last = self.lengths[-2:]
        if len(last) < 2:
            return
        if last[0] == last[1] and 1 < last[0] <= MAX_SITES:
            self._settle_on(last[0], f"called {last[0]} times a step, its outputs alive meanwhile")
            self.sites = []  # fresh runners, one per site, each made at its site's first call
        elif last[1] == 1:
            self._settle_on(1, "one call a step")

    def _settle_on(self, period: int, why: str) -> None:
        self.period = period
        if period > 1:
            log(1, f"{graph_name(self.owner)}: {why}: one CUDA-graph capture per call site")
        self.alive = []


def _probes(site: CudaGraphRunner, outputs, arguments=()) -> list:
    """What tells whether a call's outputs are still alive: the runner, whose static outputs
    count their own holders, for a replay; a weak reference per storage otherwise. Outputs that are
    views of an argument are left out: their memory is the caller's (FSDP2's gathered weights keep
    their storage object for good)."""
    static = site.outputs
    probes, replayed = [], False
    seen = {a.untyped_storage().data_ptr() for a in arguments if a.numel()}
    for t in outputs:
        if not hasattr(t, "untyped_storage") or not t.numel():
            continue
        storage = t.untyped_storage()
        pointer = storage.data_ptr()
        if pointer in seen:
            continue
        seen.add(pointer)
        if static is not None and static.owns(pointer):
            replayed = True
        else:
            probes.append(StorageWeakRef(storage))
    return probes + [site] if replayed else probes


def _alive(probe) -> bool:
    if isinstance(probe, CudaGraphRunner):
        return probe.outputs is not None and probe.outputs.held()
    return not probe.expired()
