"""Build kernel value expressions from IR nodes: producers are inlined into their consumers and
views become index maps; materialized values are loaded from their buffers."""
from __future__ import annotations

import contextlib
import contextvars

from ..ir.graph import Node
from ..ir.ops import FLOAT_BINARY, FLOAT_UNARY, LOGICAL_BINARY, LOGICAL_UNARY, NUMERIC_BINARY, NUMERIC_UNARY
from ..ir.sizes import provably
from ..ir.types import BF16, BOOL, F16, F32, F64, I8, I16, I32, I64, U8
from .index import Affine, Indirect, linearize, reshape_index
from .kernel import Const, Expr, IndexValue, Load, Op

# Element types the generated code handles; other values go through library calls.
KERNEL_DTYPES = {F32, F64, I8, I16, I32, I64, U8, BOOL}
# Also handled by the Triton emitter alone (rounded at every op as eager does: triton/values.py).
HALF_DTYPES = {F16, BF16}
_KERNEL_AND_HALF_DTYPES = KERNEL_DTYPES | HALF_DTYPES
_HALF_KERNELS = contextvars.ContextVar("tensorsmith_half_kernels", default=False)


@contextlib.contextmanager
def half_kernels(enabled: bool = True):
    """Let float16/bfloat16 nodes into kernels meanwhile (Triton's code generation turns it on;
    the C++ emitter has no half types)."""
    token = _HALF_KERNELS.set(enabled)
    try:
        yield
    finally:
        _HALF_KERNELS.reset(token)
ELEMENTWISE = (set(FLOAT_UNARY) - {"erfinv"}) | set(NUMERIC_UNARY) | set(LOGICAL_UNARY) | \
    set(FLOAT_BINARY) | set(NUMERIC_BINARY) | set(LOGICAL_BINARY) | {"compare", "select", "convert",
                                                                      "is_finite"}
INTEGER_TRAPS = {"div", "fmod", "remainder"}  # integer division by zero must raise as in eager
VIEWS = {"broadcast_in_dim", "reshape", "transpose", "reverse", "slice", "concat", "pad", "take",
         "gather", "iota"}
REDUCTIONS = {"reduce", "argmax", "argmin"}


def kernelizable(node: Node) -> bool:
    """Whether generated code computes this node (else a library call does)."""
    dtypes = _KERNEL_AND_HALF_DTYPES if _HALF_KERNELS.get() else KERNEL_DTYPES
    if getattr(node.type, "dtype", None) not in dtypes:
        return False
    for i in node.inputs:
        if getattr(i.type, "dtype", None) not in dtypes:
            return False
    if node.op in INTEGER_TRAPS and not node.type.dtype.is_float:
        return False
    if node.op == "constant":
        return not isinstance(node.attrs["value"], list)
    if node.op == "reduce" and node.attrs["kind"] == "prod" and not node.type.dtype.is_float:
        return False
    if node.op == "scatter":
        return one_per_row_scatter(node)
    return node.op in ELEMENTWISE or node.op in VIEWS or node.op in REDUCTIONS


def one_per_row_scatter(node: Node) -> bool:
    """A torch.scatter whose index holds one position per row along `dim` (one-hot targets: the
    cross-entropy backward): no two writes collide, so each element is a select, fusable with its
    neighbours instead of a zero-filled buffer written twice."""
    x, idx, _ = node.inputs
    dim = node.attrs["dim"]
    return provably(lambda: idx.type.shape[dim] == 1 and all(
        n == m for d, (n, m) in enumerate(zip(idx.type.shape, x.type.shape)) if d != dim))


def is_empty(node: Node) -> bool:
    """Whether the node has no elements, for every value of its symbolic sizes."""
    return provably(lambda: node.type.numel == 0)


def is_pointwise(node: Node) -> bool:
    return kernelizable(node) and node.op not in REDUCTIONS


class CannotFuse(Exception):
    """The value cannot be computed inside this kernel (a dependency comes later, or a reduction of
    this kernel is read at another point than the one being computed)."""


