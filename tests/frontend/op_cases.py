"""Shared helpers for the op-level differential tests (compiled vs eager).

Two ways to exercise a lowering:

* `compile_check(fn, *inputs, native=[...])`: torch.compile `fn` with tensorsmith (through Dynamo and
  AOTAutograd, forward and backward), compare outputs and gradients with eager, and assert that each
  ATen op named in `native` was lowered natively (and never fell back) in the compiled graphs.
* `direct_check(op, *args, **kwargs)`: for ops that AOTAutograd's decomposition table removes before
  the importer sees them, build a one-op FX graph, import it, assert the op was lowered natively, run
  the IR through the reference interpreter and compare with calling the op eagerly.
"""
from __future__ import annotations

import contextlib
import operator
import os
from collections import Counter

import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

import tensorsmith
from helpers import _flatten, assert_close, check_against_eager
from tensorsmith.errors import TypeInferenceError, UnsupportedError
from tensorsmith import records
from tensorsmith.frontend.importer import _matches_meta, import_graph
from tensorsmith.frontend.lowering import LOWERINGS, LoweringContext
from tensorsmith.ir import Graph, TensorType, interpret, verify
from tensorsmith.ir.aten import target_name

aten = torch.ops.aten
prims = torch.ops.prims

# Reduced-precision floats: compared with a looser tolerance.
HALF_TOLERANCE = {torch.float16: 1e-2, torch.bfloat16: 4e-2}


def name_of(op) -> str:
    return op if isinstance(op, str) else target_name(op)


# -- what the importer did ---------------------------------------------------------------------
class Lowered:
    """The union, over the compiled graphs since the last reset, of native ops and fallbacks."""

    def __init__(self, records):
        self.native = Counter()
        self.fallbacks: dict[str, list[str]] = {}
        self.whole_graph = [r.whole_graph_fallback for r in records if r.whole_graph_fallback]
        for r in records:
            self.native.update(r.native)
            for f in r.fallbacks:
                self.fallbacks.setdefault(f.target, []).append(f.reason)

    def assert_native(self, *ops):
        assert not self.whole_graph, f"graphs ran whole through ATen: {self.whole_graph}"
        for op in ops:
            name = name_of(op)
            assert name not in self.fallbacks, f"{name} fell back: {self.fallbacks[name]}"
            assert self.native[name] > 0, (
                f"{name} never reached the importer natively; native ops: {sorted(self.native)}")

    def assert_fallback(self, op):
        name = name_of(op)
        assert name in self.fallbacks, f"{name} was expected to fall back; native: {sorted(self.native)}"


def lowered() -> Lowered:
    return Lowered(records.RECORDS)


# These tests check the frontend (what the importer makes of each ATen op), so by default the
# compiled graphs run on the reference interpreter; OP_TESTS_EXECUTOR=cpp runs them through the
# generated code instead (much slower: a C++ build per new kernel).
EXECUTOR = os.environ.get("OP_TESTS_EXECUTOR", "interpreter")


@contextlib.contextmanager
def op_executor():
    saved = tensorsmith.config.executor
    tensorsmith.config.executor = EXECUTOR
    try:
        yield
    finally:
        tensorsmith.config.executor = saved


def fresh_compile():
    """Start from an empty Dynamo cache and an empty compatibility record."""
    torch._dynamo.reset()
    records.reset()


def compile_check(fn, *inputs, native=(), tol: float = 1e-4, grads: bool = True, dynamic=None,
                  exact: bool = False):
    """check_against_eager on a fresh Dynamo cache, then assert every op in `native` was lowered
    natively. With `exact`, outputs must instead equal eager's bit for bit (NaN where eager has NaN,
    infinities allowed) and gradients are not compared. Returns (compiled outputs, Lowered)."""
    if grads and not exact:
        _check_gradient_outputs(fn, inputs)
    fresh_compile()
    with op_executor():
        if exact:
            expected = fn(*[x.clone() if _is_tensor(x) else x for x in inputs])
            compiled = torch.compile(fn, backend="tensorsmith", dynamic=dynamic)
            out = compiled(*[x.clone() if _is_tensor(x) else x for x in inputs])
            assert_equal(out, expected)
        else:
            out = check_against_eager(fn, *inputs, tol=tol, grads=grads, dynamic=dynamic)
    result = lowered()
    _log_fallbacks(result)
    result.assert_native(*native)
    return out, result


