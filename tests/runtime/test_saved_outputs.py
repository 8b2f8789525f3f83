"""A training forward's saved activations may share memory with one another (no copies), while any
output the caller sees still gets memory of its own, laid out as eager's."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.fx.experimental.proxy_tensor import make_fx

from tensorsmith.frontend.importer import import_graph
from tensorsmith.runtime import executor as executor_module
from tensorsmith.runtime.executor import GraphExecutor, _copy_with_strides, _dense


def _split_projection(x, w):
    """(sum, q, k): q and k are views of one product, as attention's q, k, v are."""
    qkv = torch.ops.aten.mm.default(x, w)
    q = torch.ops.aten.slice.Tensor(qkv, 1, 0, 3)
    k = torch.ops.aten.slice.Tensor(qkv, 1, 3, 6)
    return torch.ops.aten.sum.default(qkv), q, k


def _storage(t):
    return t.untyped_storage().data_ptr()


def test_saved_outputs_share_memory_and_visible_ones_do_not():
    x, w = torch.randn(4, 5), torch.randn(5, 6)
    imported = import_graph(make_fx(_split_projection)(x, w), [x, w])
    want = _split_projection(x.double(), w.double())

    total, q, k = GraphExecutor(imported, [0, 1], saved_from=1)(x, w)  # q and k only for a backward
    assert _storage(q) == _storage(k)
    for got, ref in zip((total, q, k), want):
        torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)

    total, q, k = GraphExecutor(imported, [0, 1])(x, w)  # all three visible to the caller
    assert _storage(q) != _storage(k)
    assert q.stride() == want[1].stride() and k.is_contiguous()  # k's eager layout has gaps
    for got, ref in zip((total, q, k), want):
        torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)


def test_copy_keeps_eager_layout_where_dense():
    t = torch.randn(3, 4, 5).transpose(0, 2)  # dense, not contiguous
    strides = t.stride()
    copy = _copy_with_strides(t.clone(memory_format=torch.contiguous_format), strides)
    assert copy.stride() == strides and torch.equal(copy, t)
    gappy = torch.randn(4, 12)[:, :6]  # a slice: its layout has gaps, so the copy is contiguous
    assert not _dense(gappy.shape, gappy.stride()) and _dense((4, 6), (1, 4))
    copy = _copy_with_strides(gappy, gappy.stride())
    assert copy.is_contiguous() and torch.equal(copy, gappy)


