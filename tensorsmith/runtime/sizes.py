"""The values of a symbolic graph's size symbols, read from its arguments on each call.

Each symbol is read from the first parameter dimension that is exactly that symbol, or from an
argument that is that size itself (Dynamo passes sizes as arguments beside tensors). The caller's
arguments are then checked against every parameter's shape with those values, and each value
against its symbol's range (Dynamo's guards keep calls inside them; anything else is an error
naming the argument, never a silent wrong answer).
"""
from __future__ import annotations

from ..errors import InputError
from ..ir.graph import Graph
from ..ir.sizes import Sym, SymbolicUnsupported, evaluate, ranges_of, size_symbols


class SizeBinding:
    """`values(args, tensors)` -> {symbol: value} for one call of `graph` (raises InputError for
    arguments whose shapes no value of the symbols gives). `size_args` maps argument positions to
    the sizes they pass; `outputs` are the graph's results (sizes among them need their symbols)."""

    def __init__(self, graph: Graph, size_args: dict | None = None, outputs=()):
        self.ranges = size_symbols(graph) | ranges_of(list(outputs))
        self.sources: dict[str, tuple[int, int]] = {}  # symbol -> (parameter, dim)
        for i, param in enumerate(graph.params):
            for d, size in enumerate(param.type.shape):
                if isinstance(size, Sym) and size.name is not None:
                    self.sources.setdefault(size.name, (i, d))
        self.arguments: dict[str, int] = {}  # symbol -> argument position, where no dim has it
        for position, size in (size_args or {}).items():
            name = size.name if isinstance(size, Sym) else None
            if name is not None and name not in self.sources:
                self.arguments.setdefault(name, position)
                self.ranges.setdefault(name, size.ranges[0][1:])
        missing = sorted(set(self.ranges) - set(self.sources) - set(self.arguments))
        if missing:
            raise SymbolicUnsupported(f"size {', '.join(missing)} is not a dimension of any input")
        self.names = [p.name for p in graph.params]
        self.shapes = [p.type.shape for p in graph.params]

    def values(self, args, tensors) -> dict:
        values = {name: tensors[i].shape[d] for name, (i, d) in self.sources.items()}
        for name, position in self.arguments.items():
            value = args[position]
            if not isinstance(value, int) or isinstance(value, bool):
                raise InputError(f"argument {position} must be an int (the size {name}), "
                                 f"got {type(value).__name__}")
            values[name] = value
        for name, value in values.items():
            low, high = self.ranges[name]
            if not low <= value <= high:
                if name in self.sources:
                    i, d = self.sources[name]
                    what = f"argument {self.names[i]} has size {value} in dimension {d}"
                else:
                    what = f"argument {self.arguments[name]} (the size {name}) is {value}"
                raise InputError(f"{what}, outside the range [{low}, {high}] the graph was compiled for")
        return values

    def shapes_for(self, values: dict) -> list[tuple]:
        """Every parameter's shape with these values of the symbols."""
        return [evaluate(shape, values) for shape in self.shapes]
