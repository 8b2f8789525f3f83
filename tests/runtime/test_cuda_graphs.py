"""CUDA-graph replay (runtime/cuda_graphs/) without a GPU: which graphs are refused and why, the
liveness rule over storage use counts (CPU storages count the same way), and the runner's calls
(capture, in-place and copied arguments, held outputs, moved arguments, the index check) on the
Triton interpreter, with the CUDA graph simulated by a recording that writes the same outputs."""
from __future__ import annotations

import ctypes
import gc
import os
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "codegen"))

import tensorsmith
from tensorsmith import records
from tensorsmith.ir import parse_graph
from tensorsmith.ir.attrs import Operand
from tensorsmith.ir.graph import Graph
from tensorsmith.ir.types import F32, I64, TensorType
from tensorsmith.passes.fuse import schedule
from tensorsmith.runtime.cuda_graphs import eligibility, static_outputs
from tensorsmith.runtime.cuda_graphs import runner as cuda_graph_runner
from tensorsmith.runtime.cuda_graphs.call_sites import CallSites
from tensorsmith.runtime.cuda_graphs.runner import CudaGraphRunner
from tensorsmith.runtime.cuda_graphs.static_outputs import StaticOutputs

CUDA = torch.device("cuda")


def _graph(text: str):
    return parse_graph(textwrap.dedent(text))


SCALE = """\
    graph @scale(%x: f32[4,3]@cpu, %w: f32[4,3]@cpu) {
      %0 = mul(%x, %w) : f32[4,3]@cpu
      %1 = exp(%0) : f32[4,3]@cpu
      return %1, %0
    }
"""

NOISE = """\
    graph @noise(%x: f32[4,3]@cpu) {
      %0 = random() {dist="uniform", shape=[4,3], dtype=f32, device="cpu"} : f32[4,3]@cpu
      %1 = add(%x, %0) : f32[4,3]@cpu
      return %1
    }
"""


def _fallback_graph(target: str, args: list, kwargs: dict | None = None):
    g = Graph("fb")
    x = g.add_param("x", TensorType((2, 3), F32, "cpu"))
    y = g.add("fallback", [x], {"target": target, "args": args, "kwargs": kwargs or {}},
              type=TensorType((2, 3), F32, "cpu"))
    g.outputs = [y]
    return g


# -- eligibility ---------------------------------------------------------------------------------
def test_a_plain_graph_on_cuda_is_eligible_and_the_reasons_against_are_named(monkeypatch):
    s = schedule(_graph(SCALE))
    assert eligibility.refusal(s, CUDA, interpreted=False) is None
    assert eligibility.refusal(s, torch.device("cpu"), interpreted=False) == "device is cpu"
    assert "interpreted" in eligibility.refusal(s, CUDA, interpreted=True)
    monkeypatch.setattr(tensorsmith.config, "cuda_graphs", False)
    assert eligibility.refusal(s, CUDA, interpreted=False).startswith("off")


def test_a_graph_with_a_random_op_is_refused():
    reason = eligibility.refusal(schedule(_graph(NOISE)), CUDA, interpreted=False)
    assert reason and "random" in reason and "uniform" in reason


