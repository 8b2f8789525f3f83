"""Numeric guards (`config.check_numerics = "warn" | "raise"`): NaN/Inf that a compiled graph makes,
reported at the op that made it — forward or backward graph, the value's shape, the model's line.

What runs on the hot path (nothing of it when the guards are off):
  - generated C++ kernels OR-reduce "stored a NaN/Inf" over their floating stores, in the same
    vectorized loops (codegen/cpp/emit.py), and return it as a bit beside the index-error bit;
  - library steps (matmul, convolution, fallbacks, float16 ops) check their result with one sum
    (NaN or Inf anywhere makes the sum non-finite; a sum that overflowed is confirmed element-wise);
  - the forward's (and inference's) tensor arguments are checked once per call: a NaN/Inf
    argument is an input incident naming the argument. The backward's arguments are what the
    forward saved and checked.

The rule, so that NaN/Inf a model makes on purpose is never reported: a non-finite value is an
incident only where it is NEW — made by an op whose operands were all finite and that has no
non-finite constant of its own. `scores.masked_fill(mask, -inf)` has -inf as its own constant, so
its result is not new; a softmax, matmul or copy that reads that -inf is not new either (an operand
was not finite). A log of a negative number, a division by zero, an exp that overflows: all new.

Only when a kernel's flag or a library check fires (the cold path) does the guard look closer: it
evaluates the ops the kernel fused again with the reference interpreter, from the kernel's own
input buffers (still intact: the memory plan never lets a kernel's outputs overlap its inputs), and
reports the ops, in program order, whose values are new ("raise" stops at the first). A kernel that once stored NaN/Inf that
was not new (a -inf mask) is not examined again while it has a non-finite constant or reads a
non-finite input, so a model that stores -inf every step pays for one examination, not one per step;
with "warn", a kernel or library step already warned about is not examined again either.

"warn" warns once per op and source line and writes an `incident` event; "raise" raises
NumericsError at the first new NaN/Inf. Other backends (the Triton runtime) can reuse this:
raise a flag per kernel, then call `NumericsGuard.kernel` with the kernel's buffers.
"""
from __future__ import annotations

import math
import warnings

import torch

from .. import config, events
from ..errors import (
    ExecutionError,
    InputError,
    NumericsError,
    NumericsWarning,
    TensorsmithError,
)
from ..ir.interpret import Interpreter

MODES = ("off", "warn", "raise")


def configured_mode() -> str:
    mode = str(config.check_numerics or "off").strip().lower()
    if mode not in MODES:
        raise TensorsmithError(f"config.check_numerics (TENSORSMITH_CHECK_NUMERICS) must be one of "
                               f"{', '.join(MODES)}, not {config.check_numerics!r}")
    return mode


def guard_for(graph, graph_id: str | None = None) -> NumericsGuard | None:
    """The guard for `graph` as `config.check_numerics` says now (at compile time), or None."""
    mode = configured_mode()
    return None if mode == "off" else NumericsGuard(graph, graph_id or graph.name, mode)


