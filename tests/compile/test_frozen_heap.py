"""While a graph compiles, the objects made before it are out of the collector's walks
(compile/frozen_heap.py), and afterwards everything is as it was, a process's own freeze included."""
from __future__ import annotations

import gc

import pytest
import torch

from tensorsmith.compile import backend
from tensorsmith.compile.frozen_heap import old_objects_set_aside


@pytest.fixture
def frozen_during_compile(monkeypatch):
    """The freeze counts seen inside each compile of the backend."""
    seen = []
    original = backend._compile

    def compile_and_look(*args, **kwargs):
        seen.append(gc.get_freeze_count())
        return original(*args, **kwargs)

    monkeypatch.setattr(backend, "_compile", compile_and_look)
    torch._dynamo.reset()
    yield seen
    torch._dynamo.reset()


def _compiled_matches_eager():
    g = torch.Generator().manual_seed(torch.seed() % (1 << 31))
    x, w = torch.randn(6, 5, generator=g), torch.randn(5, 3, generator=g)

    def f(x, w):
        return torch.tanh(x @ w) * 2.0

    torch.testing.assert_close(torch.compile(f, backend="tensorsmith")(x, w), f(x, w))


def test_objects_made_before_a_compile_are_set_aside_during_it(frozen_during_compile):
    assert gc.get_freeze_count() == 0
    _compiled_matches_eager()
    assert frozen_during_compile and all(n > 0 for n in frozen_during_compile)
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_its_objects_keeps_them_frozen(frozen_during_compile):
    gc.freeze()
    try:
        theirs = gc.get_freeze_count()  # frozen objects: a count that only falls as some are freed
        _compiled_matches_eager()
        assert frozen_during_compile and all(0 < n <= theirs for n in frozen_during_compile)
        assert 0 < gc.get_freeze_count() <= theirs
    finally:
        gc.unfreeze()


def test_nested_compiles_unfreeze_when_the_outer_one_ends():
    assert gc.get_freeze_count() == 0
    with old_objects_set_aside():
        outer = gc.get_freeze_count()
        with old_objects_set_aside():
            assert gc.get_freeze_count() == outer > 0
        assert gc.get_freeze_count() == outer
    assert gc.get_freeze_count() == 0
