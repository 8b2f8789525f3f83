"""Fusion: turn a graph into a schedule of generated kernels and library calls.

Pointwise ops and views are inlined into their consumers (views become index maps). A value is
materialized in a buffer when it is a graph output, feeds a library call (matmul, convolution,
fallback ...), is a reduction, or is computed (not just viewed) and used more than once — so no
kernel recomputes work another kernel already did — unless it is a few exact ops over one large
buffer, which each consumer redoes more cheaply than a store and reload. Each materialized value
then joins the most recent kernel whose loops fit it (same row domain: softmax's max, sum and
normalize run as three stages over one row; a row statistic shaped (rows, 1) fits the rows' loops),
provided everything it reads is ready there; else it starts a new kernel. Stores nobody outside the
kernel reads are dropped at the end.

With symbolic sizes (ir/sizes.py), shapes fit a kernel only where they are equal for every value
of the symbols, and views of a symbolic buffer are materialized rather than passed as PyTorch
views (whether PyTorch can view without a copy is checked on concrete shapes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from ..codegen.exprs import REDUCTIONS, VIEWS, CannotFuse, ExprBuilder, is_empty, kernelizable
from ..codegen.index import Affine, Var, linearize
from ..codegen.kernel import Kernel, Local, Reduce, Store
from ..codegen.schedule import KernelStep, LibraryStep, Schedule, reads
from ..ir.attrs import format_value
from ..ir.graph import Graph, Node
from ..ir.interpret import Interpreter
from ..ir.sizes import is_symbolic, provably

_FREE = VIEWS | {"convert", "constant"}  # recomputing these costs (almost) nothing


@dataclass
class _OpenKernel:
    """A kernel being filled: its loops and the full-domain index its Store stages use."""
    step: int
    kernel: Kernel
    domain_shape: tuple[int, ...]
    domain: list[Affine]  # index of the full domain in terms of outer and inner vars
    reduced: tuple[int, ...]  # which domain dims the inner loops cover
    inner: list[Var] = field(default_factory=list)  # the inner loops of the full domain
    nodes: set = field(default_factory=set)
    locals: dict = field(default_factory=dict)

    @property
    def outer_shape(self) -> tuple[int, ...]:
        return tuple(v.extent for v in self.kernel.outer)

    @property
    def outer_index(self) -> list[Affine]:
        return [Affine.of(v) for v in self.kernel.outer]


# Views applied to a buffer as PyTorch views instead of copied: a library call's inputs (a matmul
# of a transposed weight passes the transpose to BLAS) and returned outputs (saved activations for
# the backward are often transposes or reshapes: a copy would only be undone there).
_STRIDED_VIEWS = {"transpose", "reshape", "broadcast_in_dim", "slice"}


def view_chain(node: Node, outputs: set) -> tuple[Node, list[Node]]:
    """The buffer a library input is a view of, and the view nodes from it to the input (which
    PyTorch applies without copying)."""
    chain = []
    while node.op in _STRIDED_VIEWS and node not in outputs and kernelizable(node):
        chain.append(node)
        node = node.inputs[0]
    return _view_suffix(node, chain[::-1])


def _view_suffix(base: Node, chain: list[Node]) -> tuple[Node, list[Node]]:
    """Split `chain` (views from `base`) where PyTorch would have to copy: the node to materialize
    row-major and the views (no copy) from it. A reshape of a transpose is computed by a kernel
    writing the reshaped value; a transpose after it stays a view (as eager's layout is)."""
    for j in range(len(chain)):
        start = chain[j - 1] if j else base
        if _is_strided_view(start, chain[j:]):
            return start, chain[j:]
    return (chain[-1] if chain else base), []


# Answers of _is_strided_view by the shapes and attributes they depend on: a model's layers repeat
# the same view chains, and each check goes through PyTorch's dispatch for every view op.
_STRIDED_VIEW_ANSWERS: dict[tuple, bool] = {}
_STRIDED_VIEW_ANSWERS_MAX = 4096


def _view_signature(base: Node, chain: list[Node]) -> tuple:
    """Everything _check_strided_view's answer depends on, hashable."""
    return (base.type.shape, base.type.dtype,
            tuple((v.op, format_value(v.attrs), v.type.shape) for v in chain))


def _is_strided_view(base: Node, chain: list[Node]) -> bool:
    """Whether the view nodes `chain` over a row-major buffer of `base` are a PyTorch view of it."""
    if is_symbolic([base.type.shape] + [v.type.shape for v in chain]):
        return False
    key = _view_signature(base, chain)
    answer = _STRIDED_VIEW_ANSWERS.get(key)
    if answer is None:
        if len(_STRIDED_VIEW_ANSWERS) >= _STRIDED_VIEW_ANSWERS_MAX:
            _STRIDED_VIEW_ANSWERS.clear()
        answer = _STRIDED_VIEW_ANSWERS[key] = _check_strided_view(base, chain)
    return answer


def _check_strided_view(base: Node, chain: list[Node]) -> bool:
    """_is_strided_view, checked on a meta tensor: no memory, no compute. (A plain one: under the
    fake mode AOTAutograd compiles in, each view op would go through the slower fake dispatch.)"""
    with unset_fake_temporarily():
        tensor = torch.empty(base.type.shape, dtype=base.type.dtype.torch_dtype, device="meta")
        viewed = Interpreter().apply_views(tensor, chain)
        return viewed._base is tensor


def output_view(node: Node) -> tuple[Node, list[Node]]:
    """The computed buffer an output is a view of (itself if none) and the view nodes on it."""
    chain = []
    while node.op in _STRIDED_VIEWS and kernelizable(node):
        chain.append(node)
        node = node.inputs[0]
    if node.op == "param" or not chain:  # a view of an input is a copy unless eager aliased it
        return (chain[0] if chain else node), []
    return _view_suffix(node, chain[::-1])


# Arithmetic cheap enough to redo in each consumer rather than store and reload, and exact, so a
# recomputed value is the very value a stored one would be (no transcendental: vector and scalar
# code of one emitter may evaluate those differently).
_RECOMPUTABLE = {"add", "sub", "mul", "neg", "abs", "max", "min", "select", "compare", "convert",
                 "and", "or", "not", "scatter"}
_RECOMPUTE_MAX_OPS = 4


def _cheap_to_recompute(node: Node, materialized: set[Node]) -> bool:
    """Whether each consumer of `node` may compute it again: a few exact ops over at most one
    buffer as large as it (the others broadcast smaller ones: row maxima, scalars). Redoing it
    then reads what storing it would have read, and saves its write and every reload — e.g. the
    logits minus their row maximum that log-softmax and the target gather of cross-entropy share
    would otherwise be a 1.6 GB buffer for GPT-2's vocabulary."""
    ops, large, stack, seen = 0, set(), [node], set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n is not node and (n in materialized or n.op == "param"):
            if not provably(lambda: n.type.numel * 4 < node.type.numel):
                large.add(n)
            continue
        if n.op not in _FREE:
            if n.op not in _RECOMPUTABLE:
                return False
            ops += 1
        stack.extend(n.inputs)
    return ops <= _RECOMPUTE_MAX_OPS and len(large) <= 1


def _materialized(graph: Graph, outputs: set[Node], chain_of) -> set[Node]:
    """The nodes that get a buffer; `outputs` the buffers outputs view, `chain_of(input)` a
    library input's (base, views)."""
    users = graph.users()
    result = set(graph.params) | outputs
    for node in graph.nodes:
        if not kernelizable(node):
            result.add(node)
            result.update(chain_of(i)[0] for i in node.inputs)
        elif node.op in REDUCTIONS:
            result.add(node)
        elif node.op not in _FREE and len(users[node]) > 1 and not _cheap_to_recompute(node, result):
            result.add(node)
    return result


def _index_with_unit_dims(shape, outer: list[Var]) -> list[Affine] | None:
    """The index of a value over a kernel's outer loops where its shape is theirs with dims of size 1
    added (a row statistic kept as (rows, 1): layer norm's reciprocal deviation); None otherwise."""
    index, loops = [], iter(outer)
    for size in shape:
        if isinstance(size, int) and size == 1:
            index.append(Affine())
            continue
        loop = next(loops, None)
        if loop is None or not same_shape((size,), (loop.extent,)):
            return None
        index.append(Affine.of(loop))
    return index if next(loops, None) is None else None


def same_shape(a, b) -> bool:
    """Whether two shapes are equal for every value of their symbols."""
    return provably(lambda: tuple(a) == tuple(b))


class _Scheduler:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.schedule = Schedule(graph)
        # View chains are worked out once per node (each is checked on meta tensors).
        self.output_views = [output_view(o) for o in graph.outputs]
        self.output_bases = {base for base, _ in self.output_views}
        self.chains: dict[Node, tuple[Node, list[Node]]] = {}
        self.materialized = _materialized(graph, self.output_bases, self._chain)
        self.producer: dict[str, int] = {}  # buffer -> step that writes it (-1: before the first)
        self.open: list[_OpenKernel] = []
        self.kernel_of: dict[Node, _OpenKernel] = {}
        self.inline_reads: dict[Node, int] = {}  # memo of _latest_read for inlined nodes
        self.kernels_opened = 0  # numbers the kernels (steps also hold library calls)

    def run(self) -> Schedule:
        s = self.schedule
        for p in self.graph.params:
            s.params.append(s.buffer_of(p))
            self.producer[s.buffer_of(p)] = -1
        for node in self.graph.nodes:
            if node not in self.materialized:
                continue
            if node.op == "constant" and isinstance(node.attrs["value"], list):
                s.constants[s.buffer_of(node)] = node
                self.producer[s.buffer_of(node)] = -1
            elif not kernelizable(node):
                self._library(node)
            else:
                self._place(node)
        for i, (base, chain) in enumerate(self.output_views):
            s.outputs.append(s.buffer_of(base))
            if chain:
                s.output_views[i] = chain
        self._finish()
        return s

    def _chain(self, node: Node) -> tuple[Node, list[Node]]:
        if node not in self.chains:
            self.chains[node] = view_chain(node, self.output_bases)
        return self.chains[node]

    def _library(self, node: Node):
        s = self.schedule
        chains = [self._chain(i) for i in node.inputs]
        step = LibraryStep(node, [s.buffer_of(base) for base, _ in chains], s.buffer_of(node),
                           [chain for _, chain in chains])
        self.producer[step.output] = len(s.steps)
        s.steps.append(step)

    # -- kernels ---------------------------------------------------------------------------------
    def _loader(self, open_kernel: _OpenKernel):
        def load(node: Node):
            if node in open_kernel.nodes or node not in self.materialized:
                return None  # computed inline in this kernel
            buffer = self.schedule.buffer_of(node)
            if self.producer.get(buffer, len(self.schedule.steps)) >= open_kernel.step:
                raise CannotFuse(f"{buffer} is not ready before this kernel")
            return buffer
        return load

    def _try(self, k: _OpenKernel, node: Node) -> bool:
        builder = ExprBuilder(self._loader(k), k.locals)
        kernel = k.kernel
        k.nodes.add(node)  # the node itself is computed here, not loaded
        try:
            if node.op in REDUCTIONS:
                x = node.inputs[0]
                dims = tuple(node.attrs["dims"]) if node.op == "reduce" else (node.attrs["dim"],)
                if not same_shape(x.type.shape, k.domain_shape) or tuple(sorted(dims)) != k.reduced:
                    k.nodes.discard(node)  # else this kernel would take it for computed here
                    return False
                name = f"r{len(k.locals)}"
                kind = node.attrs["kind"] if node.op == "reduce" else node.op
                value = builder.value(x, k.domain)
                stage = Reduce(name, kind, list(k.inner), value, node.type.dtype)
                k.locals[node] = (Local(name, node.type.dtype), k.outer_index)
            elif same_shape(node.type.shape, k.outer_shape):
                index = k.outer_index
                stage = Store(self.schedule.buffer_of(node), [],
                              linearize(index, node.type.shape), builder.value(node, index))
            elif same_shape(node.type.shape, k.domain_shape):
                stage = Store(self.schedule.buffer_of(node), list(k.inner),
                              linearize(k.domain, node.type.shape), builder.value(node, k.domain))
            elif (index := _index_with_unit_dims(node.type.shape, k.kernel.outer)) is not None:
                stage = Store(self.schedule.buffer_of(node), [],
                              linearize(index, node.type.shape), builder.value(node, index))
            else:
                k.nodes.discard(node)
                return False
        except CannotFuse:
            k.nodes.discard(node)
            return False
        kernel.stages.append(stage)
        if node.source and node.source not in kernel.sources:
            kernel.sources.append(node.source)
        kernel.inputs = sorted(set(kernel.inputs) | builder.buffers_read)
        self.kernel_of[node] = k
        self.producer[self.schedule.buffer_of(node)] = k.step
        return True

    def _latest_read(self, node: Node) -> int:
        """The last step writing a buffer that computing `node` in a kernel reads (-1: none). A
        kernel at an earlier step cannot take the node: that buffer is not ready there (the same
        buffer written at the kernel's own step is computed inline instead)."""
        if is_empty(node):  # a constant: reads nothing
            return -1
        return max((self._read_step(i) for i in node.inputs), default=-1)

    def _read_step(self, node: Node) -> int:
        """_latest_read of an operand: its buffer's step if it has one, else what it is computed from."""
        if is_empty(node):
            return -1
        if node in self.materialized:
            return self.producer.get(self.schedule.node_buffer.get(node), len(self.schedule.steps))
        step = self.inline_reads.get(node)
        if step is None:
            step = self.inline_reads[node] = self._latest_read(node)
        return step

    def _place(self, node: Node):
        ready_from = self._latest_read(node)
        for k in reversed(self.open):
            if k.step < ready_from:
                break  # so are all older kernels
            if self._try(k, node):
                return
        k = self._new_kernel(node)
        assert self._try(k, node), f"a new kernel must accept its first node {node}"

    def _new_kernel(self, node: Node) -> _OpenKernel:
        s = self.schedule
        if node.op in REDUCTIONS:
            shape = node.inputs[0].type.shape
            reduced = tuple(sorted(node.attrs["dims"])) if node.op == "reduce" else (node.attrs["dim"],)
        else:
            shape = node.type.shape
            reduced = (len(shape) - 1,) if shape else ()
        outer = [Var(f"o{i}", shape[d]) for i, d in enumerate(d for d in range(len(shape)) if d not in reduced)]
        inner = [Var(f"i{i}", shape[d]) for i, d in enumerate(reduced)]
        domain, o, i = [], iter(outer), iter(inner)
        for d in range(len(shape)):
            domain.append(Affine.of(next(i) if d in reduced else next(o)))
        kernel = Kernel(f"kernel{self.kernels_opened}", outer)
        self.kernels_opened += 1
        # Reducing leading dims while the contiguous last dim is kept: vectorize across it.
        kernel.lanes = bool(reduced) and bool(shape) and (len(shape) - 1) not in reduced
        k = _OpenKernel(len(s.steps), kernel, tuple(shape), domain, reduced, inner)
        s.steps.append(KernelStep(kernel))
        self.open.append(k)
        return k

    def _finish(self):
        """Drop stores nobody reads outside their kernel; store reductions that others read."""
        s = self.schedule
        needed = set(s.outputs)
        for step in s.steps:
            needed.update(reads(step))
        for k in self.open:
            stages = []
            for stage in k.kernel.stages:
                if isinstance(stage, Store) and stage.buffer not in needed:
                    continue
                stages.append(stage)
                if isinstance(stage, Reduce):
                    node = next(n for n, (local, _) in k.locals.items() if local.name == stage.name)
                    buffer = s.buffer_of(node)
                    if buffer in needed:
                        stages.append(Store(buffer, [], linearize(k.outer_index, node.type.shape),
                                            Local(stage.name, stage.dtype)))
            k.kernel.stages = stages
            k.kernel.outputs = [st.buffer for st in stages if isinstance(st, Store)]
        s.steps = [st for st in s.steps if not isinstance(st, KernelStep) or st.kernel.outputs]


def schedule(graph: Graph) -> Schedule:
    """The kernels and library calls that compute `graph`, in an order that respects dependencies."""
    return _Scheduler(graph).run()