@pytest.mark.parametrize("target,args,kwargs,random", [
    ("aten.native_dropout.default", [Operand(0), 0.1, True], {}, True),
    ("aten.bernoulli.p", [Operand(0), 0.5], {}, True),
    ("aten.rand_like.default", [Operand(0)], {}, True),
    ("aten.normal_functional.default", [Operand(0)], {}, True),
    ("aten.multinomial.default", [Operand(0), 1], {}, True),
    ("aten.cumsum.default", [Operand(0), 1], {}, False),
    ("aten._scaled_dot_product_flash_attention.default", [Operand(0), Operand(0), Operand(0), 0.1], {}, True),
    ("aten._scaled_dot_product_flash_attention.default", [Operand(0), Operand(0), Operand(0), 0.0], {}, False),
    ("aten._scaled_dot_product_flash_attention.default", [Operand(0), Operand(0), Operand(0)], {}, False),
    ("aten._scaled_dot_product_efficient_attention.default",
     [Operand(0), Operand(0), Operand(0), None, False], {"dropout_p": 0.2}, True),
    ("aten._scaled_dot_product_efficient_attention.default",
     [Operand(0), Operand(0), Operand(0), None, False, 0.0], {}, False),
    ("tensorsmith.attention.default", [Operand(0), Operand(0), Operand(0), None, True, 0.5], {}, False),
    ("aten.made_up_attention.default", [Operand(0)], {}, True),  # unreadable: assume dropout
])
def test_fallbacks_that_draw_random_numbers_are_refused(target, args, kwargs, random):
    g = _fallback_graph(target, args, kwargs)
    assert (eligibility.random_node(g) is not None) == random
    reason = eligibility.refusal(schedule(g), CUDA, interpreted=False)
    assert (reason is not None and target in reason) == random


def test_cpu_tensor_arguments_are_refused():
    host_scalar = torch.tensor(7)
    on_device = [torch.empty(3, device="meta"), torch.empty((), device="meta")]
    assert eligibility.argument_refusal(on_device) is None
    reason = eligibility.argument_refusal([*on_device, host_scalar])
    assert reason and "argument 2" in reason and "CPU" in reason


