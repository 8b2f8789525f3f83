"""Merging identical calls in the joint forward+backward graph before the min-cut partition,
without importing Inductor.

AOTAutograd's partitioner first merges identical calls with torch's `fx_graph_cse`, which imports
Inductor's pattern matcher (most of Inductor: about a second in every process's first compile)
for the mutation regions it keeps apart. A functionalized training step has no mutating call, and
then merging identical pure calls needs no regions: `merge_identical_calls` does it in place, and
the caller turns the partitioner's own pass off. A graph with a mutating or higher-order call is
left to torch's pass (`merged` is False).
"""
from __future__ import annotations

import operator

import torch
from torch.fx import Graph, Node
from torch.multiprocessing.reductions import StorageWeakRef

_NEVER_MERGED = {torch.ops.aten.empty.memory_format, torch.ops.aten.empty_strided.default}


def merge_identical_calls(graph: Graph) -> bool:
    """Replace each call identical to an earlier one (same op, same arguments after merging) by
    that one, in place; False, with the graph untouched, where it has a call this cannot judge."""
    if any(node.op == "call_function" and not _judged(node.target) for node in graph.nodes):
        return False
    keep_apart = _aliases_of_outputs(graph)
    first: dict[tuple, Node] = {}
    for node in list(graph.nodes):
        if node.op != "call_function" or node in keep_apart or not _mergeable(node):
            continue
        key = (node.target, _key(node.args), _key(node.kwargs))
        try:
            earlier = first.setdefault(key, node)
        except TypeError:  # an argument that cannot be hashed: left as it is
            continue
        if earlier is not node:
            node.replace_all_uses_with(earlier)
            graph.erase_node(node)
    return True


def _judged(target) -> bool:
    """Whether merging calls of `target` is understood here: pure ATen ops, getitem, symbolic-size
    arithmetic. Mutating ops and higher-order ops are not."""
    if isinstance(target, torch._ops.OpOverload):
        return not target._schema.is_mutable
    return target is operator.getitem or getattr(target, "__module__", None) in ("_operator", "torch")


def _mergeable(node: Node) -> bool:
    """Whether two such calls give equal results: an ATen op that is deterministic (or getitem), and
    producing tensors (a call that gives a size may give a fresh unbacked symbol each time)."""
    if isinstance(node.target, torch._ops.OpOverload):
        if node.target in _NEVER_MERGED or torch.Tag.nondeterministic_seeded in node.target.tags:
            return False
    elif node.target is not operator.getitem:
        return False
    value = node.meta.get("val")
    values = value if isinstance(value, (tuple, list)) else (value,)
    return bool(values) and all(v is None or isinstance(v, torch.Tensor) for v in values) and \
        any(isinstance(v, torch.Tensor) for v in values)


def _key(value):
    """A hashable stand-in for an argument: nodes as themselves, containers as tuples, other values
    with their type (1, 1.0 and True are equal in Python but not as arguments)."""
    if isinstance(value, Node):
        return value
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_key(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((k, _key(v)) for k, v in value.items()))
    return (type(value).__name__, value)


def _aliases_of_outputs(graph: Graph) -> set[Node]:
    """Nodes whose value shares storage with a graph output: each stays its own tensor, as in eager."""
    def storage(node: Node):
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor):
            return None
        try:
            return StorageWeakRef(value.untyped_storage())
        except (NotImplementedError, RuntimeError):
            return None

    output = graph.find_nodes(op="output")[0]
    storages = {storage(n) for n in output.all_input_nodes} - {None}
    return {n for n in graph.nodes if storage(n) in storages}
