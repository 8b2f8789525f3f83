"""Where a graph with symbolic sizes is compiled for concrete shapes: the one place that decides.

Dynamo hands over a graph with symbolic sizes once a dimension has changed between calls. Where
its backend cannot compile it once for all sizes (driver.py: Triton's kernels take static shapes,
or a stage needed a concrete size), each compile is for one concrete shape, and costs far more
than running the graph once through ATen. So a shape is compiled on its `config.specialize_after`-th call (a
shape that recurs: a training batch length, a server's bucketed lengths), at most
`config.max_specializations` shapes per graph; any other call runs the captured graph through ATen
(exact, eager speed). Shapes that change on every call, such as the key/value length of each
generated token, never wait for a compile.
"""
from __future__ import annotations

import torch

from .. import config, events
from ..log import log
from ..records import GraphRecord


def is_symbolic(value) -> bool:
    if isinstance(value, torch.SymInt):
        return True
    if isinstance(value, torch.Tensor):
        return any(isinstance(s, torch.SymInt) for s in value.shape)
    return False


def signature(args) -> tuple:
    return tuple((tuple(a.shape), a.dtype, a.device) if isinstance(a, torch.Tensor) else a
                 for a in args)


_COUNTED = 1024  # signatures whose calls are counted at once, per graph


class CallCounts:
    """Calls of each signature not compiled yet: `seen(key)` counts one more and returns the
    count; a signature compiles once that reaches `config.specialize_after` (it is then
    forgotten). Past _COUNTED signatures the oldest is forgotten: a decode loop meets each once.
    Shared by graphs with symbolic sizes and ONNX models with symbolic dimensions."""

    def __init__(self):
        self._calls: dict[tuple, int] = {}

    def seen(self, key) -> int:
        count = self._calls.get(key, 0) + 1
        if count >= config.specialize_after:
            self._calls.pop(key, None)
            return count
        self._calls[key] = count
        if len(self._calls) > _COUNTED:
            self._calls.pop(next(iter(self._calls)))
        return count


class Specializing:
    """Runs a symbolic graph: a compiled executor per recurring concrete signature, ATen otherwise.
    `build(args)` compiles for the signature of `args` (with its own fallback on failure)."""

    def __init__(self, gm, record: GraphRecord, build):
        self.gm, self.record, self.build = gm, record, build
        self.compiled: dict[tuple, object] = {}
        self.calls = CallCounts()

    def __call__(self, *args):
        key = signature(args)
        executor = self.compiled.get(key)
        if executor is None:
            executor = self._decide(key, args)
        return executor(*args)

    def _decide(self, key: tuple, args):
        """The compiled executor for `key` if its time has come, else the captured graph."""
        full = len(self.compiled) >= config.max_specializations
        seen = 0 if full else self.calls.seen(key)
        if full or seen < config.specialize_after:
            self.record.aten_calls += 1
            if self.record.aten_calls == 1:
                why = "the cap on compiled shapes is reached" if full else \
                    "a shape is compiled when it comes again"
                log(1, f"{self.record.graph_id}: shapes change; new shapes run through ATen ({why})")
            return self.gm
        shapes = [list(a.shape) for a in args if isinstance(a, torch.Tensor)]
        log(1, f"{self.record.graph_id}: compiling a specialization (number {len(self.compiled) + 1}) "
               f"for shapes seen {seen} times: {shapes}")
        if self.compiled:
            events.recompiling(self.record, "input shapes changed", args)
        executor = self.compiled[key] = self.build(args)
        return executor
