"""What the graph rewrites that run before AOTAutograd share (attention.py, linear_cross_entropy.py):
the Dynamo graph traced to pre-dispatch ATen (one canonical op per operation, fake-tensor values,
the user's source lines kept), a cheap look for the ops a rewrite starts from, nodes' fake
values and new nodes with theirs, and which nodes carry gradients."""
from __future__ import annotations

import contextlib
import functools
import operator

import torch
import torch.fx
import torch.fx.traceback
from torch._guards import detect_fake_mode
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.fx.experimental.proxy_tensor import make_fx

from ..log import log


def mentions(gm: torch.fx.GraphModule, words: tuple[str, ...]) -> bool:
    """Whether a call in the graph has one of `words` in its name (before tracing: any spelling)."""
    return any(named(n, words) for n in gm.graph.nodes)


def named(node: torch.fx.Node, words: tuple[str, ...]) -> bool:
    """Whether `node` is a call with one of `words` in its target's name."""
    if node.op not in ("call_function", "call_method"):
        return False
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return any(word in name for word in words)


def is_traced(gm: torch.fx.GraphModule) -> bool:
    """Whether `gm` is pre-dispatch ATen with fake values already (an earlier rewrite traced it)."""
    return all(n.op != "call_function" or isinstance(n.target, torch._ops.OpOverload) or
               n.target is operator.getitem for n in gm.graph.nodes) and \
        all("val" in n.meta for n in gm.graph.nodes if n.op == "call_function")


def trace(gm: torch.fx.GraphModule, example_inputs, rewrite: str) -> torch.fx.GraphModule | None:
    """`gm` traced to pre-dispatch ATen (itself if it is already), or None where that fails (logged
    for the `rewrite` that asked: the graph then compiles without it)."""
    if is_traced(gm):
        return gm
    try:
        fake_mode = detect_fake_mode(example_inputs) or FakeTensorMode()
        fakes = [fake_mode.from_tensor(x) if isinstance(x, torch.Tensor) else x for x in example_inputs]
        with fake_mode, torch.fx.traceback.preserve_node_meta():  # keep the user's source lines
            traced = make_fx(torch.fx.Interpreter(gm).run, pre_dispatch=True)(*fakes)
    except Exception as e:  # noqa: BLE001 - an exotic graph: compile it as it is
        log(1, f"{rewrite} skipped: pre-dispatch tracing failed: {type(e).__name__}: {e}")
        return None
    baked = _fake_constants(traced)
    if baked:
        log(1, f"{rewrite} skipped: pre-dispatch tracing made {len(baked)} traced values constants "
               f"({', '.join(baked[:3])}{', ...' if len(baked) > 3 else ''})")
        return None
    return traced


def _fake_constants(traced: torch.fx.GraphModule) -> list[str]:
    """The attributes of `traced` holding fake tensors: values computed once, while tracing, where
    the graph must compute them on each call (associative_scan's combine function, Mamba's scan,
    traces so). Real constants (a `torch.tensor([])` literal) are the graph's own."""
    found = [name for name, t in traced.state_dict(keep_vars=True).items() if isinstance(t, FakeTensor)]
    for node in traced.graph.nodes:
        if node.op == "get_attr" and isinstance(_attribute(traced, node.target), FakeTensor) \
                and node.target not in found:
            found.append(node.target)
    return found


def _attribute(module: torch.nn.Module, target: str):
    return functools.reduce(getattr, target.split("."), module)


def recompile(gm: torch.fx.GraphModule, drop_dead_code: bool = True) -> None:
    """After a rewrite replaced nodes: drop what nothing reads any more (unless told not to), check
    the graph, and regenerate its code."""
    if drop_dead_code:
        gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()


def tensor_value(node):
    """The fake tensor a traced node holds (its shape, dtype and device; Dynamo's example value in
    a graph not traced yet), or None (not a node, or a node whose value is not a tensor)."""
    value = _value(node) if isinstance(node, torch.fx.Node) else None
    return value if isinstance(value, torch.Tensor) else None


def _value(node):
    """What a node holds while tracing: its fake value, or Dynamo's example value; else `node`
    itself where it is a constant argument."""
    if not isinstance(node, torch.fx.Node):
        return node
    return node.meta.get("val", node.meta.get("example_value"))


def call(graph: torch.fx.Graph, target, *args) -> torch.fx.Node:
    """A new call node with its fake-tensor value (later checks read shapes and dtypes from it)."""
    node = graph.call_function(target, args)
    fake = [_value(a) for a in args]
    modes = [f.fake_mode for f in fake if isinstance(f, FakeTensor)]  # theirs, not the tracing context's
    with modes[0] if modes else detect_fake_mode(None) or contextlib.nullcontext():
        node.meta["val"] = target(*fake)
    return node


def needing_grad(graph: torch.fx.Graph, inputs_needing_grad: list[bool]) -> set:
    """The floating-point nodes computed from an input that requires grad, or that Dynamo saw
    requiring grad (a parameter read as an attribute of the graph)."""
    result, placeholders = set(), [n for n in graph.nodes if n.op == "placeholder"]
    for node, needs in zip(placeholders, inputs_needing_grad):
        if needs:
            result.add(node)
    for node in graph.nodes:
        value = tensor_value(node)
        if value is None or not value.dtype.is_floating_point:
            continue
        if node.op == "get_attr" and value.requires_grad or \
                node.op in ("call_function", "call_method", "call_module") and \
                any(i in result for i in node.all_input_nodes):
            result.add(node)
    return result