def _interpreted(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", "triton")
    records.reset()


def test_compiled_graphs_record_why_they_are_not_replayed(monkeypatch):
    """Through torch.compile: dropout's graph is refused for its random op, a plain one (on the
    CPU here) for its device; both still compute what eager does."""
    _interpreted(monkeypatch)
    x = torch.randn(8, 5)
    f = torch.compile(lambda x: torch.tanh(x) * 2, backend="tensorsmith")
    for _ in range(3):
        torch.testing.assert_close(f(x), torch.tanh(x) * 2)
    torch._dynamo.reset()
    d = torch.compile(lambda x: F.dropout(x, 0.5, training=True) + 1, backend="tensorsmith")
    kept = d(x)
    assert ((kept == 1) | torch.isclose(kept, x * 2 + 1)).all()
    reasons = [r.cuda_graph for r in records.RECORDS]
    assert reasons[0] == "not: device is cpu"
    assert reasons[1] is not None and reasons[1].startswith("not: random op"), reasons


# -- the liveness rule ---------------------------------------------------------------------------
def test_handed_out_outputs_are_held_until_every_reference_is_gone():
    base = torch.arange(12.0).reshape(3, 4)
    static = StaticOutputs([base, base.t(), torch.empty(0, 4), torch.ones(5)], copy_out_bytes=0)
    del base
    assert static.seal() is None
    assert len(static.storages) == 2  # the transposed view shares the first output's storage
    assert not static.held()

    a, at, empty, b = static.hand_out()
    assert at.stride() == (1, 4) and at._base is None and torch.equal(at, a.t())
    assert empty.shape == (0, 4) and b.tolist() == [1.0] * 5
    assert static.held()
    del a, at, empty
    assert static.held()  # b still referenced
    del b
    assert not static.held()

    for keep in (lambda t: t[1:], lambda t: t.detach(), lambda t: t.view(-1), lambda t: [t]):
        kept = keep(static.hand_out()[0])
        assert static.held()
        del kept
        assert not static.held()

    outs = static.hand_out()  # reading storages (as the executor does) adds no lasting use
    pointers = [t.untyped_storage().data_ptr() for t in outs]
    del outs
    assert pointers and not static.held()


def test_small_outputs_are_handed_out_as_copies_and_never_hold():
    big, small = torch.arange(300.0), torch.tensor(2.5)
    static = StaticOutputs([big, small], copy_out_bytes=1024)
    del big, small
    assert static.seal() is None
    loss = static.hand_out()[1]
    assert loss.item() == 2.5 and not static.held()  # a kept loss is a copy
    static.storages[1].fill_(0)  # the next replay rewrites the static memory
    assert loss.item() == 2.5
    kept = static.hand_out()[0]
    assert static.held()
    del kept


def test_a_gradient_stolen_into_param_grad_holds_the_outputs():
    static = StaticOutputs([torch.zeros(3)], copy_out_bytes=0)
    assert static.seal() is None
    param = torch.zeros(3, requires_grad=True)
    param.grad = static.hand_out()[0]  # AccumulateGrad's steal of an incoming gradient
    assert static.held()
    param.grad = None  # optimizer.zero_grad(set_to_none=True)
    assert not static.held()


def test_broadcast_outputs_are_filled_through_their_memory():
    """An output that expands a buffer (HF's rotary table or mask, expanded over the batch) has
    elements sharing memory; copying the capturing call's result into it must write the buffer."""
    gen = torch.Generator().manual_seed(1)
    table = torch.randn(1, 4, 3, generator=gen)
    expanded = table.expand(5, 4, 3)
    row = torch.randn(6, generator=gen)
    static = StaticOutputs([expanded, row[:, None].expand(6, 2), table], copy_out_bytes=0)
    del expanded
    fresh = torch.randn(1, 4, 3, generator=gen)
    fresh_row = torch.randn(6, generator=gen)
    static.fill([fresh.expand(5, 4, 3), fresh_row[:, None].expand(6, 2), fresh])
    del table, row
    assert static.seal() is None
    a, b, c = static.hand_out()
    assert a.stride()[0] == 0 and torch.equal(a, fresh.expand(5, 4, 3))
    assert torch.equal(b, fresh_row[:, None].expand(6, 2)) and torch.equal(c, fresh)


def test_seal_refuses_outputs_still_referenced_at_capture():
    out = torch.ones(4)
    static = StaticOutputs([out], copy_out_bytes=0)
    problem = static.seal()  # `out` is still ours here: the baseline would hide it
    assert problem and "references" in problem


# -- the runner, with the CUDA graph simulated ---------------------------------------------------
def _by_address(t: torch.Tensor) -> torch.Tensor:
    """A tensor over `t`'s memory that does not hold `t`'s storage: a CUDA graph keeps addresses, and
    a reference would count as a holder of another capture's outputs taken in place."""
    storage = t.untyped_storage()
    if not storage.nbytes():
        return torch.empty_strided(t.size(), t.stride(), dtype=t.dtype)
    memory = (ctypes.c_char * storage.nbytes()).from_address(storage.data_ptr())
    return torch.frombuffer(memory, dtype=torch.uint8).view(t.dtype).as_strided(t.size(), t.stride(),
                                                                               t.storage_offset())


def _simulated_capture(self, static):
    """A 'CUDA graph' that behaves like one: outputs allocated at capture, each replay rewrites
    that memory with the wrapper run over the same argument tensors (no index check: the runner's
    job). Like a real one it keeps addresses, no tensors: it writes through the runner's storages."""
    outputs = self.owner._run(*static)
    arguments = [_by_address(t) for t in static]
    where = [(t.untyped_storage().data_ptr(), t.dtype, t.size(), t.stride(), t.storage_offset())
             for t in outputs]
    namespace = self.owner.namespace

    def replay():
        storages = {s.untyped_storage().data_ptr(): s.untyped_storage() for s in self.outputs.storages}
        check, namespace["_check"] = namespace["_check"], cuda_graph_runner._no_check
        try:
            for (pointer, dtype, size, stride, offset), new in zip(where, self.owner._run(*arguments)):
                if pointer in storages:
                    torch.empty(0, dtype=dtype).set_(storages[pointer], offset, size, stride).copy_(new)
        finally:
            namespace["_check"] = check
    return replay, outputs


@pytest.fixture
def simulated(monkeypatch):
    _interpreted(monkeypatch)
    monkeypatch.setattr(CudaGraphRunner, "_capture_graph", _simulated_capture)
    monkeypatch.setattr(static_outputs, "COPY_OUT_BYTES", 0)  # every output aliased (the shapes are tiny)

    def build(text):
        from tensorsmith.compile.codegen import generate_code
        compiled = generate_code(text if isinstance(text, Graph) else _graph(text))

        def attach(tensors):
            result = compiled(tensors)  # the ordinary first call
            compiled.cuda_graph = CudaGraphRunner(compiled, tensors)  # as attach() would on CUDA
            return result
        return compiled, attach
    return build


def _expect(x, w):
    return [torch.exp(x * w), x * w]


def test_runner_captures_replays_and_never_rewrites_held_outputs(simulated):
    compiled, attach = simulated(SCALE)
    w = torch.randn(4, 3)
    first = torch.randn(4, 3)
    attach([first, w])
    runner = compiled.cuda_graph

    x = torch.randn(4, 3)
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))  # captured: w in place, x copied
    assert runner.captures == 1 and runner.replays == 0 and runner.stopped is None, runner.stopped
    assert [i for i, _, _ in runner.in_place] == [1] and [i for i, _ in runner.copied] == [0]

    x = torch.randn(4, 3)
    out = compiled([x, w])
    torch.testing.assert_close(out, _expect(x, w))
    assert runner.replays == 1 and compiled.record.cuda_graph == "replayed"

    kept = out[0]  # the user keeps one output: the next call must not rewrite it
    kept_value = kept.clone()
    del out
    x = torch.randn(4, 3)
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.replays == 1 and runner.ordinary["outputs held"] == 1
    assert torch.equal(kept, kept_value)
    del kept

    w.mul_(3)  # an in-place argument is read where it is, at each replay
    x = torch.randn(4, 3)
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.replays == 2

    moved = w.clone()  # an in-place argument elsewhere: ordinary, then captured anew
    for _ in range(2):
        torch.testing.assert_close(compiled([x, moved]), _expect(x, moved))
    assert runner.ordinary["argument moved"] == 2 and runner.graph is None
    torch.testing.assert_close(compiled([x, moved]), _expect(x, moved))
    assert runner.captures == 2
    torch.testing.assert_close(compiled([x, moved]), _expect(x, moved))
    assert runner.replays == 3


