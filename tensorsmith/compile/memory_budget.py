"""The training step's memory budget (`config.memory_budget`): which activations the forward saves
and which the backward recomputes, so that the step's planned peak fits.

The planned peak (compile/step_peak.py) is the most the step's graphs hold at once: its inputs
(weights, data) throughout, the activations the forward saves, the gradients, and each graph's
working values from the node that makes them to their last reader. The partition is AOTAutograd's
min-cut partitioner, which recomputes cheap ops anyway; with
torch._functorch's `activation_memory_budget` below 1 it also solves a knapsack over the saved
values, recomputing those whose recomputation costs the least (estimated from flops, so pointwise
and normalization work goes before matrix products) per byte. That solver is maintained with
PyTorch (Inductor uses it), so we choose its fraction instead of writing our own: the largest
whose partition fits, found over trial partitions (each of a copy of the joint graph, which the
partitioner rewrites; the one chosen is returned): fractions from 1 down until one fits, then a
bisection towards the one before it. A step that cannot fit even when
everything recomputable is recomputed is partitioned so (the least it can hold) and says by how
much it is over and what it still holds. With `TENSORSMITH_DEBUG=1` every training step's planned
peak is printed, budget or not.
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
from .joint_cse import merge_identical_calls
from .step_peak import StepPeak, SymbolicSizes, step_peak

# The knapsack fractions tried, from "save what the min-cut saves" to "recompute all": the planned
# peak is not monotonic in the fraction (recomputing everything recomputes whole chains at once).
FRACTIONS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0)
BISECTIONS = 3  # trial partitions between the first fraction that fits and the one before it
PLANNED: list[tuple[int | None, StepPeak]] = []  # (budget or None, the chosen partition's plan) per step, for the bench
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


def _partition(joint, joint_inputs, fraction: float, *, merged: bool, **kwargs):
    """The min-cut partition of a copy of `joint` (the partitioner rewrites the graph it is given)
    at the knapsack's budget `fraction`: (forward, backward, its planned peak). `merged`: identical
    calls are merged already, the partitioner need not."""
    with functorch_config.patch(activation_memory_budget=fraction, cse=functorch_config.cse and not merged):
        forward, backward = min_cut_rematerialization_partition(copy.deepcopy(joint), joint_inputs, **kwargs)
    plan = step_peak(forward, backward, kwargs["num_fwd_outputs"])
    log(2, lambda: f"memory budget: knapsack budget fraction {fraction:.3g} plans {_mib(plan)}")
    return forward, backward, plan


def partition(joint: torch.fx.GraphModule, joint_inputs, *, num_fwd_outputs: int, **kwargs):
    """AOTAutograd's partition_fn: the min-cut partition, recomputing more where config.memory_budget
    says the step would hold too much. Identical calls are merged first (compile/joint_cse.py)."""
    merged = functorch_config.cse and merge_identical_calls(joint.graph)
    try:
        if config.memory_budget:
            return _budgeted(joint, joint_inputs, num_fwd_outputs, merged=merged, **kwargs)
    except SymbolicSizes:
        log(1, "memory budget not applied: a graph with symbolic sizes (its bytes depend on them)")
    with functorch_config.patch(cse=functorch_config.cse and not merged):
        forward, backward = min_cut_rematerialization_partition(joint, joint_inputs, num_fwd_outputs=num_fwd_outputs,
                                                                **kwargs)
    try:
        plan = step_peak(forward, backward, num_fwd_outputs)
    except SymbolicSizes:
        return forward, backward
    PLANNED.append((None, plan))
    log(1, lambda: f"training step planned peak {_mib(plan)}")
    return forward, backward


def _mib(plan: StepPeak) -> str:
    return (f"{plan.peak / 2**20:.0f} MiB (inputs {plan.inputs / 2**20:.0f} MiB, saved activations "
            f"{plan.saved / 2**20:.1f} MiB)")


def _budgeted(joint, joint_inputs, num_fwd_outputs: int, **kwargs):
    """The partition whose planned peak fits the budget at the largest knapsack fraction (the least
    recomputation), else the one planning the least."""
    def trial(fraction: float):
        return _partition(joint, joint_inputs, fraction, num_fwd_outputs=num_fwd_outputs, **kwargs)

    budget = budget_bytes(config.memory_budget, _device(joint))
    unbudgeted = trial(FRACTIONS[0])
    tried = [(FRACTIONS[0], unbudgeted)]
    for fraction in FRACTIONS[1:]:
        if tried[-1][1][2].peak <= budget:
            break
        tried.append((fraction, trial(fraction)))
    fits = tried[-1][1][2].peak <= budget  # the trials stop at the first that fits
    if fits and len(tried) > 1:  # between the last fraction that did not fit and the one that did
        (high, _), (fraction, chosen) = tried[-2], tried[-1]
        low = fraction
        for _ in range(BISECTIONS):
            middle = (low + high) / 2
            result = trial(middle)
            if result[2].peak <= budget:
                low, fraction, chosen = middle, middle, result
            else:
                high = middle
    elif fits:
        fraction, chosen = tried[0]
    else:
        fraction, chosen = min(tried, key=lambda ft: ft[1][2].peak)
        _over(budget, chosen[2])
    forward, backward, plan = chosen
    PLANNED.append((budget, plan))
    log(1, f"memory budget {budget / 2**20:.0f} MiB: training step planned peak {_mib(plan)}; "
           f"without the budget {_mib(unbudgeted[2])}; knapsack budget fraction {fraction:.3g}")
    return forward, backward


def _device(joint: torch.fx.GraphModule) -> torch.device:
    """The device of the step's first tensor input (the CPU where it has none)."""
    for node in joint.graph.nodes:
        v = node.meta.get("val") if node.op == "placeholder" else None
        if isinstance(v, torch.Tensor):
            return v.device
    return torch.device("cpu")


def _over(budget: int, least: StepPeak) -> None:
    """Say that the step cannot fit, by how much, and what it holds."""
    warnings.warn(MemoryBudgetWarning(
        f"tensorsmith: the training step cannot fit the memory budget of {budget / 2**20:.0f} MiB: "
        f"the least peak a partition plans is {(least.peak - budget) / 2**20:.0f} MiB more "
        f"({_mib(least)}). Compiled to hold that least."), stacklevel=2)
