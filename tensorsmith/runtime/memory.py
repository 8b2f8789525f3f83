"""The memory plan: intermediate buffers share one arena, reused by liveness.

Graph outputs get fresh tensors each call (the caller keeps them); parameters and library results
are PyTorch's; every other buffer a kernel writes lives at an offset in the arena, and two buffers
share bytes only when their lifetimes (first write to last read, in steps) do not overlap. A graph
with symbolic sizes has no arena yet: its buffers are allocated on each call (`per_call`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..codegen.schedule import KernelStep, LibraryStep, Schedule

ALIGNMENT = 64


@dataclass
class MemoryPlan:
    offsets: dict[str, int]  # arena buffer -> byte offset
    arena_bytes: int
    output_bytes: int
    unplanned_bytes: int  # sum of intermediate buffers' sizes without reuse, for comparison
    per_call: tuple = ()  # intermediate buffers allocated on each call (symbolic sizes)

    @property
    def peak_bytes(self) -> int:
        return self.arena_bytes + self.output_bytes


def _nbytes(buffer) -> int:
    return buffer.type.numel * buffer.type.dtype.torch_dtype.itemsize


def plan_memory(schedule: Schedule) -> MemoryPlan:
    outputs = set(schedule.outputs) | set(schedule.params) | set(schedule.constants)
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, step in enumerate(schedule.steps):
        if isinstance(step, KernelStep):
            written, read = step.kernel.outputs, step.kernel.inputs
        else:
            assert isinstance(step, LibraryStep)
            written, read = [], step.inputs
        for b in written:
            if b not in outputs:
                first.setdefault(b, i)
                last[b] = max(last.get(b, i), i)
        for b in read:
            if b in first:
                last[b] = max(last[b], i)
    if schedule.size_names:
        return MemoryPlan({}, 0, 0, 0, tuple(first))
    placed: list[tuple[int, int, int, int]] = []  # (offset, end, first step, last step)
    offsets = {}
    for b in sorted(first, key=lambda b: -_nbytes(schedule.buffers[b])):
        size = -(-_nbytes(schedule.buffers[b]) // ALIGNMENT) * ALIGNMENT
        offset = 0
        for start, end, f, l in sorted(p for p in placed if not (p[3] < first[b] or last[b] < p[2])):
            if offset + size <= start:
                break
            offset = max(offset, end)
        offsets[b] = offset
        placed.append((offset, offset + size, first[b], last[b]))
    arena = max((p[1] for p in placed), default=0)
    output_bytes = sum(_nbytes(schedule.buffers[b]) for b in set(schedule.outputs)
                       if b not in schedule.params)
    unplanned = sum(_nbytes(schedule.buffers[b]) for b in first)
    return MemoryPlan(offsets, arena, output_bytes, unplanned)
