"""Merging identical calls of the joint graph (compile/joint_cse.py): what merges computes what
the graph computed, what must stay apart stays apart, and a training step no longer imports
Inductor's pattern matcher for it."""
from __future__ import annotations

import subprocess
import sys

import torch
from torch.fx.experimental.proxy_tensor import make_fx

from tensorsmith.compile.joint_cse import merge_identical_calls


def _calls(gm, target) -> int:
    return sum(1 for n in gm.graph.nodes if n.op == "call_function" and n.target is target)


def _merged(fn, *inputs):
    gm = make_fx(fn, tracing_mode="fake")(*inputs)
    before = len(gm.graph.nodes)
    assert merge_identical_calls(gm.graph)
    gm.recompile()
    return gm, before


def test_identical_calls_merge_and_compute_the_same():
    def fn(x, w):
        a = torch.sin(x) @ w
        b = torch.sin(x) @ w  # the same two calls again
        return a * b + torch.cos(x).sum(), torch.sin(x).exp()

    x, w = torch.randn(5, 7, dtype=torch.float64), torch.randn(7, 7, dtype=torch.float64)
    gm, before = _merged(fn, x, w)
    assert _calls(gm, torch.ops.aten.sin.default) == 1 and _calls(gm, torch.ops.aten.mm.default) == 1
    assert len(gm.graph.nodes) == before - 3
    for got, want in zip(gm(x, w), fn(x, w)):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_random_calls_and_empty_buffers_stay_apart():
    def fn(x):
        return torch.rand_like(x) - torch.rand_like(x), torch.empty(64).abs() + torch.empty(64).abs()

    x = torch.randn(64)
    gm, _ = _merged(fn, x)
    assert _calls(gm, torch.ops.aten.rand_like.default) == 2
    assert _calls(gm, torch.ops.aten.empty.memory_format) == 2
    noise, _ = gm(x)
    assert (noise != 0).all()  # two draws: one draw merged would give zeros


def test_constants_of_different_types_stay_apart():
    def fn(x):
        return torch.add(x, 1), torch.add(x, 1.0), torch.mul(x, True), torch.mul(x, 1)

    x = torch.randint(-50, 50, (9,))
    gm, _ = _merged(fn, x)
    got, want = gm(x), fn(x)
    assert [t.dtype for t in got] == [t.dtype for t in want] == [torch.int64, torch.float32, torch.int64, torch.int64]
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=0, atol=0)


def test_outputs_that_alias_stay_separate_tensors():
    def fn(x):
        return x.t(), x.t(), x.exp() + x.exp()

    x = torch.randn(3, 4)
    gm, _ = _merged(fn, x)
    assert _calls(gm, torch.ops.aten.t.default) == 2
    assert _calls(gm, torch.ops.aten.exp.default) == 1
    first, second, total = gm(x)
    assert first is not second
    torch.testing.assert_close(total, 2 * x.exp())


def test_a_graph_with_a_mutating_call_is_left_to_torch():
    def fn(x):
        y = x.sin()
        y.add_(1)
        return y + x.sin()

    gm = make_fx(fn, tracing_mode="fake")(torch.randn(4))
    before = [str(n) for n in gm.graph.nodes]
    assert not merge_identical_calls(gm.graph)
    assert [str(n) for n in gm.graph.nodes] == before


def test_a_training_step_does_not_import_the_pattern_matcher():
    """The point of the module: the partition no longer pulls in most of Inductor."""
    script = (
        "import sys, torch, tensorsmith\n"
        "torch.manual_seed(0)\n"
        "m = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 8), torch.nn.LayerNorm(8))\n"
        "x = torch.randn(4, 8)\n"
        "loss = torch.compile(m, backend='tensorsmith')(x).pow(2).sum()\n"
        "loss.backward()\n"
        "ref = m(x).pow(2).sum()\n"
        "assert torch.allclose(loss, ref, rtol=1e-5, atol=1e-5), (loss, ref)\n"
        "print('pattern_matcher' if 'torch._inductor.pattern_matcher' in sys.modules else 'clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "clean"