def test_runner_replays_while_a_small_output_is_kept(simulated, monkeypatch):
    monkeypatch.setattr(static_outputs, "COPY_OUT_BYTES", 48)  # SCALE's f32[4,3] outputs: copies
    compiled, attach = simulated(SCALE)
    w = torch.randn(4, 3)
    attach([torch.randn(4, 3), w])
    runner = compiled.cuda_graph
    kept = []
    for _ in range(4):
        x = torch.randn(4, 3)
        kept.append((compiled([x, w]), _expect(x, w)))
    assert runner.replays == 3 and not runner.ordinary
    for actual, expected in kept:
        torch.testing.assert_close(actual, expected)


def test_runner_stops_after_too_many_captures(simulated, monkeypatch):
    monkeypatch.setattr(cuda_graph_runner, "MAX_CAPTURES", 1)
    compiled, attach = simulated(SCALE)
    w, x = torch.randn(4, 3), torch.randn(4, 3)
    attach([x, w])
    runner = compiled.cuda_graph
    compiled([x, w])
    alive = [w]  # held, so that no clone gets a freed one's address back
    for _ in range(3):
        w = w.clone()  # a new address every call
        alive.append(w)
        torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.stopped and "keep changing" in runner.stopped
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.replays == 0


def test_a_replaced_static_cache_is_captured_anew_in_place_as_often_as_it_comes(simulated, monkeypatch):
    """generate() makes a new static KV cache per call (a compiled prefill makes it): after enough
    replays, a new one is captured in place, not copied at every replay, and these renewals never
    stop the graph. An argument that moves soon after its capture is copied from the next capture
    on, and counted."""
    monkeypatch.setattr(cuda_graph_runner, "MAX_CAPTURES", 1)
    compiled, attach = simulated(SCALE)
    x = torch.randn(4, 3)

    def cache():
        return torch.randn(4, 3)
    w = cache()
    attach([x, w])
    runner = compiled.cuda_graph
    for generation in range(4):
        for _ in range(cuda_graph_runner.STABLE_REPLAYS + 3):
            x = torch.randn(4, 3)
            torch.testing.assert_close(compiled([x, w]), _expect(x, w))
        assert runner.stopped is None and [i for i, _, _ in runner.in_place] == [1]
        assert [i for i, _ in runner.copied] == [0]
        w = cache()
    assert runner.captures == 4 and runner.renewals == 3 and runner.replays >= 4 * cuda_graph_runner.STABLE_REPLAYS

    for _ in range(3):  # a renewal: two calls ordinary, then the capture
        torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.graph is not None and runner.renewals == 4
    w = cache()
    for _ in range(2):  # moves right after its capture: no renewal
        torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.stopped and "keep changing" in runner.stopped


