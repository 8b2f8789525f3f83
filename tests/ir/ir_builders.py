"""Shared helpers for the IR and pass tests: random inputs, text normalization, random graphs.

`random_graphs()` is a hypothesis strategy of well-formed graphs built with `Graph.add` from random
chains of elementwise, reshape, transpose, reduce, broadcast, slice, concat, select and convert ops.
"""
from __future__ import annotations

import math
import textwrap

import torch
from hypothesis import strategies as st

from tensorsmith.ir import Graph, TensorType, parse_graph, print_graph
from tensorsmith.ir.types import F32, F64, I32, I64

# ---- random tensors -------------------------------------------------------------------------


def rand_tensor(t: TensorType, low: int = 1, high: int = 10) -> torch.Tensor:
    """A fresh random tensor of type `t`: floats from randn, integers in +-[low, high) (never zero),
    bools a random mix."""
    dtype = t.dtype.torch_dtype
    if t.dtype.is_bool:
        return torch.rand(t.shape) < 0.5
    if t.dtype.is_integer:
        magnitude = torch.randint(low, high, t.shape)
        if dtype != torch.uint8:
            magnitude = magnitude * (torch.randint(0, 2, t.shape) * 2 - 1)
        return magnitude.to(dtype)
    return torch.randn(t.shape, dtype=torch.float64).to(dtype)


def random_inputs(graph: Graph) -> list[torch.Tensor]:
    return [rand_tensor(p.type) for p in graph.params]


def text(s: str) -> str:
    """Dedented IR text with one trailing newline, as print_graph writes it."""
    return textwrap.dedent(s).strip("\n") + "\n"


def roundtrip(s: str) -> str:
    return print_graph(parse_graph(s))


def assert_same_tensors(actual, expected):
    """Exactly equal (NaN equal to NaN), same dtypes and shapes."""
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert (a.dtype, a.shape) == (e.dtype, e.shape), f"output {i}: {a.dtype}{list(a.shape)} vs {e.dtype}{list(e.shape)}"
        same = torch.equal(a, e) or (a.dtype.is_floating_point and torch.allclose(a, e, rtol=0, atol=0, equal_nan=True))
        assert same, f"output {i} differs"


# ---- random graphs --------------------------------------------------------------------------

_FLOAT_UNARY = ("neg", "abs", "exp", "tanh", "sin", "sigmoid", "floor")
_BINARY = ("add", "sub", "mul", "max", "min")


def _factor_shapes(numel: int) -> list[list[int]]:
    """A few shapes with `numel` elements."""
    shapes = [[numel], [1, numel], [numel, 1]]
    for d in range(2, numel):
        if numel % d == 0:
            shapes.append([d, numel // d])
    return shapes


@st.composite
def random_graphs(draw, max_nodes: int = 10, allow_dead: bool = True):
    """A well-formed graph of random ops on random shapes (ranks 0-3, sizes 0-4)."""
    graph = Graph(name=draw(st.sampled_from(["main", "forward", "g_1"])))
    values = []
    for i in range(draw(st.integers(1, 3))):
        rank = draw(st.integers(0, 3))
        shape = draw(st.lists(st.integers(1, 4) if i else st.integers(0, 4), min_size=rank, max_size=rank))
        dtype = draw(st.sampled_from([F32, F32, F64]))
        name = draw(st.sampled_from([f"x{i}", None, "in", f"p{i}"]))
        values.append(graph.add_param(name, TensorType(shape, dtype)))
    floats = lambda: [v for v in values if v.type.dtype.is_float]  # noqa: E731

    for _ in range(draw(st.integers(1, max_nodes))):
        x = draw(st.sampled_from(floats()))
        t = x.type
        kind = draw(st.sampled_from(["unary", "binary", "reshape", "transpose", "reduce", "broadcast",
                                     "slice", "concat", "select", "convert", "constant"]))
        source = draw(st.sampled_from([None, None, "model.py:12 in forward", 'a "quoted" line']))
        if kind == "unary":
            node = graph.add(draw(st.sampled_from(_FLOAT_UNARY)), [x], source=source)
        elif kind == "binary":
            same = [v for v in floats() if v.type == t]
            node = graph.add(draw(st.sampled_from(_BINARY)), [x, draw(st.sampled_from(same))], source=source)
        elif kind == "reshape":
            node = graph.add("reshape", [x], {"shape": draw(st.sampled_from(_factor_shapes(t.numel)))})
        elif kind == "transpose":
            perm = draw(st.permutations(range(t.rank)))
            node = graph.add("transpose", [x], {"perm": list(perm)})
        elif kind == "reduce":
            dims = sorted(draw(st.sets(st.integers(0, max(t.rank - 1, 0)), max_size=t.rank))) if t.rank else []
            kind_ = draw(st.sampled_from(["sum", "prod", "max", "min"] if t.numel else ["sum", "prod"]))
            node = graph.add("reduce", [x], {"kind": kind_, "dims": dims}, source=source)
        elif kind == "broadcast":
            new_rank = t.rank + draw(st.integers(0, 2))
            dims = sorted(draw(st.sets(st.integers(0, new_rank - 1), min_size=t.rank, max_size=t.rank))) \
                if t.rank else []
            shape = [draw(st.integers(1, 3)) for _ in range(new_rank)]
            for i, d in enumerate(dims):
                if t.shape[i] != 1 or draw(st.booleans()):
                    shape[d] = t.shape[i]
            node = graph.add("broadcast_in_dim", [x], {"shape": shape, "dims": dims})
        elif kind == "slice":
            starts, limits, strides = [], [], []
            for s in t.shape:
                lo = draw(st.integers(0, s))
                starts.append(lo)
                limits.append(draw(st.integers(lo, s)))
                strides.append(draw(st.integers(1, 3)))
            node = graph.add("slice", [x], {"starts": starts, "limits": limits, "strides": strides})
        elif kind == "concat" and t.rank:
            dim = draw(st.integers(0, t.rank - 1))
            node = graph.add("concat", [x, x], {"dim": dim})
        elif kind == "select":
            y = draw(st.sampled_from([v for v in floats() if v.type == t]))
            pred = graph.add("compare", [x, y], {"dir": draw(st.sampled_from(["LT", "GE", "EQ"]))})
            node = graph.add("select", [pred, y, x])
        elif kind == "convert":
            to = draw(st.sampled_from([I32, I64, F64, F32]))
            node = graph.add("convert", [x], {"dtype": to})
            if not to.is_float:
                node = graph.add("convert", [node], {"dtype": t.dtype})
        else:
            value = draw(st.sampled_from([0.5, -0.0, 1e-05, 3, math.inf, 2.5e10]))
            c = graph.add("constant", [], {"value": value, "shape": list(t.shape), "dtype": t.dtype,
                                           "device": "cpu"})
            node = graph.add("mul", [x, c], source=source)
        values.append(node)

    candidates = [*graph.params, *graph.nodes]
    if allow_dead:
        graph.outputs = draw(st.lists(st.sampled_from(candidates), min_size=1, max_size=3))
    else:
        graph.outputs = [graph.nodes[-1]]
    return graph
