"""The training step's memory budget (`config.memory_budget`): which activations the forward saves
and which the backward recomputes, so that the step's planned memory fits.

The step's planned memory is what it holds between its forward and its backward: the forward's
inputs (weights, data), the gradients of those that require grad, and the activations the forward
saves. The partition is AOTAutograd's min-cut partitioner, which recomputes cheap ops anyway; with
torch._functorch's `activation_memory_budget` below 1 it also solves a knapsack over the saved
values, recomputing those whose recomputation costs the least (estimated from flops, so pointwise
and normalization work goes before matrix products) per byte. That solver is maintained with
PyTorch (Inductor uses it), so we choose its fraction instead of writing our own: the largest
whose partition fits, by bisection over a few trial partitions (each of a copy of the joint graph,
which the partitioner rewrites; the one chosen is returned). A step that cannot fit even when
everything recomputable is recomputed is partitioned so (the least it can hold) and says by how
much it is over and what it still saves.
"""
from __future__ import annotations

import copy
import os
import re
import warnings

import torch
import torch._functorch.config as functorch_config
from torch._functorch.partitioners import min_cut_rematerialization_partition

from .. import config
from ..errors import MemoryBudgetWarning
from ..log import log

BISECTIONS = 5  # trial partitions between "save all the min-cut saves" and "recompute all"
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def budget_bytes(text: str, device: torch.device) -> int:
    """The budget `text` in bytes: "12e9", "12GB", "512MiB", or a fraction of the device's memory
    ("0.5"); ValueError for anything else."""
    found = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([A-Za-z]*)\s*", text or "")
    unit = found.group(2).lower() if found else None
    try:
        number = float(found.group(1)) if found else -1.0
    except ValueError:
        number = -1.0
    if number <= 0 or unit not in _UNITS:
        raise ValueError(f"TENSORSMITH_MEMORY_BUDGET={text!r}: give bytes (12e9, 12GB, 512MiB) "
                         f"or a fraction of the device's memory (0.5)")
    if number <= 1 and not unit:
        return int(number * device_memory(device))
    return int(number * _UNITS[unit])


def device_memory(device: torch.device) -> int:
    """The device's total memory in bytes (the machine's, for the CPU)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _nbytes(values) -> int:
    """Bytes of the tensors among `values` (SymbolicSizes where a shape is symbolic)."""
    total = 0
    for v in values:
        if isinstance(v, torch.Tensor):
            numel = v.numel()
            if not isinstance(numel, int):
                raise _SymbolicSizes
            total += numel * v.element_size()
    return total


class _SymbolicSizes(Exception):
    """A value's size depends on symbolic sizes: the budget is not applied (said in the log)."""


def _value(node):
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else None


def _saved(forward: torch.fx.GraphModule, num_fwd_outputs: int) -> list:
    """The activations a forward graph saves for its backward: its outputs after the model's own,
    but its inputs (weights saved for a product's backward are held anyway)."""
    (output,) = [n for n in forward.graph.nodes if n.op == "output"]
    return [_value(n) for n in output.args[0][num_fwd_outputs:]
            if not (isinstance(n, torch.fx.Node) and n.op == "placeholder")]


def _fixed_bytes(joint: torch.fx.GraphModule, num_fwd_outputs: int) -> tuple[int, int, torch.device]:
    """(bytes of the forward's inputs, bytes of the gradients it returns, the device) of a joint
    graph: what the step holds whatever is saved."""
    placeholders = [n for n in joint.graph.nodes if n.op == "placeholder"]
    primals = [_value(n) for n in placeholders if n.name.startswith("primals")]
    (output,) = [n for n in joint.graph.nodes if n.op == "output"]
    grads = [_value(n) for n in output.args[0][num_fwd_outputs:]]
    tensors = [v for v in primals if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else torch.device("cpu")
    return _nbytes(primals), _nbytes(grads), device


def _partition(joint, joint_inputs, fraction: float, **kwargs):
    """The min-cut partition of a copy of `joint` (the partitioner rewrites the graph it is given)
    at the knapsack's budget `fraction`: (forward, backward, bytes of the activations saved)."""
    with functorch_config.patch(activation_memory_budget=fraction):
        forward, backward = min_cut_rematerialization_partition(copy.deepcopy(joint), joint_inputs, **kwargs)
    return forward, backward, _nbytes(_saved(forward, kwargs["num_fwd_outputs"]))


def partition(joint: torch.fx.GraphModule, joint_inputs, *, num_fwd_outputs: int, **kwargs):
    """AOTAutograd's partition_fn: the min-cut partition, recomputing more where config.memory_budget
    says the step would hold too much."""
    if not config.memory_budget:
        return min_cut_rematerialization_partition(joint, joint_inputs, num_fwd_outputs=num_fwd_outputs,
                                                   **kwargs)
    try:
        return _budgeted(joint, joint_inputs, num_fwd_outputs, **kwargs)
    except _SymbolicSizes:
        log(1, "memory budget not applied: a graph with symbolic sizes (its bytes depend on them)")
        return min_cut_rematerialization_partition(joint, joint_inputs, num_fwd_outputs=num_fwd_outputs,
                                                   **kwargs)


def _budgeted(joint, joint_inputs, num_fwd_outputs: int, **kwargs):
    """The partition holding the most saved activations that still fits the budget."""
    inputs, grads, device = _fixed_bytes(joint, num_fwd_outputs)
    budget = budget_bytes(config.memory_budget, device)
    room = budget - inputs - grads

    def trial(fraction: float):
        return _partition(joint, joint_inputs, fraction, num_fwd_outputs=num_fwd_outputs, **kwargs)

    chosen = unbudgeted = trial(1.0)
    fraction = 1.0
    if unbudgeted[2] > room:
        chosen, fraction = trial(0.0), 0.0
        if chosen[2] <= room:
            low, high = 0.0, 1.0  # low fits, high does not
            for _ in range(BISECTIONS):
                middle = (low + high) / 2
                result = trial(middle)
                if result[2] <= room:
                    low, chosen, fraction = middle, result, middle
                else:
                    high = middle
        else:
            _over(budget, inputs, grads, chosen[2])
    forward, backward, saved = chosen
    log(1, f"memory budget {budget / 2**20:.0f} MiB: inputs {inputs / 2**20:.0f} MiB, gradients "
           f"{grads / 2**20:.0f} MiB, saved activations {saved / 2**20:.1f} MiB (without the budget "
           f"{unbudgeted[2] / 2**20:.1f} MiB; knapsack budget fraction {fraction:.3g})")
    return forward, backward


def _over(budget: int, inputs: int, grads: int, least: int) -> None:
    """Say that the step cannot fit, by how much, and what it holds."""
    over = inputs + grads + least - budget
    warnings.warn(MemoryBudgetWarning(
        f"tensorsmith: the training step cannot fit the memory budget of {budget / 2**20:.0f} MiB: "
        f"it holds {over / 2**20:.0f} MiB more even recomputing everything that can be "
        f"(inputs {inputs / 2**20:.0f} MiB, gradients {grads / 2**20:.0f} MiB, activations that "
        f"must be saved {least / 2**20:.0f} MiB). Compiled to hold the least it can."), stacklevel=2)