def all_finite(value) -> bool:
    """The hot-path check (a library result, an argument): one sum, which NaN or Inf anywhere makes
    non-finite (confirmed element-wise then: finite values can overflow a sum). On the CPU a sum
    costs far less than `torch.isfinite(x).all()`, which writes a bool tensor first."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or value.numel() == 0 or value.is_meta:
            return True
        total = value.sum(dtype=torch.float32) if value.element_size() < 4 else value.sum()
        return bool(torch.isfinite(total)) or finite(value)
    if isinstance(value, (tuple, list)):
        return all(all_finite(v) for v in value)
    return True


def finite(value) -> bool:
    """Whether every floating value in `value` (a tensor, tuple or number) is finite."""
    if isinstance(value, torch.Tensor):
        if not (value.is_floating_point() or value.is_complex()) or value.numel() == 0 or value.is_meta:
            return True
        return bool(torch.isfinite(value).all())
    if isinstance(value, (tuple, list)):
        return all(finite(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return True


def _nonfinite_constant(value, depth: int = 0) -> bool:
    """Whether an attribute holds a NaN/Inf of its own (masked_fill's -inf, full(-inf), pad value)."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if depth > 4:
        return False
    if isinstance(value, (list, tuple)):
        return any(_nonfinite_constant(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_nonfinite_constant(v, depth + 1) for v in value.values())
    return False


def deliberate(node) -> bool:
    """A node whose own constants are NaN/Inf: its non-finite values are made on purpose."""
    return _nonfinite_constant(node.attrs)


def describe(value) -> str:
    """'NaN', 'Inf' or 'NaN and Inf', with how many of how many values."""
    tensors = [v for v in (value if isinstance(value, (tuple, list)) else [value])
               if isinstance(v, torch.Tensor) and v.is_floating_point()]
    nan = sum(int(torch.isnan(t).sum()) for t in tensors)
    inf = sum(int(torch.isinf(t).sum()) for t in tensors)
    total = sum(t.numel() for t in tensors)
    what = " and ".join(w for w, n in (("NaN", nan), ("Inf", inf)) if n) or "NaN/Inf"
    return f"{what} ({nan + inf} of {total} values)"


def _op_name(node) -> str:
    return node.attrs["target"] if node.op == "fallback" else node.op


class NumericsGuard:
    """The cold path of the numeric guards for one compiled graph."""

    def __init__(self, graph, graph_id: str, mode: str):
        self.graph, self.graph_id, self.mode = graph, graph_id, mode
        self.kind = graph.name  # "forward", "backward" or "inference" for graphs from torch.compile
        self.order = {node: i for i, node in enumerate(graph.nodes)}
        self.reported: set = set()  # (op, source) sites already warned about
        self.benign: set[str] = set()  # kernels whose non-finite stores were found not new
        self.warned: set = set()  # kernels and library nodes already warned about: not examined again
        self.kernel_nodes: dict[str, list] = {}

    # -- inputs (part of the input guards) -------------------------------------------------------

    def check_inputs(self, positions, tensors) -> None:
        """NaN/Inf in a tensor argument of a forward or inference graph is an input incident."""
        if self.kind == "backward":
            return
        sums: dict = {}  # device -> the sums of its arguments (meta tensors have no values)
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() and not t.is_meta:
                sums.setdefault(t.device, []).append(t.detach().sum(dtype=torch.float32))
        if all(bool(torch.isfinite(torch.stack(s)).all()) for s in sums.values()):
            return  # one synchronization per device
        for position, param, tensor in zip(positions, self.graph.params, tensors):
            if finite(tensor):
                continue
            message = (f"argument {position} ({param.name}) contains {describe(tensor)}; with "
                       f"check_numerics={self.mode!r} tensor arguments must be finite "
                       f"(expected {param.type})")
            site = ("argument", param.name)
            first = site not in self.reported
            self.reported.add(site)
            if first or self.mode == "raise":  # as for ops: "warn" tells once per argument
                events.incident("numerics_input", graph=self.graph_id, graph_kind=self.kind,
                                argument=param.name, position=position, shape=list(tensor.shape),
                                value=describe(tensor))
            if self.mode == "raise":
                raise InputError(message)
            if first:
                warnings.warn(f"tensorsmith: {message}", NumericsWarning, stacklevel=2)

    # -- library steps -----------------------------------------------------------------------------

    def library(self, node, args, result) -> None:
        """A library step's result was not all finite (the caller checked with `all_finite`)."""
        if node in self.warned or deliberate(node) or not all(finite(a) for a in args):
            return
        self._report(node, result, "library call")
        self.warned.add(node)

    # -- generated kernels -------------------------------------------------------------------------

    def kernel(self, schedule, kernel, inputs, outputs) -> None:
        """A generated kernel stored NaN/Inf; `inputs`/`outputs` are its buffers' tensors, in the
        order of `kernel.inputs`/`kernel.outputs`."""
        if kernel.name in self.warned:
            return
        known = {schedule.buffers[b].node: t for b, t in zip(kernel.inputs, inputs)}
        nodes = self._nodes_of(schedule, kernel, known)
        if kernel.name in self.benign and (nodes is None or any(deliberate(n) for n in nodes)
                                           or not all(finite(t) for t in inputs)):
            return
        found, reproduced = [], False
        if nodes is not None:
            try:
                found, reproduced = self._new_values(nodes, known)
            except Exception:  # noqa: BLE001 (a bug here must not hide the finding: judge the whole)
                found, reproduced = [], False
        if not found and not reproduced and all(finite(t) for t in inputs):
            # The reference did not reproduce it (or could not re-evaluate the kernel's ops) and all
            # the kernel read was finite: its first non-finite store is new.
            found = [(schedule.buffers[b].node, t) for b, t in zip(kernel.outputs, outputs)
                     if not finite(t)][:1]
        if not found:
            self.benign.add(kernel.name)
            return
        for node, value in found:  # "raise" raises at the first
            self._report(node, value, f"generated kernel {kernel.name}")
        self.warned.add(kernel.name)

    def _nodes_of(self, schedule, kernel, known):
        """The IR nodes the kernel computes (from its inputs to its stores), in program order."""
        if kernel.name in self.kernel_nodes:
            return self.kernel_nodes[kernel.name]
        needed, stack = set(), [schedule.buffers[b].node for b in kernel.outputs]
        while stack:
            node = stack.pop()
            if node in needed or node in known:
                continue
            if node.op == "param":  # not an input of this kernel: cannot be re-evaluated here
                self.kernel_nodes[kernel.name] = None
                return None
            needed.add(node)
            stack.extend(node.inputs)
        nodes = sorted(needed, key=lambda n: self.order.get(n, -1))
        self.kernel_nodes[kernel.name] = nodes
        return nodes

    def _new_values(self, nodes, known):
        """([(node, value)] of the nodes, in program order, whose value is non-finite from finite
        operands and without a non-finite constant of their own; whether any value was non-finite)."""
        interpreter, env, found, reproduced = Interpreter(), dict(known), [], False
        for node in nodes:
            args = [env[i] for i in node.inputs]
            value = env[node] = interpreter.eval(node, args)
            if not finite(value):
                reproduced = True
                if not deliberate(node) and all(finite(a) for a in args):
                    found.append((node, value))
        return found, reproduced

    # -- the interpreter executor ------------------------------------------------------------------

    def run_interpreter(self, tensors):
        """The reference interpreter with every node's value checked (the interpreter executor's
        equivalent of the fused checks)."""
        interpreter, env = Interpreter(), dict(zip(self.graph.params, tensors))
        for node in self.graph.nodes:
            args = [env[i] for i in node.inputs]
            try:
                value = env[node] = interpreter.eval(node, args)
            except TensorsmithError:
                raise
            except Exception as e:  # as Interpreter.run: name the op and the user's line
                raise ExecutionError(str(e).splitlines()[0] if str(e) else type(e).__name__,
                                     _op_name(node), node.source) from e
            if not finite(value) and not deliberate(node) and all(finite(a) for a in args):
                self._report(node, value, "interpreter")
        return [env[o] for o in self.graph.outputs]

    # -- reporting ---------------------------------------------------------------------------------

    def _report(self, node, value, via: str) -> None:
        op = _op_name(node)
        shape = list(value.shape) if isinstance(value, torch.Tensor) else None
        what = describe(value)
        message = (f"made {what} from finite inputs in the {self.kind} graph ({self.graph_id}), "
                   f"shape {shape} ({via})")
        site = (op, node.source)
        first = site not in self.reported
        self.reported.add(site)
        if first or self.mode == "raise":
            events.incident("numerics", graph=self.graph_id, graph_kind=self.kind, op=op, shape=shape,
                            source=node.source, value=what, via=via)
        if self.mode == "raise":
            raise NumericsError(message, op, node.source, self.kind, shape)
        if first:
            where = f" at {node.source}" if node.source else ""
            warnings.warn(f"tensorsmith: {op}{where} {message}", NumericsWarning, stacklevel=2)