def _log_fallbacks(result: Lowered):
    """With OP_CASES_FALLBACK_LOG=path set, append every fallback seen to that file (a survey aid)."""
    path = os.environ.get("OP_CASES_FALLBACK_LOG")
    if path:
        with open(path, "a") as f:
            for target, reasons in result.fallbacks.items():
                for reason in reasons:
                    f.write(f"{target}\t{reason}\n")


def _check_gradient_outputs(fn, inputs):
    """check_against_eager pairs its random weights with the floating outputs that require grad,
    but draws one per floating output: the two lists must be the same."""
    args = [x.detach().clone().requires_grad_(x.dtype.is_floating_point) if _is_tensor(x) else x
            for x in inputs]
    floating = [t for t in _flatten(fn(*args)) if t.dtype.is_floating_point]
    assert all(t.requires_grad for t in floating) or not any(t.requires_grad for t in floating), (
        "some floating outputs do not require grad: compare them with grads=False or exact=True")


def assert_equal(actual, expected):
    actual, expected = _flatten(actual), _flatten(expected)
    assert len(actual) == len(expected), f"{len(actual)} outputs vs eager's {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert (a.shape, a.dtype) == (e.shape, e.dtype), (
            f"output {i}: {a.dtype}{list(a.shape)} vs eager {e.dtype}{list(e.shape)}")
        torch.testing.assert_close(a, e, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"output {i}: {m}")


# -- importing one ATen op directly ------------------------------------------------------------
def _is_tensor(v) -> bool:
    return isinstance(v, torch.Tensor)


def one_op_graph(op, args, kwargs):
    """An FX graph calling `op` once; every tensor in args/kwargs (also inside lists) becomes a
    placeholder. Returns (GraphModule, tensor inputs in placeholder order)."""
    graph = torch.fx.Graph()
    tensors = []

    def lift(v):
        if _is_tensor(v):
            tensors.append(v)
            node = graph.placeholder(f"t{len(tensors) - 1}")
            node.meta["val"] = v  # what eager would see, layout included
            return node
        if isinstance(v, (list, tuple)):
            return type(v)(lift(x) for x in v)
        return v

    fx_args = tuple(lift(a) for a in args)
    fx_kwargs = {k: lift(v) for k, v in kwargs.items()}
    call = graph.call_function(op, fx_args, fx_kwargs)
    result = op(*args, **kwargs)  # eager, on the real tensors: its value serves as the FX meta
    call.meta["val"] = result
    if isinstance(result, (list, tuple)):
        outs = []
        for i, r in enumerate(result):
            item = graph.call_function(operator.getitem, (call, i))
            item.meta["val"] = r
            outs.append(item)
        graph.output(tuple(outs))
    else:
        graph.output((call,))
    return torch.fx.GraphModule(torch.nn.Module(), graph), tensors


def direct_import(op, *args, **kwargs):
    """Import a one-op graph of `op`; returns (Imported, tensor inputs)."""
    gm, tensors = one_op_graph(op, args, kwargs)
    return import_graph(gm, tensors), tensors


def direct_check(op, *args, tol: float = 1e-4, compare_values: bool = True, **kwargs):
    """Import `op(*args, **kwargs)` alone, assert it lowered natively, verify the IR, run it with the
    reference interpreter and compare with eager. Returns the interpreted outputs."""
    imported, tensors = direct_import(op, *args, **kwargs)
    name = name_of(op)
    fallbacks = [f.reason for f in imported.report.fallbacks]
    assert not fallbacks, f"{name} fell back: {fallbacks}"
    assert imported.report.native[name] == 1, f"{name} not lowered natively: {imported.report.native}"
    verify(imported.graph)
    results = interpret(imported.graph, [t.clone() for t in tensors])
    actual = [results[i] if kind in ("tensor", "view") else i for kind, i in imported.outputs]
    expected = op(*args, **kwargs)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    if compare_values:
        assert_close(actual, expected, tol)
    else:
        assert [(a.shape, a.dtype) for a in actual] == [(e.shape, e.dtype) for e in expected]
    return actual


