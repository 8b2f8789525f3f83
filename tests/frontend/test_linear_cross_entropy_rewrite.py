"""The linear + cross-entropy rewrite (frontend/linear_cross_entropy.py): which forms it fuses and
which it leaves alone (with the reason logged), each checked against eager for the loss and every
gradient. Most cases run the rewritten pre-dispatch graph eagerly (a small Dynamo backend below);
nanoGPT and the Hugging Face models compile whole with backend="tensorsmith"."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import tensorsmith
from tensorsmith import records
from tensorsmith.frontend import linear_cross_entropy as rewrite

D, V = 12, 37


@pytest.fixture(autouse=True)
def _fresh_records(monkeypatch):
    rewrite.MATCHES.clear()
    rewrite.SKIPPED.clear()
    monkeypatch.setattr(tensorsmith.config, "fuse_linear_cross_entropy_min_mb", 0)  # small shapes
    yield


def _rewriting_backend(gm, example_inputs):
    return rewrite.rewrite_linear_cross_entropy(gm, example_inputs)


def _check(fn, params, *args, backend=_rewriting_backend, fused=True, tol=1e-5):
    """Run `fn` eagerly and compiled; compare outputs and the gradients of `params`."""
    ref = fn(*args)
    ref_out = ref if isinstance(ref, tuple) else (ref,)
    sum(o.float().square().sum() if o.dim() else o for o in ref_out).backward()
    want = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    got = torch.compile(fn, backend=backend)(*args)
    got_out = got if isinstance(got, tuple) else (got,)
    sum(o.float().square().sum() if o.dim() else o for o in got_out).backward()
    for g, r in zip(got_out, ref_out):
        assert g.dtype == r.dtype and torch.allclose(g, r, rtol=tol, atol=tol, equal_nan=True)
    for p, w in zip(params, want):
        assert torch.allclose(p.grad, w, rtol=tol, atol=tol)
    assert bool(rewrite.MATCHES) == fused, rewrite.SKIPPED
    return rewrite.MATCHES


def _data(n=2, t=8):
    x = torch.randn(n, t, D, requires_grad=True)
    target = torch.randint(0, V, (n, t))
    target[0, :3] = -1
    return x, target


@pytest.mark.parametrize("form", ["nn.Linear", "F.linear", "x @ W.t()", "mm", "log_softmax+nll"])
@pytest.mark.parametrize("options", [dict(ignore_index=-1, label_smoothing=0.1),
                                     dict(ignore_index=-1, reduction="sum")])
def test_forms_fuse_and_match_eager(form, options):
    head = nn.Linear(D, V, bias=form == "nn.Linear" or form == "log_softmax+nll")
    bias = torch.randn(V, requires_grad=True)
    x, target = _data()
    params = [x, head.weight] + ([head.bias] if head.bias is not None else [bias] if form == "F.linear" else [])

    def fn(x, target):
        if form == "nn.Linear":
            logits = head(x)
        elif form == "F.linear":
            logits = F.linear(x, head.weight, bias)
        elif form == "mm":
            logits = torch.mm(x.view(-1, D), head.weight.t())
        elif form == "x @ W.t()":
            logits = x @ head.weight.t()
        else:
            logits = head(x)
        flat = logits.view(-1, logits.size(-1))
        if form == "log_softmax+nll":
            if "label_smoothing" in options:
                pytest.skip("nll_loss has no label smoothing")
            return F.nll_loss(F.log_softmax(flat, dim=-1), target.view(-1), ignore_index=-1,
                              reduction=options["reduction"])
        return F.cross_entropy(flat, target.view(-1), **options)

    (match,) = _check(fn, params, x, target)
    assert match.training and match.ignore_index == -1 and not match.logits_kept


@pytest.mark.parametrize("case,reason", [
    ("none", "reduction 'none'"),
    ("weights", "class weights"),
    ("dim0", "log_softmax over another dim"),
    ("scaled", "not a linear projection"),
])
def test_left_alone(case, reason):
    head = nn.Linear(D, V)
    x, target = _data()
    weights = torch.rand(V)

    def fn(x, target):
        flat = head(x).view(-1, V)
        if case == "none":
            return F.cross_entropy(flat, target.view(-1), ignore_index=-1, reduction="none").sum()
        if case == "weights":
            return F.cross_entropy(flat, target.view(-1), weight=weights, ignore_index=-1)
        if case == "dim0":
            return F.nll_loss(F.log_softmax(flat, dim=0), target.view(-1), ignore_index=-1)
        return F.cross_entropy(flat * 2.0, target.view(-1), ignore_index=-1)

    _check(fn, [x, head.weight, head.bias], x, target, fused=False)
    assert any(reason in why for _, why in rewrite.SKIPPED), rewrite.SKIPPED


def test_logits_also_returned_keep_their_gradient():
    """Logits returned beside the loss (and differentiated there) stay computed, once: the fused
    loss reads them (no second product in the graph)."""
    head = nn.Linear(D, V)
    x, target = _data()

    def fn(x, target):
        logits = head(x)
        return F.cross_entropy(logits.view(-1, V), target.view(-1), ignore_index=-1), logits

    (match,) = _check(fn, [x, head.weight, head.bias], x, target)
    assert match.logits_kept


def test_inference_and_float64():
    head = nn.Linear(D, V).double()
    x, target = _data()
    x = x.detach().double()

    def fn(x, target):
        return F.cross_entropy(head(x).view(-1, V), target.view(-1), ignore_index=-1)

    with torch.no_grad():
        want = fn(x, target)
        got = torch.compile(fn, backend=_rewriting_backend)(x, target)
    assert torch.allclose(got, want, rtol=1e-12) and not rewrite.MATCHES[0].training
    torch._dynamo.reset()
    rewrite.MATCHES.clear()
    x.requires_grad_()
    (match,) = _check(fn, [x, head.weight, head.bias], x, target, tol=1e-12)
    assert match.training


def test_autocast_casts_like_eager():
    """Under CPU autocast the logits are bfloat16 (as eager's) and the loss float32."""
    head = nn.Linear(D, V)
    x, target = _data()

    def fn(x, target):
        return F.cross_entropy(head(x).view(-1, V), target.view(-1), ignore_index=-1)

    with torch.autocast("cpu", dtype=torch.bfloat16):
        _check(fn, [x, head.weight, head.bias], x, target, tol=2e-2)


def test_flag_off(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "fuse_linear_cross_entropy", False)
    head = nn.Linear(D, V)
    x, target = _data()
    torch.compile(lambda x, t: F.cross_entropy(head(x).view(-1, V), t.view(-1)),
                  backend="tensorsmith")(x, target)
    assert not rewrite.MATCHES


def test_small_logits_are_left_alone_before_tracing(monkeypatch):
    """Logits below fuse_linear_cross_entropy_min_mb: the Dynamo graph compiles as captured, not
    traced (Dynamo's example values give the size); at the size it is fused, and a memory budget
    fuses at any size."""
    traced = []
    real_trace = rewrite.trace
    monkeypatch.setattr(rewrite, "trace", lambda *a: traced.append(1) or real_trace(*a))
    at_size = 16 * V * 4 / 2**20  # the 16 x 37 float32 logits below
    for min_mb, budget, fused in ((1, None, False), (at_size, None, True), (1, "1GB", True)):
        monkeypatch.setattr(tensorsmith.config, "fuse_linear_cross_entropy_min_mb", min_mb)
        monkeypatch.setattr(tensorsmith.config, "memory_budget", budget)
        torch._dynamo.reset()
        rewrite.MATCHES.clear()
        traced.clear()
        head = nn.Linear(D, V)
        x, target = _data()
        _check(lambda x, t: F.cross_entropy(head(x).view(-1, V), t.view(-1), ignore_index=-1),
               [x, head.weight, head.bias], x, target, fused=fused)
        assert bool(traced) == fused and not rewrite.SKIPPED


def test_a_small_loss_beside_a_large_one_is_skipped_with_its_reason(monkeypatch):
    """Where the Dynamo graph has a loss at or above the size, it is traced; the small one is then
    left alone with its size as the reason."""
    monkeypatch.setattr(tensorsmith.config, "fuse_linear_cross_entropy_min_mb", 16 * V * 4 / 2**20)
    head, small_head = nn.Linear(D, V), nn.Linear(D, V)
    x, target = _data()

    def fn(x, t):
        return F.cross_entropy(head(x).view(-1, V), t.view(-1), ignore_index=-1) + \
            F.cross_entropy(small_head(x[:1]).view(-1, V), t[:1].view(-1), ignore_index=-1)
    _check(fn, [x, head.weight, small_head.weight], x, target)
    assert len(rewrite.MATCHES) == 1
    assert [reason for _, reason in rewrite.SKIPPED] == [
        f"logits of {8 * V * 4 / 2**20:.2g} MiB, below fuse_linear_cross_entropy_min_mb "
        f"({16 * V * 4 / 2**20:g})"]


def test_nanogpt_saves_no_logits():
    """Compiled with backend="tensorsmith": loss and every gradient as eager's, and no tensor the
    compiled forward saves for the backward has the vocabulary in its shape but the head's (V, D)."""
    from tensorsmith.bench.models.nanogpt import GPTConfig, NanoGPT

    cfg = GPTConfig(vocab=97, width=40, layers=1, heads=2, seq=24)
    model = NanoGPT(cfg)
    eager = copy.deepcopy(model)
    idx, targets = torch.randint(0, 97, (2, 24)), torch.randint(0, 97, (2, 24))
    compiled = torch.compile(model, backend="tensorsmith")
    compiled(idx, targets).backward()  # compiles (Dynamo's tracing saves tensors too)
    model.zero_grad()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(tuple(t.shape)) or t, lambda t: t):
        loss = compiled(idx, targets)
    loss.backward()
    want = eager(idx, targets)
    want.backward()
    assert torch.allclose(loss, want, rtol=1e-5, atol=1e-6)
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
    assert rewrite.MATCHES and rewrite.MATCHES[-1].training
    assert saved and all(97 not in s or s == (97, 40) for s in saved), saved


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_hugging_face_causal_lm(family):
    """transformers' ForCausalLMLoss (logits.float(), labels padded and shifted; mean, or sum over
    num_items_in_batch): fused, with the returned logits kept and differentiated."""
    transformers = pytest.importorskip("transformers")
    if family == "gpt2":
        model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
            n_layer=1, n_embd=16, n_head=2, vocab_size=V, n_positions=32,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0))
    else:
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
            num_hidden_layers=1, hidden_size=16, intermediate_size=32, num_attention_heads=2,
            num_key_value_heads=1, vocab_size=V))
    model.loss_type = "ForCausalLM"  # (else transformers logs a warning: a graph break before the loss)
    eager = copy.deepcopy(model)
    ids = torch.randint(0, V, (2, 10))
    labels = ids.clone()
    labels[0, :3] = -100
    extra = {} if family == "gpt2" else {"num_items_in_batch": torch.tensor(13)}
    out = torch.compile(model, backend="tensorsmith")(input_ids=ids, labels=labels, **extra)
    ref = eager(input_ids=ids, labels=labels, **extra)
    (out.loss + out.logits.square().mean()).backward()
    (ref.loss + ref.logits.square().mean()).backward()
    assert torch.allclose(out.loss, ref.loss, rtol=1e-5) and torch.allclose(out.logits, ref.logits, atol=1e-5)
    for (name, p), q in zip(model.named_parameters(), eager.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-6), name
    (match,) = rewrite.MATCHES
    assert match.logits_kept and match.training
    assert match.reduction == ("mean" if family == "gpt2" else "sum")


def test_a_graph_tracing_would_bake_constants_into_compiles_without_the_rewrite():
    """Mamba's scan (associative_scan's combine function) traces to pre-dispatch ATen with traced
    (fake) values made constants; the rewrite then leaves the graph as Dynamo gave it, and the whole model still
    compiles with eager's loss and gradients."""
    from torch._higher_order_ops.associative_scan import associative_scan

    def combine(left, right):
        return left[0] * right[0], right[0] * left[1] + right[1]

    head = nn.Linear(D, V)

    def loss_of(x, decay, target):
        _, states = associative_scan(combine, (decay, x), dim=1, combine_mode="generic")
        return F.cross_entropy(head(states).view(-1, V), target.view(-1), ignore_index=-1)

    x, target = _data()
    decay = torch.rand(2, 8, D)
    records.reset()
    _check(loss_of, [x, *head.parameters()], x, decay, target, backend="tensorsmith", fused=False)
    assert records.RECORDS and not [r.whole_graph_fallback for r in records.RECORDS
                                    if r.whole_graph_fallback]
