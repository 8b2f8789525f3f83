"""Graphs with symbolic sizes compiled once for every size (ir/sizes.py, frontend/symbolic.py,
runtime/sizes.py), through the interpreter and the C++ and Triton code generators: checked against eager and
float64 eager at sizes the compile never saw, and the number of compiles counted. With symbolic
sizes off (or a backend that takes static shapes), a graph is compiled per concrete shape."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from helpers import assert_close

import tensorsmith
from tensorsmith import records
from tensorsmith.bench.models.small import TINY_GPT, hf_causal_lm, tiny_nanogpt
from tensorsmith.errors import InputError
from tensorsmith.ir.graph import Graph
from tensorsmith.ir.sizes import symbol
from tensorsmith.ir.types import F32, TensorType
from tensorsmith.runtime.executor import GraphExecutor


def _mlp():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.LayerNorm(8),
                               torch.nn.Linear(8, 2))


def _as_float64(model):
    return copy.deepcopy(model).double()


def test_inference_compiles_once_for_every_batch_size(executor):
    model = _mlp().eval()
    reference = _as_float64(model)
    compiled = torch.compile(model, backend="tensorsmith", dynamic=True)
    with torch.no_grad():
        for batch in (3, 11, 2, 40, 7):
            x = torch.randn(batch, 4)
            assert_close(compiled(x), model(x), 1e-5, reference=reference(x.double()))
    (record,) = records.RECORDS
    assert record.symbolic and record.specializations == 1 and record.aten_calls == 0


def test_training_forward_and_backward_compile_once(executor):
    model = _mlp()
    reference = _as_float64(model)
    compiled = torch.compile(model, backend="tensorsmith", dynamic=True)
    for batch in (5, 2, 13):
        x = torch.randn(batch, 4)
        weights = torch.randn(batch, 2)
        out = compiled(x)
        grads = torch.autograd.grad((out * weights).sum(), list(model.parameters()))
        expected = model(x)
        expected_grads = torch.autograd.grad((expected * weights).sum(), list(model.parameters()))
        ref_out = reference(x.double())
        ref_grads = torch.autograd.grad((ref_out * weights.double()).sum(), list(reference.parameters()))
        assert_close(out, expected, 1e-5, reference=ref_out)
        for g, e, r in zip(grads, expected_grads, ref_grads):
            assert_close(g, e, 1e-5, "gradient", reference=r)
    assert {r.kind for r in records.RECORDS} == {"forward", "backward"}
    assert all(r.symbolic and r.specializations == 1 for r in records.RECORDS), records.RECORDS


def test_a_transformer_at_every_sequence_length(executor):
    model, _ = tiny_nanogpt()
    model.eval()
    reference = _as_float64(model)
    compiled = torch.compile(model, backend="tensorsmith", dynamic=True)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for length in (5, 14, 3):  # not 16, the mask buffer's length: Dynamo guards on it
            ids = torch.randint(0, TINY_GPT.vocab, (2, length), generator=generator)
            assert_close(compiled(ids), model(ids), 1e-4, reference=reference(ids))
    assert len(records.RECORDS) == 1 and records.RECORDS[0].symbolic
    assert records.RECORDS[0].specializations == 1


def test_sizes_used_as_numbers(executor):
    """A size as an operand (positions offset by the cache length, a mean scaled by a length):
    computed from each call's sizes, in the tensor's dtype, as eager does."""
    def f(x, positions):
        scaled = x * x.shape[1] - x.shape[0]
        return scaled.softmax(-1), positions + x.shape[1], (positions * x.shape[0]).float() / x.shape[1]
    compiled = torch.compile(f, backend="tensorsmith", dynamic=True)
    for batch, length in ((3, 5), (2, 9), (6, 4)):
        x, positions = torch.randn(batch, length), torch.randint(0, 50, (length,))
        for got, expected in zip(compiled(x, positions), f(x, positions)):
            assert got.dtype == expected.dtype
            assert_close(got, expected, 1e-5)
    (record,) = records.RECORDS
    assert record.symbolic and record.specializations == 1 and record.aten_calls == 0


def _generate_cases(cases):
    """(executor, model, batch) for the generate() tests: every case through the C++ generator and
    the interpreter, the batch-1 case through Triton (its CPU interpreter is the suite's slowest
    part, and the kernels of the other models and batches are the same ops at other sizes)."""
    return [(executor, kind, batch) for executor in ("cpp", "triton", "interpreter")
            for kind, batch in cases if executor != "triton" or batch == 1]


@pytest.mark.parametrize("executor,kind,batch",
                         _generate_cases([("gpt2", 2), ("llama", 1), ("qwen2", 8)]),
                         indirect=["executor"])
def test_generate_with_the_dynamic_cache_compiles_decoding_once(executor, kind, batch):
    """Hugging Face generate(): after the prefill and the first decode step (static shapes), the
    decode graph Dynamo makes dynamic is compiled once for every later cache length."""
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = hf_causal_lm(kind).eval()
    ids = torch.randint(0, 96, (batch, 5))
    settings = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        expected = model.generate(ids, **settings)
        model.forward = torch.compile(model.forward, backend="tensorsmith")
        generated = model.generate(ids, **settings)
    assert torch.equal(generated, expected)
    symbolic = [r for r in records.RECORDS if r.symbolic]
    assert len(symbolic) == 1 and symbolic[0].specializations == 1 and symbolic[0].aten_calls == 0
    assert sum(r.specializations for r in records.RECORDS) <= 3  # prefill, first step, the rest


@pytest.mark.parametrize("executor,kind,batch",
                         _generate_cases([("gpt2", 8), ("qwen2", 1), ("llama", 2)]),
                         indirect=["executor"])
def test_generate_with_the_static_cache_compiles_prefill_and_decode(executor, kind, batch):
    """generate(cache_implementation="static"): the cache has its full length from the start, so
    the prefill and one decode graph serve every step (the cache written in place)."""
    pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = hf_causal_lm(kind).eval()
    ids = torch.randint(0, 96, (batch, 5))
    settings = dict(max_new_tokens=10, min_new_tokens=10, do_sample=False, pad_token_id=0,
                    cache_implementation="static")
    with torch.no_grad():
        expected = model.generate(ids, **settings)
        model.forward = torch.compile(model.forward, backend="tensorsmith")
        generated = model.generate(ids, **settings)
    assert torch.equal(generated, expected)
    assert len(records.RECORDS) == 2 and all(r.specializations == 1 and r.aten_calls == 0
                                             for r in records.RECORDS), records.RECORDS


def test_generate_compiling_the_model_itself_with_our_backend():
    """With the static cache on a GPU, generate() compiles the forward itself (Inductor by default);
    `compile_config=CompileConfig(backend="tensorsmith")` makes it ours. Here on the CPU, where
    generate() is told to compile on every device."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    model = hf_causal_lm("gpt2").eval()
    ids = torch.randint(0, 96, (2, 5))
    settings = dict(max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0,
                    cache_implementation="static")
    compile_config = transformers.CompileConfig(backend="tensorsmith")
    compile_config._compile_all_devices = True
    records.reset()
    with torch.no_grad():
        expected = model.generate(ids, **settings)
        generated = model.generate(ids, compile_config=compile_config, **settings)
    assert torch.equal(generated, expected)
    # generate() compiles the decode step (its prefill runs eagerly): one graph, compiled by us
    assert len(records.RECORDS) == 1 and not records.RECORDS[0].whole_graph_fallback, records.RECORDS