class ExprBuilder:
    """Expressions for one kernel.

    `load(node)` gives the buffer to read a materialized node from, or None when this kernel computes
    the node itself (then it is inlined); `locals` maps this kernel's reductions to their Local and the
    only index at which they may be read.
    """

    def __init__(self, load, locals: dict):
        self.load = load
        self.locals = locals
        self.buffers_read: set[str] = set()

    def value(self, node: Node, index: list[Affine]) -> Expr:
        if is_empty(node):  # no loop ever reads it
            return Const(0, node.type.dtype)
        if node in self.locals:
            local, expected = self.locals[node]
            if not provably(lambda: list(index) == list(expected)):
                raise CannotFuse("reduction read at another point")
            return local
        buffer = self.load(node)
        if buffer is not None:
            self.buffers_read.add(buffer)
            return Load(buffer, linearize(index, node.type.shape), node.type.dtype)
        if not is_pointwise(node):
            raise CannotFuse(f"{node.op} is not computed in this kernel")
        return getattr(self, "_" + node.op, self._elementwise)(node, index)

    # -- elementwise ----------------------------------------------------------------------------
    def _elementwise(self, node: Node, index):
        args = tuple(self.value(i, index) for i in node.inputs)
        return Op(node.op, args, node.type.dtype, node.attrs.get("dir"))

    def _convert(self, node: Node, index):
        arg = self.value(node.inputs[0], index)
        return arg if arg.dtype == node.type.dtype else Op("convert", (arg,), node.type.dtype)

    def _constant(self, node: Node, index):
        return Const(node.attrs["value"], node.type.dtype)

    def _iota(self, node: Node, index):
        return IndexValue(index[node.attrs["dim"]], node.type.dtype)

    # -- views: index maps ---------------------------------------------------------------------
    def _broadcast_in_dim(self, node: Node, index):
        x = node.inputs[0]
        return self.value(x, [index[d] if x.type.shape[i] != 1 else Affine()
                              for i, d in enumerate(node.attrs["dims"])])

    def _reshape(self, node: Node, index):
        x = node.inputs[0]
        return self.value(x, reshape_index(list(index), node.type.shape, x.type.shape))

    def _transpose(self, node: Node, index):
        perm = node.attrs["perm"]
        source = [Affine()] * len(perm)
        for k, p in enumerate(perm):
            source[p] = index[k]
        return self.value(node.inputs[0], source)

    def _reverse(self, node: Node, index):
        shape = node.type.shape
        return self.value(node.inputs[0], [Affine.of(shape[d] - 1) - index[d] if d in node.attrs["dims"]
                                           else index[d] for d in range(len(shape))])

    def _slice(self, node: Node, index):
        a = node.attrs
        return self.value(node.inputs[0], [i * st + lo for i, lo, st in
                                           zip(index, a["starts"], a["strides"])])

    def _pad(self, node: Node, index):
        x = node.inputs[0]
        source = [i - lo for i, lo in zip(index, node.attrs["low"])]
        inside = None
        for s, size in zip(source, x.type.shape):
            for cond in (Op("compare", (IndexValue(s, I64), Const(0, I64)), BOOL, "GE"),
                         Op("compare", (IndexValue(s, I64), Const(size, I64)), BOOL, "LT")):
                if provably(lambda: s.bounds()[0] >= 0 if cond.dir == "GE" else s.bounds()[1] < size):
                    continue  # always true
                inside = cond if inside is None else Op("and", (inside, cond), BOOL)
        value = Const(node.attrs["value"], node.type.dtype)
        if is_empty(x):
            return value
        loaded = self.value(x, source)
        if inside is None:
            return loaded
        return Op("guarded_select", (inside, loaded, value), node.type.dtype)

    def _concat(self, node: Node, index):
        dim = node.attrs["dim"]
        pieces, offset = [], 0
        for x in node.inputs:
            size = x.type.shape[dim]
            if size:
                shifted = list(index)
                shifted[dim] = index[dim] - offset
                pieces.append((offset + size, self.value(x, shifted)))
            offset += size
        result = pieces[-1][1]
        for end, value in reversed(pieces[:-1]):
            cond = Op("compare", (IndexValue(index[dim], I64), Const(end, I64)), BOOL, "LT")
            result = Op("guarded_select", (cond, value, result), node.type.dtype)
        return result

    def _take(self, node: Node, index):
        x, idx = node.inputs
        dim, rank = node.attrs["dim"], idx.type.rank
        position = self.value(idx, index[dim:dim + rank])
        source = [*index[:dim], Affine.of(Indirect(position, x.type.shape[dim])), *index[dim + rank:]]
        return self.value(x, source)

    def _scatter(self, node: Node, index):
        """out[.., j, ..] = src[.., 0, ..] where j == index[.., 0, ..], else x[.., j, ..]; the index
        is checked as a gather's is (an out-of-range one raises IndexOutOfRange, as eager raises)."""
        x, idx, src = node.inputs
        dim = node.attrs["dim"]
        row = list(index)
        row[dim] = Affine()
        target = IndexValue(Affine.of(Indirect(self.value(idx, row), x.type.shape[dim])), I64)
        hit = Op("compare", (IndexValue(index[dim], I64), target), BOOL, "EQ")
        return Op("select", (hit, self.value(src, row), self.value(x, index)), node.type.dtype)

    def _gather(self, node: Node, index):
        x, idx = node.inputs
        dim = node.attrs["dim"]
        source = list(index)
        source[dim] = Affine.of(Indirect(self.value(idx, index), x.type.shape[dim]))
        return self.value(x, source)

