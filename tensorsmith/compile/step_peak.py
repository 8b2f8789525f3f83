"""The planned peak of a training step: the most bytes it holds at once, from its forward and
backward graphs as AOTAutograd's partitioner returns them (compile/memory_budget.py decides by it).

Each graph is walked in its order, a value held from the node that makes it to its last reader:
views, tuple elements and in-place results share their base's memory and extend its life; a
graph's outputs are held to its end. Around the graphs the step holds its inputs (weights, data)
throughout, and during the backward also what the forward saved for it and the gradients it
returns. Memory outside the graphs (an optimizer's state) is not the step's and is not counted.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass

import torch
import torch.fx


class SymbolicSizes(Exception):
    """A value's size depends on symbolic sizes: no number of bytes can be planned for it."""


def nbytes(values) -> int:
    """Bytes of the tensors among `values` (SymbolicSizes where a shape is symbolic)."""
    total = 0
    for v in values:
        if isinstance(v, (list, tuple)):
            total += nbytes(v)
        elif isinstance(v, torch.Tensor):
            numel = v.numel()
            if not isinstance(numel, int):
                raise SymbolicSizes
            total += numel * v.element_size()
    return total


def value(node):
    """The fake value a traced node holds (None for a constant argument)."""
    return node.meta.get("val") if isinstance(node, torch.fx.Node) else None


def _aliases_its_input(node: torch.fx.Node) -> bool:
    """Whether the node's result is memory of its first argument (a view, a tuple's element, an
    in-place op's result) rather than new memory."""
    if node.target is operator.getitem:
        return True
    schema = getattr(node.target, "_schema", None)
    return schema is not None and any(r.alias_info is not None for r in schema.returns)


def graph_peak(gm: torch.fx.GraphModule) -> int:
    """The most bytes `gm`'s own values hold at once, its inputs not counted."""
    nodes = list(gm.graph.nodes)
    base: dict = {}
    for node in nodes:
        source = node.args[0] if node.args else None
        aliased = node.op == "call_function" and isinstance(source, torch.fx.Node) and _aliases_its_input(node)
        base[node] = base[source] if aliased else node
    last = {}
    for i, node in enumerate(nodes):
        for used in node.all_input_nodes:
            last[base[used]] = len(nodes) if node.op == "output" else i
    live = peak = 0
    ending: dict[int, list] = {}
    for i, node in enumerate(nodes):
        if node.op == "call_function" and base[node] is node:
            size = nbytes([value(node)])
            live += size
            peak = max(peak, live)
            ending.setdefault(last.get(node, i), []).append(size)
        live -= sum(ending.pop(i, ()))
    return peak


@dataclass(frozen=True)
class StepPeak:
    """A training step's planned bytes: its inputs, what the forward saves, the gradients, and the
    most it holds at once (the peak of the forward or of the backward, whichever is higher)."""
    inputs: int
    saved: int
    peak: int


def step_peak(forward: torch.fx.GraphModule, backward: torch.fx.GraphModule, num_fwd_outputs: int) -> StepPeak:
    """The planned peak of the step `forward` and `backward` make (AOTAutograd's partition)."""
    inputs = nbytes(value(n) for n in forward.graph.nodes if n.op == "placeholder")
    saved = nbytes(saved_activations(forward, num_fwd_outputs))
    tangents = nbytes(value(n) for n in backward.graph.nodes
                      if n.op == "placeholder" and n.name.startswith("tangents"))
    return StepPeak(inputs, saved, max(inputs + graph_peak(forward),
                                       inputs + saved + tangents + graph_peak(backward)))


def saved_activations(forward: torch.fx.GraphModule, num_fwd_outputs: int) -> list:
    """The activations a forward graph saves for its backward: its outputs after the model's own,
    but its inputs (weights saved for a product's backward are held anyway)."""
    (output,) = [n for n in forward.graph.nodes if n.op == "output"]
    return [value(n) for n in output.args[0][num_fwd_outputs:]
            if not (isinstance(n, torch.fx.Node) and n.op == "placeholder")]