class _Attention(torch.nn.Module):
    def __init__(self, width=32, heads=2):
        super().__init__()
        self.qkv, self.heads = torch.nn.Linear(width, 3 * width), heads

    def forward(self, x):
        B, L, C = x.shape
        q, k, v = (t.view(B, L, self.heads, C // self.heads).transpose(1, 2)
                   for t in self.qkv(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return y.transpose(1, 2).reshape(B, L, C).square().mean()


def test_training_forward_saves_q_k_v_without_copies(monkeypatch):
    handed = []
    assemble = executor_module.GraphExecutor._assemble

    def spy(self, results, inputs, args):
        outputs = assemble(self, results, inputs, args)
        handed.append((self, outputs))
        return outputs

    monkeypatch.setattr(executor_module.GraphExecutor, "_assemble", spy)
    torch.manual_seed(0)
    model = _Attention()
    x = torch.randn(2, 16, 32)
    loss = torch.compile(model, backend="tensorsmith")(x)
    loss.backward()
    got = [p.grad.clone() for p in model.parameters()]

    reference = _Attention().double()
    reference.load_state_dict(model.state_dict())
    reference(x.double()).backward()
    for g, p in zip(got, reference.parameters()):
        torch.testing.assert_close(g.double(), p.grad, rtol=1e-4, atol=1e-5)

    forward, outputs = handed[0]
    assert forward.saved_from == 1  # the loss is the one output the caller sees
    saved = [t for t in outputs[1:] if isinstance(t, torch.Tensor) and t.dim() == 4]
    storages = {_storage(t) for t in saved}
    assert len(saved) >= 3 and len(storages) < len(saved), [t.stride() for t in saved]


def _graph_with_shared_and_fresh_outputs():
    """A graph returning its parameter, an element of split's tuple (a view of its input), a buffer
    twice, a product, and an element of topk's tuple (new tensors, as its schema says)."""
    from tensorsmith.ir.attrs import Operand
    from tensorsmith.ir.graph import Graph
    from tensorsmith.ir.types import F32, I64, TensorType, TupleType

    t = TensorType((4, 6), F32, "cpu")
    g = Graph("shared")
    x, w = g.add_param("x", t), g.add_param("w", TensorType((6, 6), F32, "cpu"))
    halves = g.add("fallback", [x], {"target": "aten.split.Tensor", "args": [Operand(0), 3, 1],
                                     "kwargs": {}},
                   type=TupleType((TensorType((4, 3), F32, "cpu"), TensorType((4, 3), F32, "cpu"))))
    first = g.add("get", [halves], {"index": 0})
    doubled = g.add("mul", [x, x])
    product = g.add("dot", [x, w])
    top = g.add("fallback", [doubled], {"target": "aten.topk.default", "args": [Operand(0), 2],
                                        "kwargs": {}},
                type=TupleType((TensorType((4, 2), F32, "cpu"), TensorType((4, 2), I64, "cpu"))))
    largest = g.add("get", [top], {"index": 0})
    g.outputs = [x, first, doubled, doubled, product, largest]
    return g


def test_the_schedule_names_the_outputs_that_may_share_memory():
    """Only these are checked for memory shared with an input or another output: a parameter
    returned, a buffer returned twice, and an element of a fallback's tuple where the op's schema
    lets it be a view of an input; a kernel's or a product's result, and a tuple element of an op
    returning new tensors, are memory of their own."""
    from tensorsmith.passes.fuse import schedule

    g = _graph_with_shared_and_fresh_outputs()
    assert schedule(g).shared_outputs() == {0, 1, 2, 3}
    executor = GraphExecutor(_Imported(g), [0, 1], _compiled(g))
    assert executor.shared_outputs == {0, 1, 2, 3}
    a, b = torch.randn(4, 6), torch.randn(6, 6)
    out = executor(a, b)
    assert _storage(out[0]) != _storage(a) and _storage(out[1]) != _storage(a)
    assert _storage(out[2]) != _storage(out[3])
    for got, want in zip(out, [a, a[:, :3], a * a, a * a, a @ b, torch.topk(a * a, 2).values]):
        torch.testing.assert_close(got, want)


def test_a_buffer_an_aliasing_op_reads_is_shared_with_its_results():
    """split's element is a view of the product it splits: both are returned, so both are checked,
    and the caller gets two tensors of their own."""
    from tensorsmith.ir.attrs import Operand
    from tensorsmith.passes.fuse import schedule

    g = _graph_with_shared_and_fresh_outputs()
    x, w = g.params
    product = g.add("dot", [x, w])
    halves = g.add("fallback", [product], {"target": "aten.split.Tensor", "args": [Operand(0), 3, 1],
                                           "kwargs": {}}, type=g.outputs[1].inputs[0].type)
    g.outputs = [g.add("get", [halves], {"index": 1}), product]
    assert schedule(g).shared_outputs() == {0, 1}
    a, b = torch.randn(4, 6), torch.randn(6, 6)
    half, whole = GraphExecutor(_Imported(g), [0, 1], _compiled(g))(a, b)
    assert _storage(half) != _storage(whole)
    torch.testing.assert_close(whole, a @ b)
    torch.testing.assert_close(half, (a @ b)[:, 3:])


def test_outputs_of_their_own_are_handed_out_unchecked():
    """Where no output may share memory, the executor does not look, and each output is still
    distinct memory from the inputs and from every other output, with eager's values."""
    g = _graph_with_shared_and_fresh_outputs()
    g.outputs = g.outputs[2:3] + g.outputs[4:]  # doubled, the product, topk's values
    executor = GraphExecutor(_Imported(g), [0, 1], _compiled(g))
    assert executor.shared_outputs == set()
    for _ in range(2):  # the second call reuses the arena of the first
        a, b = torch.randn(4, 6), torch.randn(6, 6)
        out = executor(a, b)
        pointers = {_storage(t) for t in out} | {_storage(a), _storage(b)}
        assert len(pointers) == len(out) + 2
        for got, want in zip(out, [a * a, a @ b, torch.topk(a * a, 2).values]):
            torch.testing.assert_close(got.double(), want.double(), rtol=1e-6, atol=1e-6)


class _Imported:
    """What the executor reads of an import, for a graph built by hand: every output a tensor."""

    def __init__(self, graph):
        self.graph = graph
        self.outputs = [("tensor", i) for i in range(len(graph.outputs))]
        self.output_strides = [torch.empty(o.type.shape).stride() for o in graph.outputs]


def _compiled(graph):
    from tensorsmith.compile.codegen import generate_code
    return generate_code(graph)