def test_without_symbolic_sizes_each_shape_compiles(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "symbolic_sizes", False)
    monkeypatch.setattr(tensorsmith.config, "specialize_after", 1)
    records.reset()
    model = _mlp().eval()
    compiled = torch.compile(model, backend="tensorsmith", dynamic=True)
    with torch.no_grad():
        for batch in (3, 6):
            x = torch.randn(batch, 4)
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-5, atol=1e-5)
    (record,) = records.RECORDS
    assert not record.symbolic and record.specializations == 2


def test_arguments_whose_sizes_disagree_are_named():
    s0 = symbol("s0", 2)
    graph = Graph("f")
    x = graph.add_param("x", TensorType((s0, 4), F32))
    y = graph.add_param("y", TensorType((s0, 4), F32))
    graph.outputs.append(graph.add("add", [x, y]))
    imported = SimpleNamespace(graph=graph, outputs=[("tensor", 0)], output_strides=[None])
    executor = GraphExecutor(imported, [0, 1])
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    (out,) = executor(a, b)
    torch.testing.assert_close(out, a + b)
    with pytest.raises(InputError, match=r"argument 1 \(y\) has shape \[6, 4\] \(expected \[5, 4\]\)"):
        executor(a, torch.randn(6, 4))
    with pytest.raises(InputError, match=r"size 1 in dimension 0, outside the range \[2, inf\]"):
        executor(torch.randn(1, 4), torch.randn(1, 4))
