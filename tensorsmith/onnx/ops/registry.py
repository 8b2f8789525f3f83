"""The table of ONNX ops tensorsmith runs, and the rules op implementations follow.

An op is a function `fn(node, *inputs)` over torch tensors (None for an omitted optional input)
that returns a tensor or a tuple of tensors, registered with `@op("Name", ...)`. It is written with
torch operations only, so that the same code runs eagerly and traces into an ATen graph.

A traced graph is specialized to its input shapes, so an op may read a tensor's *values* into
Python (a Reshape's shape, a Slice's starts) only through `ints`, `floats` or `scalar`: they accept
constants (initializers, Constant nodes, Shape results and what is computed from them alone) and
raise `DataDependent` for values that change from call to call, which then run eagerly. Never call
`.tolist()`, `.item()`, `int()` or `.numpy()` on an input tensor directly.
"""
from __future__ import annotations

import contextvars
import math
import struct
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class OpDef:
    fn: Callable
    data_dependent: bool = False  # its output's shape depends on input values (NonZero, Unique)
    random: bool = False          # its values differ from call to call: never folded


OPS: dict[tuple[str, str], OpDef] = {}


def op(*names: str, domain: str = "", data_dependent: bool = False, random: bool = False):
    """Register `fn` as the implementation of the ONNX ops `names` in `domain`."""
    def register(fn):
        for name in names:
            OPS[(domain, name)] = OpDef(fn, data_dependent, random)
        return fn
    return register


# Loops (Loop, the time steps of RNN/GRU/LSTM) unroll into a traced graph up to this many
# iterations; a longer one runs eagerly rather than growing a graph without bound.
UNROLLED_ITERATIONS = 1024


class DataDependent(Exception):
    """A traced op needed the values of a tensor that is not a constant; the caller runs the
    model eagerly for this input signature."""


class Scope:
    """What the interpreter tells ops during one run: which tensors are constants, whether the
    run is being traced, the device, and how to run a subgraph (If, Loop, Scan bodies)."""

    def __init__(self, tracing: bool, run_subgraph: Callable, device: torch.device):
        self.tracing = tracing
        self.device = device  # where the model runs: for tensors ops create from attributes
        self.constant_ids: set[int] = set()
        self._alive: list[torch.Tensor] = []  # constants are kept alive so that ids stay unique
        self.run_subgraph = run_subgraph
        # The values, by name, of the graph whose node runs now: the outer scope of the node's
        # subgraphs. Read it before running a subgraph, which replaces it.
        self.env: dict = {}

    def mark_constant(self, t) -> None:
        if isinstance(t, torch.Tensor):
            self.constant_ids.add(id(t))
            self._alive.append(t)

    def is_constant(self, t) -> bool:
        return not isinstance(t, torch.Tensor) or id(t) in self.constant_ids


_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("onnx_scope", default=None)


def scope() -> Scope:
    current = _SCOPE.get()
    if current is None:
        raise RuntimeError("ONNX ops run only inside the interpreter")
    return current


def _static(t: torch.Tensor, what: str) -> torch.Tensor:
    current = _SCOPE.get()
    if current is not None and current.tracing and not current.is_constant(t):
        raise DataDependent(f"{what} comes from a value computed at run time")
    return t


def ints(t: torch.Tensor | None, what: str = "an integer argument") -> list[int] | None:
    """The values of a constant integer tensor as a Python list (None stays None)."""
    if t is None:
        return None
    return [int(v) for v in _static(t, what).reshape(-1).tolist()]


def floats(t: torch.Tensor | None, what: str = "a float argument") -> list[float] | None:
    if t is None:
        return None
    return [float(v) for v in _static(t, what).reshape(-1).tolist()]


def scalar(t: torch.Tensor | None, what: str = "a scalar argument"):
    """The single value of a constant tensor as a Python number (None stays None)."""
    if t is None:
        return None
    values = _static(t, what).reshape(-1).tolist()
    if len(values) != 1:
        raise ValueError(f"{what} must hold one value, got {len(values)}")
    return values[0]


def is_constant(t) -> bool:
    """Whether `t`'s values are known when tracing (so `ints`/`scalar` may read them)."""
    current = _SCOPE.get()
    return current is None or not current.tracing or current.is_constant(t)


# torch stores these unsigned types but computes with few of them: compute in a wider signed type
# and cast back (uint64 values of 2**63 and more wrap, as they do in C).
_WIDER = {torch.uint16: torch.int32, torch.uint32: torch.int64, torch.uint64: torch.int64}


def computable(x: torch.Tensor) -> torch.Tensor:
    """`x` in a dtype torch's kernels accept (unsigned 16/32/64-bit widened to signed)."""
    wider = _WIDER.get(x.dtype)
    return x if wider is None else x.to(wider)


def lowest(dtype: torch.dtype):
    """The least value of `dtype` (-inf for floats): what a max over nothing starts from."""
    if dtype == torch.bool:
        return False
    return -math.inf if dtype.is_floating_point else torch.iinfo(dtype).min


def highest(dtype: torch.dtype):
    """The greatest value of `dtype` (inf for floats): what a min over nothing starts from."""
    if dtype == torch.bool:
        return True
    return math.inf if dtype.is_floating_point else torch.iinfo(dtype).max


def rounder(dtype: torch.dtype):
    """Rounds Python floats to float32 or float16 precision (others unchanged), as arithmetic on
    numpy scalars of that dtype does: sizes and coordinates computed in Python then match the
    reference's."""
    code = {torch.float32: "f", torch.float16: "e"}.get(dtype)
    if code is None:
        return lambda v: v
    return lambda v: struct.unpack(code, struct.pack(code, v))[0]
