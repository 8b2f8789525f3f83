"""codegen/triton/launch.py's choice between the direct launcher and Triton's JIT, with stand-ins
for the compiled kernel (the direct path itself runs only on a GPU: bench/gpu.py's parity checks)."""
import random

import pytest
import torch

from tensorsmith.codegen.triton import launch as triton_launch
from tensorsmith.codegen.triton.launch import KernelLaunch


class _Jit:
    """Records JIT launches: jit[grid](*args, num_warps=...)."""

    def __init__(self):
        self.launches = []
        self.arg_names = ["a", "b", "flag"]

    def __getitem__(self, grid):
        return lambda *args, **options: self.launches.append((grid, args, options))


@pytest.fixture
def direct(monkeypatch):
    """A stand-in stream per device index, and no launch hook."""
    monkeypatch.setattr(triton_launch, "_current_stream", lambda index: 1000 + index)
    monkeypatch.setattr(triton_launch, "_launch_hooks_set", lambda: False)


def _tensors(offset_elements=0):
    n = random.randint(8, 64)
    a = torch.randn(n + offset_elements)[offset_elements:]
    return a, torch.randn(n), torch.zeros(1, dtype=torch.int32)


def test_unbound_launches_go_through_the_jit_with_the_grid_and_warps(direct):
    jit = _Jit()
    launch = KernelLaunch(jit, (7,), num_warps=4)
    args = _tensors()
    launch(*args)
    assert jit.launches == [((7, 1, 1), args, {"num_warps": 4})]


def test_bound_aligned_launch_calls_the_compiled_launcher_on_the_current_stream(direct):
    jit, seen = _Jit(), []
    launch = KernelLaunch(jit, (5, 3), num_warps=8)
    launch.direct = (lambda *a: seen.append(a), "function", "metadata")
    launch.device_index = 1
    args = _tensors()
    launch(*args)
    assert not jit.launches
    assert seen == [(5, 3, 1, 1001, "function", "metadata", None, None, None, *args)]


def test_a_misaligned_argument_goes_through_the_jit(direct):
    jit, seen = _Jit(), []
    launch = KernelLaunch(jit, (2,), num_warps=4)
    launch.direct = (lambda *a: seen.append(a), "function", "metadata")
    args = _tensors(offset_elements=1)  # 4 bytes past an aligned allocation
    assert args[0].data_ptr() % 16
    launch(*args)
    assert not seen and len(jit.launches) == 1


def test_a_launch_hook_sends_every_launch_through_the_jit(direct, monkeypatch):
    monkeypatch.setattr(triton_launch, "_launch_hooks_set", lambda: True)
    jit, seen = _Jit(), []
    launch = KernelLaunch(jit, (2,), num_warps=4)
    launch.direct = (lambda *a: seen.append(a), "function", "metadata")
    launch(*_tensors())
    assert not seen and len(jit.launches) == 1


class _Param:
    def __init__(self, name, default=None):
        self.name, self.default = name, default


class _HandWritten:
    """A stand-in @triton.jit kernel with integer and constexpr parameters: warmup compiles (counted)
    and returns a compiled kernel whose launcher records its calls."""

    def __init__(self):
        self.params = [_Param("x"), _Param("stride"), _Param("n"), _Param("BLOCK"), _Param("EVEN", True)]
        self.compiles, self.launched = [], []

    def warmup(self, *args, grid, **options):
        self.compiles.append((args, options))
        compiled = type("Compiled", (), {})()
        compiled.run = lambda *a: self.launched.append((len(self.compiles), a))
        compiled.function, compiled.packed_metadata = f"function{len(self.compiles)}", "metadata"
        return compiled


@pytest.fixture
def cuda_stand_ins(direct, monkeypatch):
    monkeypatch.setattr(triton_launch, "interpreting", lambda: False)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    triton_launch._BY_ARGUMENTS.clear()
    yield
    triton_launch._BY_ARGUMENTS.clear()


def test_hand_written_launches_compile_once_per_integer_values_and_tensor_alignment(cuda_stand_ins):
    kernel = _HandWritten()
    stride, n = random.randint(2, 50) * 16, random.randint(100, 1000)
    options = {"BLOCK": 64, "num_warps": 4}
    for _ in range(3):  # new memory each call, same key
        x = torch.randn(n)
        triton_launch.launch(kernel, (9, 2), (x, stride, n), options)
    assert len(kernel.compiles) == 1
    assert all(a[10:] == (stride, n, 64, True) for _, a in kernel.launched)  # args, then constexprs
    assert kernel.launched[-1][1][:9] == (9, 2, 1, 1000, "function1", "metadata", None, None, None)
    triton_launch.launch(kernel, (9, 2), (torch.randn(n), stride + 1, n), options)  # another stride
    triton_launch.launch(kernel, (9, 2), (torch.randn(n + 1)[1:], stride, n), options)  # misaligned
    triton_launch.launch(kernel, (9, 2), (torch.randn(n), stride, n), {**options, "EVEN": False})
    assert len(kernel.compiles) == 4
    assert kernel.launched[-1][1][-1] is False  # the constexpr given, not the default
    assert kernel.launched[-2][1][10] == stride and kernel.launched[-2][1][9].data_ptr() % 16


def test_launch_hooks_count_only_when_a_chain_holds_one(monkeypatch):
    """Triton's knobs hold an empty HookChain when no hook is set: that must not count."""
    knobs = pytest.importorskip("triton").knobs
    chain = knobs.runtime.launch_enter_hook
    assert not getattr(chain, "calls", None), "a hook is set in this process already"
    assert not triton_launch._launch_hooks_set()

    def hook(*args):
        pass
    if hasattr(chain, "add"):
        chain.add(hook)
        try:
            assert triton_launch._launch_hooks_set()
        finally:
            chain.remove(hook)
    else:
        monkeypatch.setattr(knobs.runtime, "launch_enter_hook", hook)
        assert triton_launch._launch_hooks_set()
    assert not triton_launch._launch_hooks_set()


def test_only_the_checked_arguments_are_looked_at_and_the_knob_turns_direct_launches_off(direct, monkeypatch):
    jit, seen = _Jit(), []
    launch = KernelLaunch(jit, (4,), num_warps=4, checked=(0,))  # argument 1 is aligned by construction
    launch.direct = (lambda *a: seen.append(a), "function", "metadata")
    aligned, _, flag = _tensors()
    misaligned = _tensors(offset_elements=2)[0]
    launch(aligned, misaligned, flag)
    assert len(seen) == 1 and not jit.launches
    launch(misaligned, aligned, flag)
    assert len(seen) == 1 and len(jit.launches) == 1
    monkeypatch.setattr(triton_launch.config, "direct_launch", False)
    launch(aligned, aligned, flag)
    assert len(seen) == 1 and len(jit.launches) == 2