def _sites(simulated, text=SCALE):
    from tensorsmith.compile.codegen import generate_code
    compiled = generate_code(_graph(text))
    return compiled


def _steps(compiled, weights, steps):
    """Each step calls the graph once per block (its own weight), holding every output until the
    step ends, as blocks' activations are held for the backward; returns the runner."""
    for step in range(steps):
        held = []
        for w in weights:
            x = torch.randn(4, 3)
            out = compiled([x, w])
            if compiled.cuda_graph is None:  # the first call ever: ordinary, then attached
                compiled.cuda_graph = CallSites(compiled, [x, w])
            torch.testing.assert_close(out, _expect(x, w))
            held.append(out)
        del held, out  # the step's outputs die before the next step's first call
        gc.collect()  # (Triton's interpreter leaves the last launch's arguments in a cycle)
    return compiled.cuda_graph


def test_call_sites_capture_one_graph_per_block_of_a_step(simulated):
    compiled = _sites(simulated)
    weights = [torch.randn(4, 3) for _ in range(3)]
    sites = _steps(compiled, weights, steps=10)
    # a call whose outputs are partly static (replayed) and partly fresh is probed both ways
    from torch.multiprocessing.reductions import StorageWeakRef

    from tensorsmith.runtime.cuda_graphs.call_sites import _alive, _probes
    site = sites.sites[0]
    mixed = _probes(site, [torch.randn(2), *site.outputs.hand_out()])
    assert isinstance(mixed[0], StorageWeakRef) and mixed[-1] is site and not _alive(mixed[0])
    assert sites.period == 3 and len(sites.sites) == 3, (sites.lengths, sites.in_generation, sites.watched)
    assert all(site.replays >= 1 for site in sites.sites), [s.replays for s in sites.sites]
    assert not sites.ordinary["outputs held"]
    assert all(site.stopped is None for site in sites.sites)


def test_call_sites_keep_one_runner_for_one_caller(simulated):
    compiled = _sites(simulated)
    sites = _steps(compiled, [torch.randn(4, 3)], steps=5)
    assert sites.period == 1 and len(sites.sites) == 1 and sites.replays >= 2


def test_call_sites_give_up_watching_without_a_steady_order(simulated, monkeypatch):
    from tensorsmith.runtime.cuda_graphs import call_sites
    monkeypatch.setattr(call_sites, "DETECTION_CALLS", 8)
    compiled = _sites(simulated)
    w = torch.randn(4, 3)
    kept = []
    for _ in range(10):  # every output kept: the generation never ends
        x = torch.randn(4, 3)
        out = compiled([x, w])
        if compiled.cuda_graph is None:
            compiled.cuda_graph = CallSites(compiled, [x, w])
        torch.testing.assert_close(out, _expect(x, w))
        kept.append(out)
    assert compiled.cuda_graph.period == 1 and len(compiled.cuda_graph.sites) == 1
    for out, in zip(kept):
        assert out[0].shape == (4, 3)


