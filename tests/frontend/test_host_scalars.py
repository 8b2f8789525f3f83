"""0-d CPU inputs that a graph on one accelerator only copies there (Hugging Face's static-cache
position counter) are imported on that device, so that the graph is on one device and compiles
instead of running through the interpreter. The "meta" device stands in for a GPU here."""
from __future__ import annotations

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from tensorsmith.frontend.importer import Importer
from tensorsmith.ir.graph import graph_device


def _import(f, *inputs):
    gm = make_fx(f)(*inputs)
    return Importer(gm, "g").run(list(inputs)).graph


def test_a_cpu_scalar_only_copied_to_the_device_is_imported_there():
    graph = _import(lambda x, n: x * 2 + n.to(x.device), torch.randn(3, device="meta"), torch.tensor(2))
    assert [p.type.device for p in graph.params] == ["meta", "meta"]
    assert graph_device(graph) == "meta"


def test_a_cpu_scalar_read_as_itself_stays_on_the_cpu():
    graph = _import(lambda x, n: (x + n, n.to(x.device) * 3), torch.randn(3, device="meta"), torch.tensor(2.0))
    assert [p.type.device for p in graph.params] == ["meta", "cpu"]
    assert graph_device(graph) is None


def test_a_graph_on_the_cpu_keeps_its_scalars_there():
    graph = _import(lambda x, n: x * n, torch.randn(3), torch.tensor(2.0))
    assert [p.type.device for p in graph.params] == ["cpu", "cpu"]
