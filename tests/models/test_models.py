"""Whole models: forward and every gradient vs eager (norm-relative error <= 1e-4 in float32, see
tests/helpers.py), and a 3-step AdamW loop whose losses match eager."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import check_against_eager, check_training
from tensorsmith.bench.models.small import MLP, TINY_GPT, ConvBlock, hf_causal_lm, hf_encoder, tiny_nanogpt

from tensorsmith.bench.models.nanogpt import make_batch
from tensorsmith import records


def _assert_compiled_natively():
    """The model ran through tensorsmith graphs (none fell back whole)."""
    assert records.RECORDS, "no graph was compiled"
    whole = [r.graph_id for r in records.RECORDS if r.whole_graph_fallback]
    assert not whole, f"graphs ran whole through ATen: {whole}"


@pytest.fixture(autouse=True)
def _records():
    records.reset()
    torch.manual_seed(torch.seed() % 2**31)  # fresh inputs each run, but reproducible in a log
    yield


def test_mlp_forward_and_gradients():
    check_against_eager(MLP(), torch.randn(8, 32))
    _assert_compiled_natively()


def test_mlp_training_matches_eager():
    batches = [(torch.randn(16, 32), torch.randint(0, 10, (16,))) for _ in range(3)]
    check_training(MLP(), batches, lambda m, b: F.cross_entropy(m(b[0]), b[1]))


def test_nanogpt_forward_and_gradients():
    model, (idx, targets) = tiny_nanogpt()
    check_against_eager(model, idx, targets)  # the cross-entropy loss and every parameter grad
    check_against_eager(model, idx)  # the logits
    _assert_compiled_natively()
    assert not records.fallback_summary(records.RECORDS), records.format_records(records.RECORDS)


def test_nanogpt_training_matches_eager():
    model, _ = tiny_nanogpt()
    batches = [make_batch(TINY_GPT, 2) for _ in range(3)]
    check_training(model, batches, lambda m, b: m(*b))


def test_nanogpt_with_each_block_compiled_on_its_own_trains_as_eager():
    """Regional compile (`block.compile()`, FSDP2's pattern): one forward and one backward graph
    serve every block, each call with its own weights and activations; losses and every gradient
    of three AdamW steps match eager's."""
    import copy
    model, _ = tiny_nanogpt()
    assert len(model.blocks) >= 2
    eager, regional = copy.deepcopy(model), copy.deepcopy(model)
    torch._dynamo.reset()
    for block in regional.blocks:
        block.compile(backend="tensorsmith")
    batches = [make_batch(TINY_GPT, 2) for _ in range(3)]
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in (eager, regional)]
    for batch in batches:
        losses, grads = [], []
        for net, opt in zip((eager, regional), optimizers):
            opt.zero_grad(set_to_none=True)
            loss = net(*batch)
            loss.backward()
            losses.append(loss.item())
            grads.append([p.grad.clone() for p in net.parameters()])
            opt.step()
        assert abs(losses[1] - losses[0]) <= 1e-4 * abs(losses[0]), losses
        for (name, _), g_eager, g_regional in zip(model.named_parameters(), *grads):
            scale = max(g_eager.abs().max().item(), 1e-30)
            assert (g_regional - g_eager).abs().max().item() <= 1e-4 * scale, name
    _assert_compiled_natively()
    assert sorted(r.kind for r in records.RECORDS) == ["backward", "forward"]  # shared by the blocks


def test_nanogpt_inference_under_no_grad():
    model, (idx, _) = tiny_nanogpt()
    model.eval()
    with torch.no_grad():
        check_against_eager(model, idx, grads=False)
    assert any(r.kind == "inference" for r in records.RECORDS)


def test_conv_block_forward_and_gradients():
    check_against_eager(ConvBlock(), torch.randn(2, 8, 8, 8), torch.randn(2, 12))
    _assert_compiled_natively()


def test_conv_block_training_matches_eager():
    batches = [(torch.randn(2, 8, 8, 8), torch.randn(2, 12), torch.randn(2, 16, 8, 8))
               for _ in range(3)]
    check_training(ConvBlock(), batches, lambda m, b: F.mse_loss(m(b[0], b[1]), b[2]))


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_transformers_causal_lm(kind):
    model = hf_causal_lm(kind)
    ids = torch.randint(0, 96, (2, 12))
    check_against_eager(lambda i: model(input_ids=i, labels=i).loss, ids,
                        module=model)
    _assert_compiled_natively()
    batches = [torch.randint(0, 96, (2, 12)) for _ in range(3)]
    check_training(model, batches, lambda m, b: m(input_ids=b, labels=b).loss)


def test_transformers_encoder():
    model = hf_encoder()
    ids = torch.randint(0, 96, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 8:] = 0  # padding in the second sequence
    check_against_eager(lambda i, m: model(input_ids=i, attention_mask=m).last_hidden_state, ids,
                        mask, module=model)
    _assert_compiled_natively()
    batches = [torch.randint(0, 96, (2, 12)) for _ in range(3)]
    check_training(model, batches, lambda m, b: m(input_ids=b).pooler_output.square().mean())