def test_call_sites_take_in_place_only_what_another_capture_returned(simulated):
    """Blocks chained as in a transformer (each block's input is the previous one's output), their
    weights gathered anew each step as FSDP2 does (new memory, at times where it was before): every
    site replays, with the weights copied, never taken in place; the chained input is taken in
    place from the second block on (the block before hands out its static outputs from its capturing
    call on), copied into the first (a fresh tensor each step)."""
    compiled = _sites(simulated)
    blocks, steps = 3, 10
    for step in range(steps):
        weights = [torch.randn(4, 3) for _ in range(blocks)]  # "gathered" this step
        x, held = torch.randn(4, 3), []
        for w in weights:
            out = compiled([x, w])
            if compiled.cuda_graph is None:
                compiled.cuda_graph = CallSites(compiled, [x, w])
            torch.testing.assert_close(out, _expect(x, w))
            held.append(out)
            x = out[1]  # x * w feeds the next block
        del held, out, x
        gc.collect()
    sites = compiled.cuda_graph
    assert sites.period == blocks and all(s.replays >= 2 for s in sites.sites), [s.replays for s in sites.sites]
    for k, site in enumerate(sites.sites):
        assert [i for i, _ in site.copied] == ([0, 1] if k == 0 else [1]), f"site {k}: in place {site.in_place}"
        assert [i for i, _, _ in site.in_place] == ([] if k == 0 else [0])


def test_a_graph_takes_in_place_the_outputs_of_one_captured_before_it_in_the_same_step(simulated):
    """Dynamo's DDP split: graph B's input is graph A's output, and both capture in the same step.
    A's capturing call already hands out its static outputs, so B takes that input in place (no copy
    at each replay), and both replay with the right values every step after."""
    first, attach_first = simulated(SCALE)
    second, attach_second = simulated(SCALE)
    w1, w2 = torch.randn(4, 3), torch.randn(4, 3)
    for step in range(6):
        x = torch.randn(4, 3)  # a fresh batch each step
        out1 = first([x, w1]) if step else attach_first([x, w1])
        out2 = second([out1[1], w2]) if step else attach_second([out1[1], w2])
        torch.testing.assert_close(out1, _expect(x, w1))
        torch.testing.assert_close(out2, _expect(x * w1, w2))
        del out1, out2
        gc.collect()
    a, b = first.cuda_graph, second.cuda_graph
    assert a.captures == b.captures == 1 and a.replays == b.replays == 4
    assert [i for i, _ in a.copied] == [0] and not b.copied  # only the fresh batch is copied


def test_an_argument_that_keeps_moving_is_copied_from_the_next_capture_on(simulated):
    """FSDP2 gathers a block's weights into new memory each step: replay with them copied."""
    compiled, attach = simulated(SCALE)
    x, w = torch.randn(4, 3), torch.randn(4, 3)
    attach([x, w])
    runner = compiled.cuda_graph
    compiled([x, w])  # captured, both in place (neither moved since the call before)
    assert runner.captures == 1 and not runner.copied
    moving = [torch.randn(4, 3) for _ in range(6)]  # all alive: a new address every call
    for w in moving:
        torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.stopped is None and runner.captures == 2 and [i for i, _ in runner.copied] == [1]
    assert runner.ordinary["argument moved"] == 2 and runner.replays == 3


def test_a_moved_argument_too_costly_to_copy_is_taken_in_place_again(simulated):
    compiled, runner, w = _runner_with_cheap_launches(simulated)
    x = torch.randn(4, 3)
    compiled([x, w])  # put off: x moved since the call before
    compiled([x, w])  # captured in place
    moved = w.clone()
    for _ in range(3):  # moved twice in a row, then captured anew: in place, not copied
        torch.testing.assert_close(compiled([x, moved]), _expect(x, moved))
    assert runner.unstable == {1} and runner.captures == 2 and not runner.copied
    torch.testing.assert_close(compiled([x, moved]), _expect(x, moved))
    assert runner.replays == 1


