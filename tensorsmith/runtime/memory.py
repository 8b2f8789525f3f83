"""The memory plan: intermediate buffers share one arena, reused by liveness.

Graph outputs get fresh tensors each call (the caller keeps them); parameters and library results
are PyTorch's; every other buffer a kernel writes lives at an offset in the arena, and two buffers
share bytes only when their lifetimes (first write to last read, in steps) do not overlap. In a
graph with symbolic sizes, the buffers whose sizes depend on them are allocated on each call
(`per_call`); the others are in the arena.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..codegen.schedule import KernelStep, LibraryStep, Schedule
from ..ir.sizes import is_symbolic

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
    # Buffers whose sizes depend on a graph's symbolic sizes are allocated on each call; the rest,
    # of any graph, are planned in the arena.
    per_call = tuple(b for b in first if is_symbolic(schedule.buffers[b].type.shape))
    for b in per_call:
        del first[b]
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
                       if b not in schedule.params and not is_symbolic(schedule.buffers[b].type.shape))
    unplanned = sum(_nbytes(schedule.buffers[b]) for b in first)
    return MemoryPlan(offsets, arena, output_bytes, unplanned, per_call)
