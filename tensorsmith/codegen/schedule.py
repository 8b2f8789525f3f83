"""A schedule: the steps that run a graph — generated kernels and library calls — over named
buffers. Produced by passes/fuse.py, planned by runtime/memory.py, emitted by codegen/<backend>/."""
from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field

from ..ir.aten import may_alias_arguments
from ..ir.graph import Graph, Node
from ..ir.sizes import size_symbols
from ..ir.types import TensorType, TupleType
from .kernel import Kernel


@dataclass
class Buffer:
    name: str
    type: TensorType
    node: Node


@dataclass
class KernelStep:
    kernel: Kernel


@dataclass
class LibraryStep:
    """An IR node run through PyTorch (matmul, convolution, fallback, ...): reads and writes buffers.
    Input i is `inputs[i]` seen through the view nodes `views[i]` (applied as PyTorch views)."""
    node: Node
    inputs: list[str]
    output: str
    views: list[list[Node]] = field(default_factory=list)


def reads(step: KernelStep | LibraryStep) -> list[str]:
    """The buffers a step reads."""
    return step.kernel.inputs if isinstance(step, KernelStep) else step.inputs


@dataclass
class Schedule:
    graph: Graph
    buffers: dict[str, Buffer] = field(default_factory=dict)
    node_buffer: dict[Node, str] = field(default_factory=dict)
    steps: list = field(default_factory=list)
    params: list[str] = field(default_factory=list)  # buffer of each graph parameter, in order
    outputs: list[str] = field(default_factory=list)  # buffer of each graph output, in order
    output_views: dict[int, list[Node]] = field(default_factory=dict)  # output i is these views of it
    constants: dict[str, Node] = field(default_factory=dict)  # literal-data constants, built once

    @functools.cached_property
    def size_names(self) -> tuple[str, ...]:
        """The graph's size symbols, sorted (empty when its sizes are static): the kernels' and
        the wrapper's size arguments, in this order."""
        return tuple(sorted(size_symbols(self.graph)))

    def shared_outputs(self) -> set[int]:
        """The outputs that may share memory with an input or another output: a parameter returned
        (or a view of one), a buffer returned twice, a tuple element of a library op whose schema
        lets results alias its arguments (a fallback's results are not checked for views of its
        inputs), and a buffer such an op reads. Every other output is memory its step allocated on
        this call, shared with nothing else the graph returns or takes (an element two `get` steps
        read is shared too)."""
        aliasing = [st for st in self.steps if isinstance(st, LibraryStep)
                    and isinstance(st.node.type, TupleType) and _may_alias(st.node)]
        tuples = {st.output for st in aliasing}
        viewed = {b for st in aliasing for b in st.inputs}
        gets = [st for st in self.steps if isinstance(st, LibraryStep) and st.node.op == "get"]
        elements = Counter((st.inputs[0], st.node.attrs["index"]) for st in gets)
        from_tuples = {st.output for st in gets
                       if st.inputs[0] in tuples or elements[st.inputs[0], st.node.attrs["index"]] > 1}
        return {i for i, name in enumerate(self.outputs)
                if name in self.params or name in from_tuples or name in viewed
                or self.outputs.count(name) > 1}

    def buffer_of(self, node: Node) -> str:
        name = self.node_buffer.get(node)
        if name is None:
            name = f"buf{len(self.buffers)}"
            self.buffers[name] = Buffer(name, node.type, node)
            self.node_buffer[node] = name
        return name


def _may_alias(producer: Node) -> bool:
    """Whether a tuple's elements may be views of the producing node's arguments."""
    return producer.op != "fallback" or may_alias_arguments(producer.attrs["target"])