def _runner_with_cheap_launches(simulated):
    """SCALE compiled and attached, its runner as if timed on CUDA with launching next to free (so
    any copy of a moved argument costs more than replay saves); returns (compiled, runner, w)."""
    compiled, attach = simulated(SCALE)
    w = torch.randn(4, 3)
    attach([torch.randn(4, 3), w])
    runner = compiled.cuda_graph
    runner.launch_ms = 1e-12
    return compiled, runner, w


def test_capture_waits_while_copying_moved_arguments_costs_more_than_launching(simulated):
    compiled, runner, w = _runner_with_cheap_launches(simulated)
    for _ in range(cuda_graph_runner.MAX_CAPTURES):  # x moves every call: it would be copied at each replay
        x = torch.randn(4, 3)
        torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.stopped and "copying 1 moved arguments" in runner.stopped and runner.captures == 0
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.replays == 0


def test_capture_put_off_for_copies_happens_once_the_addresses_settle(simulated):
    """As the backward's saved activations settle once the forward is replayed from static outputs."""
    compiled, runner, w = _runner_with_cheap_launches(simulated)
    x = torch.randn(4, 3)
    compiled([x, w])  # x moved since the call before: put off
    assert runner.copy_refusals == 1 and runner.captures == 0 and runner.stopped is None
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))  # same addresses: captured in place
    assert runner.captures == 1 and not runner.copied
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))
    assert runner.replays == 1


def test_index_check_runs_after_each_replay(simulated):
    from codegen_cases import EMBEDDING

    from tensorsmith.errors import IndexOutOfRange
    compiled, attach = simulated(EMBEDDING)
    w = torch.randn(10, 4)
    attach([w, torch.tensor([1, 2, 3])])
    runner = compiled.cuda_graph
    compiled([w, torch.tensor([0, 9, 4])])  # capture (its index check left out)
    ids = torch.tensor([3, 1, 7])
    torch.testing.assert_close(compiled([w, ids])[0], w[ids] * w[ids])
    assert runner.replays == 1
    with pytest.raises(IndexOutOfRange):
        compiled([w, torch.tensor([0, 10, 2])])
    torch.testing.assert_close(compiled([w, ids])[0], w[ids] * w[ids])  # the flag was cleared
    assert runner.replays == 2


def test_a_site_runner_waits_for_a_capture_to_return_what_is_too_costly_to_copy(simulated):
    """A backward block's saved activations: too costly to copy at each replay, and not taken in
    place while they are ordinary outputs; once they are a capture's static outputs (the block's
    forward replays), they are, and the site captures."""
    compiled, attach = simulated(SCALE)
    x, w = torch.randn(4, 3), torch.randn(4, 3)
    attach([x, w])
    runner = compiled.cuda_graph = CudaGraphRunner(compiled, [x, w], captured_in_place_only=True)
    runner.measured, runner.launch_ms = True, 1e-12  # any copy costs more than launching saves
    torch.testing.assert_close(compiled([x, w]), _expect(x, w))  # same memory, yet not captured
    assert runner.captures == 0 and runner.copy_refusals == 1
    forward = StaticOutputs([x.clone(), w.clone()])  # a capture's outputs, as a replay hands out
    x2, w2 = forward.hand_out()
    for _ in range(3):  # captured at once, though they moved since the call before
        torch.testing.assert_close(compiled([x2, w2]), _expect(x2, w2))
    assert runner.captures == 1 and not runner.copied and runner.replays == 2
    assert sorted(i for i, _, _ in runner.in_place) == [0, 1]


