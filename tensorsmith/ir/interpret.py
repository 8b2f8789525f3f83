"""The reference interpreter: runs any graph through PyTorch eager ops, optionally in float64.

It defines what each op means; generated code is tested against it. In float64 mode every floating
value (parameters, converts, constants, fallback dtype arguments) is computed in float64. A graph
with symbolic sizes runs with their values (`sizes`, read from the arguments by runtime/sizes.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import ExecutionError, TensorsmithError
from .aten import ALIGNED_BIAS, LIBRARY_KERNELS, aligned_bias, from_attr, resolve_target
from .attrs import Operand
from .graph import Graph, Node
from .sizes import evaluate, is_symbolic
from .types import DType, TensorType, TupleType

_UNARY = {
    "neg": torch.neg, "abs": torch.abs, "sign": torch.sign, "exp": torch.exp, "log": torch.log,
    "log1p": torch.log1p, "expm1": torch.expm1, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
    "sin": torch.sin, "cos": torch.cos, "tan": torch.tan, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "erf": torch.erf, "erfinv": torch.erfinv, "asin": torch.asin,
    "acos": torch.acos, "atan": torch.atan, "sinh": torch.sinh, "cosh": torch.cosh,
    "asinh": torch.asinh, "acosh": torch.acosh, "atanh": torch.atanh, "log2": torch.log2,
    "exp2": torch.exp2, "reciprocal": torch.reciprocal, "floor": torch.floor, "ceil": torch.ceil,
    "round": torch.round, "trunc": torch.trunc, "is_finite": torch.isfinite,
    "not": lambda x: torch.logical_not(x) if x.dtype == torch.bool else torch.bitwise_not(x),
}


def _div(a, b):
    if a.dtype.is_floating_point or a.dtype.is_complex:
        return a / b
    return torch.div(a, b, rounding_mode="trunc")


def _logical(bool_fn, int_fn):
    return lambda a, b: bool_fn(a, b) if a.dtype == torch.bool else int_fn(a, b)


_BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": _div, "max": torch.maximum,
    "min": torch.minimum, "fmod": torch.fmod, "remainder": torch.remainder, "pow": torch.pow,
    "atan2": torch.atan2,
    "and": _logical(torch.logical_and, torch.bitwise_and),
    "or": _logical(torch.logical_or, torch.bitwise_or),
    "xor": _logical(torch.logical_xor, torch.bitwise_xor),
}
_COMPARE = {"EQ": torch.eq, "NE": torch.ne, "LT": torch.lt, "LE": torch.le, "GT": torch.gt,
            "GE": torch.ge}


def _reduce(x, kind, dims):
    if not dims:
        return x
    if kind == "sum":
        return torch.sum(x, dim=dims, dtype=x.dtype)
    if kind == "max":
        return torch.amax(x, dim=dims)
    if kind == "min":
        return torch.amin(x, dim=dims)
    for d in sorted(dims, reverse=True):  # prod, any, all take one dim at a time
        x = {"prod": lambda t: torch.prod(t, d, dtype=t.dtype), "any": lambda t: torch.any(t, d),
             "all": lambda t: torch.all(t, d)}[kind](x)
    return x


def _broadcast_in_dim(x, shape, dims):
    view = [1] * len(shape)
    for i, d in enumerate(dims):
        view[d] = x.shape[i]
    return x.reshape(view).expand(shape)


def _pad(x, low, high, value):
    """Pad by the positive amounts, then cut the negative ones (which may reach into the padding)."""
    pairs = []
    for lo, hi in reversed(list(zip(low, high))):
        pairs += [max(lo, 0), max(hi, 0)]
    if x.dtype == torch.bool:
        x = F.pad(x.to(torch.uint8), pairs, value=int(bool(value))).to(torch.bool)
    else:
        x = F.pad(x, pairs, value=value)
    return x[tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, lo, hi in zip(x.shape, low, high))]


def _take(x, index, dim):
    picked = torch.index_select(x.reshape(x.shape or [1]), dim, index.reshape(-1).long())
    return picked.reshape(*x.shape[:dim], *index.shape, *x.shape[dim + 1:])


def _index_add(x, index, src, dim):
    """x with src's slices added at index along dim. (Through index_put with accumulate, which
    computes the same sums and is several times faster than index_add on the CPU.)"""
    flat = src.reshape(*x.shape[:dim], index.numel(), *x.shape[dim + 1:])
    moved, values = x.movedim(dim, 0).clone(), flat.movedim(dim, 0)
    moved.index_put_((index.reshape(-1).long(),), values, accumulate=True)
    return moved.movedim(0, dim)


def _iota(shape, dim, dtype, device):
    view = [1] * len(shape)
    view[dim] = shape[dim]
    return torch.arange(shape[dim], dtype=dtype, device=device).reshape(view).expand(shape)


def _constant(value, shape, dtype, device):
    if isinstance(value, list):
        return torch.tensor(value, dtype=dtype, device=device).reshape(shape)
    return torch.full(shape, value, dtype=dtype, device=device)


def _align_bias(args: list, kwargs: dict, bias: int, key: int) -> None:
    """Lay out the attention bias argument (positional or `attn_bias=`) as the memory-efficient
    kernel reads it (ir/aten.py `aligned_bias`), in place in `args`/`kwargs`."""
    keys = args[key].size(-2)
    if bias < len(args) and isinstance(args[bias], torch.Tensor):
        args[bias] = aligned_bias(args[bias], keys)
    elif isinstance(kwargs.get("attn_bias"), torch.Tensor):
        kwargs["attn_bias"] = aligned_bias(kwargs["attn_bias"], keys)


# ATen ops that address their input's storage (an absolute storage offset), not its elements. An
# IR value has no layout: they must see it as eager made it, a tensor owning its storage from offset
# 0. A generated kernel's output is a view of the shared arena at the memory plan's offset, where
# as_strided_scatter (AdaptiveAvgPool's backward: Swin's pooler) writes into the arena's copy
# outside the view and returns its input unchanged (and copies the whole arena to do it).
STORAGE_ADDRESSING = frozenset(f"aten.{name}.default" for name in (
    "as_strided", "as_strided_scatter", "as_strided_copy"))


def _own_storage(t: torch.Tensor) -> torch.Tensor:
    """`t` itself where it is its storage from offset 0, else a contiguous copy that is."""
    if t.storage_offset() == 0 and t.is_contiguous() and \
            t.untyped_storage().nbytes() == t.numel() * t.element_size():
        return t
    return t.clone(memory_format=torch.contiguous_format)


def _bound_arguments(value, map_dtype):
    """`from_attr(value, operands, map_dtype)` as a function of the operands, for static attributes:
    everything without an operand is resolved once; lists and dicts holding operands are rebuilt
    on each call (a fresh list, as the op may keep or change it), their constant parts reused."""
    if not _holds_operand(value):
        constant = from_attr(value, [], map_dtype)
        if isinstance(constant, list):
            return lambda operands: list(constant)
        if isinstance(constant, dict):
            return lambda operands: dict(constant)
        return lambda operands: constant
    if isinstance(value, Operand):
        index = value.index
        return lambda operands: operands[index]
    if isinstance(value, list):
        parts = [_bound_arguments(v, map_dtype) for v in value]
        return lambda operands: [part(operands) for part in parts]
    if isinstance(value, dict):
        parts = {k: _bound_arguments(v, map_dtype) for k, v in value.items()}
        return lambda operands: {k: part(operands) for k, part in parts.items()}
    return lambda operands: from_attr(value, operands, map_dtype)


def _holds_operand(value) -> bool:
    if isinstance(value, Operand):
        return True
    if isinstance(value, list):
        return any(_holds_operand(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_operand(v) for v in value.values())
    return False


class Interpreter:
    """Evaluates nodes one at a time; `float64` computes all floating values in float64."""

    def __init__(self, float64: bool = False):
        self.float64 = float64
        self.sizes: dict = {}  # the values of a symbolic graph's size symbols, for this run
        self._symbolic: dict[Node, bool] = {}  # whether a node's attributes hold symbolic sizes

    def dtype(self, dtype: DType) -> torch.dtype:
        if self.float64 and dtype.is_float:
            return torch.float64
        return dtype.torch_dtype

    def run(self, graph: Graph, inputs, sizes: dict | None = None) -> list[torch.Tensor]:
        if len(inputs) != len(graph.params):
            raise TensorsmithError(f"graph @{graph.name} takes {len(graph.params)} inputs, got {len(inputs)}")
        self.sizes = sizes or {}
        env: dict[Node, object] = {}
        for p, x in zip(graph.params, inputs):
            env[p] = x.to(self.dtype(p.type.dtype)) if self.float64 else x
        for node in graph.nodes:
            try:
                env[node] = self.eval(node, [env[i] for i in node.inputs])
            except TensorsmithError:
                raise
            except Exception as e:  # name the op and the user's line, keep the original cause
                op = node.attrs["target"] if node.op == "fallback" else node.op
                raise ExecutionError(str(e).splitlines()[0] if str(e) else type(e).__name__, op,
                                     node.source) from e
        return [env[o] for o in graph.outputs]

    def eval(self, node: Node, args: list):
        op, a = node.op, self._attrs(node)
        if op in _UNARY:
            return _UNARY[op](args[0])
        if op in _BINARY:
            return _BINARY[op](*args)
        if op == "compare":
            return _COMPARE[a["dir"]](*args)
        if op == "select":
            return torch.where(*args)
        if op == "convert":
            return args[0].to(self.dtype(a["dtype"]))
        if op == "broadcast_in_dim":
            return _broadcast_in_dim(args[0], a["shape"], a["dims"])
        if op == "reshape":
            return args[0].reshape(a["shape"])
        if op == "transpose":
            return args[0].permute(a["perm"])
        if op == "reverse":
            return torch.flip(args[0], a["dims"]) if a["dims"] else args[0]
        if op == "slice":
            return args[0][tuple(slice(*s) for s in zip(a["starts"], a["limits"], a["strides"]))]
        if op == "concat":
            return torch.cat(args, a["dim"])
        if op == "pad":
            return _pad(args[0], a["low"], a["high"], a["value"])
        if op == "reduce":
            return _reduce(args[0], a["kind"], a["dims"])
        if op in ("argmax", "argmin"):
            return getattr(torch, op)(args[0], a["dim"])
        if op == "dot":
            return torch.matmul(*args)
        if op == "addmm":
            return torch.addmm(*args)
        if op == "convolution":
            return torch.ops.aten.convolution(args[0], args[1], None, a["stride"], a["padding"],
                                              a["dilation"], a["transposed"], a["output_padding"],
                                              a["groups"])
        if op == "take":
            return _take(*args, a["dim"])
        if op == "gather":
            return torch.gather(args[0], a["dim"], args[1].long())
        if op == "scatter_add":
            return torch.scatter_add(args[0], a["dim"], args[1].long(), args[2])
        if op == "scatter":
            return torch.scatter(args[0], a["dim"], args[1].long(), args[2])
        if op == "index_add":
            return _index_add(*args, a["dim"])
        if op == "iota":
            return _iota(a["shape"], a["dim"], self.dtype(a["dtype"]), a["device"])
        if op == "constant":
            return _constant(a["value"], a["shape"], self.dtype(a["dtype"]), a["device"])
        if op == "random":
            sample = torch.rand if a["dist"] == "uniform" else torch.randn
            return sample(a["shape"], dtype=self.dtype(a["dtype"]), device=a["device"])
        if op == "get":
            return args[0][a["index"]]
        if op == "fallback":
            return self.fallback(node, args)
        raise TensorsmithError(f"the interpreter has no rule for op {op!r}")

    def _attrs(self, node: Node) -> dict:
        """The node's attributes, with this run's values of symbolic sizes."""
        if not self.sizes:
            return node.attrs
        symbolic = self._symbolic.get(node)
        if symbolic is None:
            symbolic = self._symbolic[node] = is_symbolic(node.attrs)
        return evaluate(node.attrs, self.sizes) if symbolic else node.attrs

    def apply_views(self, tensor, chain: list[Node]):
        """`tensor` seen through the view nodes `chain`, in order, as PyTorch views (no copy)."""
        for view in chain:
            tensor = self.eval(view, [tensor])
        return tensor

    def bind_views(self, chain: list[Node]):
        """`apply_views` over `chain` as one function of the tensor, for a caller applying the same
        chain on every call: static reshapes, transposes and slices become the PyTorch call itself."""
        steps = [self._bound_view(view) for view in chain]
        if len(steps) == 1:
            return steps[0]

        def apply(tensor):
            for step in steps:
                tensor = step(tensor)
            return tensor
        return apply

    def _bound_view(self, view: Node):
        a = view.attrs
        if is_symbolic(a) or view.op not in ("reshape", "transpose", "slice"):
            return lambda tensor: self.eval(view, [tensor])
        if view.op == "reshape":
            shape = tuple(a["shape"])
            return lambda tensor: tensor.reshape(shape)
        if view.op == "transpose":
            perm = tuple(a["perm"])
            return lambda tensor: tensor.permute(perm)
        index = tuple(slice(*s) for s in zip(a["starts"], a["limits"], a["strides"]))
        return lambda tensor: tensor[index]

    def fallback(self, node: Node, args: list, target=None):
        """Call the ATen op (or `target`, a function computing the same). IR values have no layout,
        so it sees them contiguous (row-major), which is what layout-dependent ops such as
        as_strided are imported for; ops addressing the storage itself (STORAGE_ADDRESSING) see
        tensors that own their storage from offset 0."""
        return self.bind_fallback(node, target)(args)

    def bind_fallback(self, node: Node, target=None):
        """`fallback(node, args, target)` as a function of `args`, with what depends on neither the
        arguments nor this run's sizes (the target, the attributes as ATen arguments) worked out
        once, for a caller running the same node on every call."""
        name = node.attrs["target"]
        target = target or resolve_target(name)
        contiguous, own_storage = name not in LIBRARY_KERNELS, name in STORAGE_ADDRESSING
        positions = ALIGNED_BIAS.get(name)
        if is_symbolic(node.attrs):
            def arguments(args):
                attrs = self._attrs(node)
                return from_attr(attrs["args"], args, self.dtype), from_attr(attrs["kwargs"], args, self.dtype)
        else:
            args_of = _bound_arguments(node.attrs["args"], self.dtype)
            kwargs_of = _bound_arguments(node.attrs["kwargs"], self.dtype)

            def arguments(args):
                return args_of(args), kwargs_of(args)

        def call(args):
            if contiguous:
                args = [a.contiguous() if isinstance(a, torch.Tensor) else a for a in args]
            if own_storage:
                args = [_own_storage(a) if isinstance(a, torch.Tensor) else a for a in args]
            call_args, call_kwargs = arguments(args)
            if positions is not None:
                _align_bias(call_args, call_kwargs, *positions)
            result = target(*call_args, **call_kwargs)
            if isinstance(node.type, TupleType):
                result = tuple(r for r in result if r is not None)  # the IR type leaves Nones out
                for t, r in zip(node.type.elements, result):
                    self._check_fallback_result(node, t, r)
            else:
                self._check_fallback_result(node, node.type, result)
            return result
        return call

    def _check_fallback_result(self, node: Node, expected: TensorType, result):
        """A fallback must produce what the graph declared; anything else is a compiler bug."""
        shape = evaluate(expected.shape, self.sizes) if self.sizes else expected.shape
        if not isinstance(result, torch.Tensor) or tuple(result.shape) != shape or (
                not self.float64 and result.dtype != expected.dtype.torch_dtype):
            got = f"{result.dtype}{list(result.shape)}" if isinstance(result, torch.Tensor) else repr(result)
            raise TensorsmithError(f"fallback {node.attrs['target']} returned {got}, "
                                   f"the graph declared {expected}")


def interpret(graph: Graph, inputs, float64: bool = False, sizes: dict | None = None) -> list[torch.Tensor]:
    """Run `graph` on `inputs` (tensors, one per parameter) and return its outputs; `sizes` gives
    the values of a symbolic graph's size symbols."""
    return Interpreter(float64).run(graph, list(inputs), sizes)