def lowering_declines(op, *args, **kwargs) -> bool:
    """Whether the lowering of `op` declines these arguments (raises UnsupportedError or a type
    error, or gives a result PyTorch's would not match), so that the importer falls back. For
    arguments whose fallback cannot even be traced (data-dependent shapes)."""
    graph = Graph()
    ctx = LoweringContext(graph)

    def lift(v):
        if _is_tensor(v):
            return graph.add_param(f"t{len(graph.params)}", TensorType.of(v))
        if isinstance(v, (list, tuple)):
            return type(v)(lift(x) for x in v)
        return v
    ir_args, ir_kwargs = lift(list(args)), {k: lift(v) for k, v in kwargs.items()}
    ctx.meta = op(*args, **kwargs)
    try:
        result = LOWERINGS[op](ctx, *ir_args, **ir_kwargs)
    except (UnsupportedError, TypeInferenceError):
        return True
    return not _matches_meta(result, ctx.meta)


# -- inputs ------------------------------------------------------------------------------------
def randn(*shape, dtype=torch.float32):
    return torch.randn(shape, dtype=dtype)


def positive(*shape, dtype=torch.float32, low: float = 0.5):
    """Random values in [low, low + 2): a safe domain for log, sqrt, reciprocal..."""
    return (torch.rand(shape, dtype=torch.float64) * 2 + low).to(dtype)


def unit(*shape, dtype=torch.float32, bound: float = 0.9):
    """Random values in (-bound, bound): the domain of asin, acos, atanh, erfinv."""
    return ((torch.rand(shape, dtype=torch.float64) * 2 - 1) * bound).to(dtype)


def nonzero_ints(*shape, high: int = 9, dtype=torch.int64):
    """Random nonzero integers in [-high, high]."""
    x = torch.randint(1, high + 1, shape, dtype=dtype)
    sign = torch.randint(0, 2, shape, dtype=dtype) * 2 - 1
    return x * sign


def ints(*shape, low: int = -9, high: int = 10, dtype=torch.int64):
    return torch.randint(low, high, shape, dtype=dtype)


def bools(*shape):
    return torch.rand(shape) > 0.5


def transposed(x: torch.Tensor) -> torch.Tensor:
    """The same values as `x` in a non-contiguous (transposed) layout."""
    assert x.dim() >= 2
    y = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not y.is_contiguous() or min(x.shape[-2:]) <= 1 or x.numel() == 0  # empty: always contiguous
    return y


def strided(x: torch.Tensor) -> torch.Tensor:
    """The same values as `x`, as every other element of a larger tensor (non-contiguous)."""
    big = torch.empty(*x.shape[:-1], x.shape[-1] * 2, dtype=x.dtype)
    big[..., ::2] = x
    return big[..., ::2]


# -- hypothesis strategies ---------------------------------------------------------------------

# Few examples, no deadline (each example compiles), no complaint about the autouse fixture, no
# example database written into the repository, and no shrinking (each shrink step compiles again:
# minutes); a failure reports the example as drawn.
FEW = settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None,
               phases=[Phase.explicit, Phase.generate])


def shapes(min_rank: int = 0, max_rank: int = 3, min_size: int = 1, max_size: int = 4):
    return st.lists(st.integers(min_size, max_size), min_size=min_rank, max_size=max_rank).map(tuple)


@st.composite
def broadcast_pair(draw, max_rank: int = 3, zero_size: bool = True):
    """Two shapes that broadcast together, often of different ranks, sometimes with a 0-size dim."""
    shape = list(draw(shapes(0, max_rank)))
    if zero_size and shape and draw(st.integers(0, 4)) == 0:
        shape[draw(st.integers(0, len(shape) - 1))] = 0
    rank = draw(st.integers(0, len(shape)))
    other = shape[len(shape) - rank:]
    for i in range(len(other)):
        if draw(st.booleans()):
            other[i] = 1
    pair = (tuple(shape), tuple(other))
    return pair if draw(st.booleans()) else pair[::-1]


def layouts():
    """How to lay out an input: as is, transposed (same values, non-contiguous), or strided."""
    return st.sampled_from(["contiguous", "transposed", "strided"])


def lay_out(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "transposed" and x.dim() >= 2:
        return transposed(x)
    if layout == "strided" and x.dim() >= 1:
        return strided(x)
    return x