# -- a graph with symbolic sizes: one capture per value of its sizes ------------------------------
ROWS = """\
    graph @rows(%x: f32[<s0>,3]@cpu, %w: f32[3]@cpu) sizes(s0: [2, inf]) {
      %0 = broadcast_in_dim(%w) {shape=[<s0>, 3], dims=[1]} : f32[<s0>,3]@cpu
      %1 = mul(%x, %0) : f32[<s0>,3]@cpu
      %2 = exp(%1) : f32[<s0>,3]@cpu
      return %2
    }
"""


def test_size_buckets_capture_recurring_sizes_only(simulated, monkeypatch):
    """Sizes seen once run the ordinary way; sizes that come again get a runner (timed, captured,
    then replayed, each bucket with its own outputs); at most cuda_graph_buckets runners are kept."""
    from tensorsmith.runtime.cuda_graphs.size_buckets import SizeBuckets
    monkeypatch.setattr(tensorsmith.config, "cuda_graph_buckets", 2)
    compiled, _ = simulated(ROWS)
    w = torch.randn(3)

    def call(rows):
        x = torch.randn(rows, 3)
        (out,) = compiled([x, w], {"s0": rows})
        torch.testing.assert_close(out, torch.exp(x * w))

    call(5)  # the ordinary first call, then buckets as attach() gives a symbolic graph on CUDA
    buckets = compiled.cuda_graph = SizeBuckets(compiled)
    for rows in (2, 3, 4, 6, 7):  # a growing length: nothing captured
        call(rows)
    assert not buckets.runners and buckets.ordinary == 5
    for _ in range(6):  # (off CUDA the runner captures on its first call, untimed: the argument
        call(3)         # that moves is learned from two ordinary calls, then captured anew)
    runner = buckets.runners[(3,)]
    assert runner.replays >= 2 and runner.stopped is None, runner.stopped
    for rows in (4, 4, 6, 6):  # two more recurring sizes: the least recently used runner goes
        call(rows)
    assert list(buckets.runners) == [(4,), (6,)] and buckets.dropped == 1
    for _ in range(6):
        call(4)
    assert buckets.runners[(4,)].replays >= 2


def _cache_write_graph() -> Graph:
    """cache.index_put((position,), values), written back into the cache, and twice its sum."""
    g = Graph("cache")
    cache = g.add_param("cache", TensorType((6, 5), F32, "cpu"))
    values = g.add_param("values", TensorType((2, 5), F32, "cpu"))
    position = g.add_param("position", TensorType((2,), I64, "cpu"))
    written = g.add("fallback", [cache, position, values], {
        "target": "aten.index_put.default", "args": [Operand(0), [Operand(1)], Operand(2), False],
        "kwargs": {}}, type=TensorType((6, 5), F32, "cpu"))
    total = g.add("reduce", [written], {"kind": "sum", "dims": [0]})
    g.outputs = [written, g.add("mul", [total, total])]
    g.written_back = {0: 0}
    return g


@pytest.mark.parametrize("moving", [False, True])
def test_an_argument_written_in_place_is_handed_out_written(simulated, moving):
    """A replay writes a cache taken in place into the caller's tensor, and one it copies into the
    copy, which it hands out written (the caller copies it back)."""
    compiled, attach = simulated(_cache_write_graph())
    assert compiled.writes_in_place == {0: 0}
    cache = torch.randn(6, 5)
    runner, alive = None, []  # held, so that no clone gets a freed one's address back
    for step in range(6):
        if moving:
            cache = cache.clone()
            alive.append(cache)
        before = cache.clone()
        values, position = torch.randn(2, 5), torch.tensor([step % 6, (step + 3) % 6])
        expected = before.index_put((position,), values)
        if runner is None:
            out = attach([cache, values, position])
            runner = compiled.cuda_graph
        else:
            out = compiled([cache, values, position])
        torch.testing.assert_close(out[0], expected)
        torch.testing.assert_close(out[1], expected.sum(0) ** 2)
        if not moving:
            assert out[0] is cache
    assert runner.replays >= 2 and runner.stopped is None, runner.stopped
    assert (0 in [i for i, _ in runner.copied]) == moving
