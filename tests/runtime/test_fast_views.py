"""runtime/fast_views.py: a static chain of views bound as one reinterpretation of a contiguous
input gives the tensor the interpreter's chain gives (values, shape, strides, and memory shared
with the input), and any other input goes through the chain itself."""
from __future__ import annotations

import pytest
import torch

from tensorsmith.ir.graph import Graph
from tensorsmith.ir.interpret import Interpreter
from tensorsmith.ir.types import F32, TensorType
from tensorsmith.runtime import fast_views

CHAINS = {
    "reshape, transpose": (
        (2, 6, 4), [("reshape", {"shape": [12, 4]}), ("transpose", {"perm": [1, 0]})]),
    "transpose, slice": (
        (5, 3, 4), [("transpose", {"perm": [2, 0, 1]}),
                    ("slice", {"starts": [1, 1, 0], "limits": [4, 5, 3], "strides": [2, 3, 1]})]),
    "slice, reshape of a row block": (
        (8, 6), [("slice", {"starts": [2, 0], "limits": [6, 6], "strides": [1, 1]}),
                 ("reshape", {"shape": [2, 2, 6]})]),
}


def _chain(shape, views):
    graph = Graph()
    node = graph.add_param("x", TensorType(shape, F32, "cpu"))
    chain = []
    for op, attrs in views:
        node = graph.add(op, [node], attrs)
        chain.append(node)
    return chain


@pytest.mark.parametrize("reinterpret", ["torch's", "as_strided"])
@pytest.mark.parametrize("name", sorted(CHAINS))
def test_a_contiguous_input_is_reinterpreted_as_the_chain_views_it(name, reinterpret, monkeypatch):
    if reinterpret == "as_strided":  # a torch without _reinterpret_tensor
        monkeypatch.setattr(fast_views, "_REINTERPRET", fast_views.as_strided_from)
    shape, views = CHAINS[name]
    chain = _chain(shape, views)
    fast, slow = fast_views.bind(chain, Interpreter()), Interpreter().bind_views(chain)
    storage = torch.randn(100)
    x = storage[7:7 + torch.Size(shape).numel()].view(shape)  # contiguous, at an offset in its storage
    got, want = fast(x), slow(x)
    assert torch.equal(got, want)
    assert got.shape == want.shape and got.stride() == want.stride()
    assert got.data_ptr() == want.data_ptr()
    x.add_(1)  # shares the input's memory, as a view
    assert torch.equal(got, slow(x))


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_a_strided_input_goes_through_the_chain(name):
    shape, views = CHAINS[name]
    chain = _chain(shape, views)
    fast = fast_views.bind(chain, Interpreter())
    x = torch.randn(*reversed(shape)).permute(*reversed(range(len(shape))))  # same shape, not contiguous
    assert not x.is_contiguous()
    assert torch.equal(fast(x), Interpreter().apply_views(x.contiguous(), chain))
