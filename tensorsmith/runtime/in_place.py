"""Library steps that write a parameter in place instead of copying it.

A static KV cache (`cache_implementation="static"`) is updated with `index_copy_`, which
AOTAutograd makes functional: an `index_put` that copies the whole cache, whose result the caller
copies back into the cache after the call. Where that result is the parameter's new value
(`Graph.written_back`) and no other step reads the parameter, the step runs `index_put_` on the
parameter itself; the caller's copy back is then a copy onto itself, which PyTorch skips. Being the
parameter's only reader also keeps a call that runs again after a failure (a fallback to the
interpreter) exact: it reads the written parameter only where it writes the same values again.
"""
from __future__ import annotations

from collections import Counter

import torch

from ..codegen.schedule import LibraryStep, Schedule, reads

# Functional op -> its in-place form, for ops whose in-place form writes only its first argument
# and gives the same result if run twice on its own output (so a CUDA graph's warm-up call and its
# replays agree).
IN_PLACE = {"aten.index_put.default": torch.ops.aten.index_put_.default}


def _accumulates(step: LibraryStep) -> bool:
    args = step.node.attrs["args"]
    return bool(args[3]) if len(args) > 3 else bool(step.node.attrs["kwargs"].get("accumulate", False))


def in_place_steps(schedule: Schedule) -> dict[int, int]:
    """Step index -> parameter index, for the library steps that may write that parameter in
    place: an op of IN_PLACE (not accumulating) whose first input is the parameter as it is, whose
    result is an output written back into it, and which is the only step reading the parameter."""
    written = schedule.graph.written_back
    if not written:
        return {}
    readers = Counter(b for step in schedule.steps for b in reads(step))
    result = {}
    for i, step in enumerate(schedule.steps):
        if not (isinstance(step, LibraryStep) and step.node.op == "fallback"
                and step.node.attrs["target"] in IN_PLACE and not _accumulates(step)):
            continue
        if not step.inputs or (step.views and step.views[0]):
            continue
        for output, param in written.items():
            name = schedule.params[param]
            if (schedule.outputs[output] == step.output and output not in schedule.output_views
                    and step.inputs[0] == name and step.inputs.count(name) == 1
                    and readers[name] == 1 and name not in schedule.outputs):
                result[i] = param
    return result


def outputs_written(schedule: Schedule, steps: dict[int, int]) -> dict[int, int]:
    """Output index -> parameter index, for the outputs that `steps` (in_place_steps) wrote into
    their parameters: such an output is the argument itself after the call."""
    written = {schedule.steps[i].output: param for i, param in steps.items()}
    return {o: written[name] for o, name in enumerate(schedule.outputs) if name in written}
