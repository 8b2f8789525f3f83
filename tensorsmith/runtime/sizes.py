"""The values of a symbolic graph's size symbols, read from its arguments on each call.

Each symbol is read from the first parameter dimension that is exactly that symbol. The caller's
arguments are then checked against every parameter's shape with those values, and each value
against its symbol's range (Dynamo's guards keep calls inside them; anything else is an error
naming the argument, never a silent wrong answer).
"""
from __future__ import annotations

from ..errors import InputError
from ..ir.graph import Graph
from ..ir.sizes import Sym, SymbolicUnsupported, evaluate, size_symbols


class SizeBinding:
    """`values(tensors)` -> {symbol: value} for one call of `graph` (raises InputError for
    arguments whose shapes no value of the symbols gives)."""

    def __init__(self, graph: Graph):
        self.ranges = size_symbols(graph)
        self.sources: dict[str, tuple[int, int]] = {}
        for i, param in enumerate(graph.params):
            for d, size in enumerate(param.type.shape):
                if isinstance(size, Sym) and len(size.terms) == 1 and size.terms[0] == ((size.ranges[0][0],), 1):
                    self.sources.setdefault(size.ranges[0][0], (i, d))
        missing = sorted(set(self.ranges) - set(self.sources))
        if missing:
            raise SymbolicUnsupported(f"size {', '.join(missing)} is not a dimension of any input")
        self.names = [p.name for p in graph.params]
        self.shapes = [p.type.shape for p in graph.params]

    def values(self, tensors) -> dict:
        values = {name: tensors[i].shape[d] for name, (i, d) in self.sources.items()}
        for name, value in values.items():
            low, high = self.ranges[name]
            if not low <= value <= high:
                i, d = self.sources[name]
                raise InputError(f"argument {self.names[i]} has size {value} in dimension {d}, "
                                 f"outside the range [{low}, {high}] the graph was compiled for")
        return values

    def shapes_for(self, values: dict) -> list[tuple]:
        """Every parameter's shape with these values of the symbols."""
        return [evaluate(shape, values) for shape in self.shapes]
