"""Inputs an inference graph mutates (a static KV cache's `index_copy_`) written in place
(runtime/in_place.py): the results and the mutated input equal eager's over several steps, through
C++, interpreted Triton and the interpreter; the write is one `index_put_` on the caller's tensor,
with no copy of it. Where the graph also reads the old value, or the input is not mutated, nothing
is written in place."""
from __future__ import annotations

import torch

from tensorsmith.runtime import in_place


class StaticCache(torch.nn.Module):
    """One attention layer's key cache, written at `position` as Hugging Face's StaticCache does."""

    def __init__(self, read_old: bool = False):
        super().__init__()
        self.register_buffer("keys", torch.randn(2, 3, 16, 4))
        self.proj = torch.nn.Linear(4, 4)
        self.read_old = read_old

    def forward(self, x, position):
        old = self.keys.sum() if self.read_old else 0.0
        self.keys.index_copy_(2, position, self.proj(x))
        return torch.softmax(self.keys @ x.transpose(-1, -2), dim=2).sum(-1) + old


def _recorded(monkeypatch):
    """Records the storage each in-place write of the compiled graphs writes, and each copy into a
    tensor (AOTAutograd's copy back) as (destination, source)."""
    writes, copies = [], []
    write = in_place.IN_PLACE["aten.index_put.default"]

    def recording_write(target, *args, **kwargs):
        writes.append(target.untyped_storage().data_ptr())
        return write(target, *args, **kwargs)

    copy = torch.Tensor.copy_

    def recording_copy(self, source, *args, **kwargs):
        copies.append((self, source))
        return copy(self, source, *args, **kwargs)

    monkeypatch.setitem(in_place.IN_PLACE, "aten.index_put.default", recording_write)
    monkeypatch.setattr(torch.Tensor, "copy_", recording_copy)
    return writes, copies


def _steps(model, compiled, steps: int):
    torch.manual_seed(1)
    inputs = [(torch.randn(2, 3, 1, 4), torch.tensor([t * 3 % 16])) for t in range(steps)]
    with torch.no_grad():
        return [(compiled(x, p), model.keys.clone()) for x, p in inputs]


def test_a_static_cache_is_written_in_place_with_eager_results(executor, monkeypatch):
    eager, model = StaticCache(), StaticCache()
    model.load_state_dict(eager.state_dict())
    writes, copies = _recorded(monkeypatch)
    compiled = torch.compile(model, backend="tensorsmith")
    address = model.keys.data_ptr()
    expected = _steps(eager, eager, 5)
    copies.clear()
    for (out, cache), (want, want_cache) in zip(_steps(model, compiled, 5), expected):
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(cache, want_cache)
    assert model.keys.data_ptr() == address
    storage = model.keys.untyped_storage().data_ptr()
    into_cache = [(d, s) for d, s in copies if d.untyped_storage().data_ptr() == storage]
    if executor == "interpreter":  # it computes the graph functionally; the caller copies back
        assert writes == [] and len(into_cache) == 5
        return
    assert writes == [storage] * 5
    assert len(into_cache) == 5 and all(d is s for d, s in into_cache), "the cache was copied"


def test_a_graph_reading_the_old_value_writes_a_copy(executor, monkeypatch):
    eager, model = StaticCache(read_old=True), StaticCache(read_old=True)
    model.load_state_dict(eager.state_dict())
    writes, _ = _recorded(monkeypatch)
    compiled = torch.compile(model, backend="tensorsmith")
    for (out, cache), (want, want_cache) in zip(_steps(model, compiled, 4), _steps(eager, eager, 4)):
        torch.testing.assert_close(out, want)
        torch.testing.assert_close(cache, want_cache)
    assert writes == []


def test_an_input_that_is_not_mutated_is_not_written(executor):
    def update(cache, values, position):
        return cache.index_put((position,), values) * 2

    cache, values, position = torch.randn(6, 5), torch.randn(2, 5), torch.tensor([4, 1])
    before = cache.clone()
    compiled = torch.compile(update, backend="tensorsmith")
    torch.testing.assert_close(compiled(cache, values, position), update(before, values, position))
    assert torch.equal(cache, before)
