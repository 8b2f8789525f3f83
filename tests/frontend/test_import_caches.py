"""The importer's memos (fallback result types, type promotion) give what asking PyTorch each time
gives: a model's layers repeat the same calls, so they are answered once."""
from __future__ import annotations

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from tensorsmith.frontend import importer
from tensorsmith.frontend.importer import import_graph
from tensorsmith.frontend.lowering import registry
from tensorsmith.ir import print_graph
from tensorsmith.ir.types import F32, F64

aten = torch.ops.aten


def _layers(x, y):
    """Fallbacks (cumsum: one tensor result; sort: a tuple) repeated on one signature, and once on
    another, and elementwise ops promoting int and float operands."""
    a = aten.cumsum.default(x, 0)
    b = aten.cumsum.default(a, 0)
    c = aten.cumsum.default(y, 1)
    values, indices = aten.sort.default(b, 1)
    values2, _ = aten.sort.default(values, 1)
    return aten.add.Tensor(values2, indices), aten.mul.Tensor(c, 2), aten.add.Tensor(indices, 1.5)


def _imported_text(monkeypatch, cached: bool) -> str:
    if not cached:
        monkeypatch.setattr(importer, "_call_signature", lambda *args: object())  # never a hit
        monkeypatch.setattr(registry, "_promotion_key", lambda values: None)
    inputs = [torch.randn(3, 4), torch.randn(4, 3, dtype=torch.float64)]
    return print_graph(import_graph(make_fx(_layers)(*inputs), inputs).graph)


def test_memos_give_the_graph_asking_each_time_gives(monkeypatch):
    monkeypatch.setattr(importer, "_FALLBACK_TYPES", {})
    monkeypatch.setattr(registry, "_PROMOTIONS", {})
    runs = []
    fake_call = importer.Importer._fake_call
    monkeypatch.setattr(importer.Importer, "_fake_call",
                        lambda self, target, *a: runs.append(target) or fake_call(self, target, *a))
    cached = _imported_text(monkeypatch, cached=True)
    assert runs == [aten.cumsum.default, aten.cumsum.default, aten.sort.default]
    runs.clear()
    assert _imported_text(monkeypatch, cached=False) == cached
    assert len(runs) == 5


def _int_plus_float():
    ints = [torch.arange(4)]
    return import_graph(make_fx(lambda i: aten.add.Tensor(i, 1.5))(*ints), ints)


def test_promotion_depends_on_the_default_dtype(monkeypatch):
    monkeypatch.setattr(registry, "_PROMOTIONS", {})
    imported = _int_plus_float()
    assert "= add(" in print_graph(imported.graph) and imported.graph.outputs[0].type.dtype == F32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:  # a remembered f32 would disagree with PyTorch's result: the importer would fall back
        imported = _int_plus_float()
        assert not imported.report.fallbacks and imported.graph.outputs[0].type.dtype == F64
    finally:
        torch.set_default_dtype(previous)
