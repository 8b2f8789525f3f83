"""bench/train_step.py's step against the same step written out by hand in eager PyTorch."""
import copy

import pytest
import torch
import torch.nn.functional as F

from tensorsmith.bench.models.small import MLP
from tensorsmith.bench.train_step import train_step


def _pair():
    """Two copies of a small model with the same random weights, and a fresh random batch."""
    model = MLP()
    x, y = torch.randn(16, 32), torch.randint(0, 10, (16,))
    return model, copy.deepcopy(model), x, y


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _assert_equal(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert torch.equal(a, e)


def test_a_step_updates_the_parameters_as_a_hand_written_step():
    model, ref, x, y = _pair()
    opt, ref_opt = torch.optim.AdamW(model.parameters(), lr=1e-2), torch.optim.AdamW(ref.parameters(), lr=1e-2)
    step = train_step(lambda: model(x), opt, loss_of=lambda out: F.cross_entropy(out, y))
    before = _params(model)
    for _ in range(3):  # later steps see AdamW's state and the previous step's gradients
        loss = step()
        ref_opt.zero_grad(set_to_none=True)
        ref_loss = F.cross_entropy(ref(x), y)
        ref_loss.backward()
        ref_opt.step()
        assert torch.equal(loss, ref_loss.detach()) and not loss.requires_grad
        _assert_equal(_params(model), _params(ref))
        _assert_equal([p.grad for p in model.parameters()], [p.grad for p in ref.parameters()])
    assert not any(torch.equal(a, b) for a, b in zip(_params(model), before))


def test_mark_is_called_once_per_phase_in_order():
    model, _, x, y = _pair()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    step = train_step(lambda: model(x), opt, loss_of=lambda out: F.cross_entropy(out, y))
    step()  # gradients exist from here on: the next step must clear them before its forward
    seen = []

    def mark(phase):
        grads = [p.grad for p in model.parameters()]
        seen.append((phase, all(g is None for g in grads), _params(model)))

    before = _params(model)
    step(mark)
    assert [phase for phase, _, _ in seen] == ["forward", "backward", "optimizer"]
    (_, no_grads_forward, at_forward), (_, no_grads_backward, at_backward), (_, _, at_optimizer) = seen
    assert no_grads_forward and not no_grads_backward  # zero_grad(set_to_none) ran first
    _assert_equal(at_forward, before)
    _assert_equal(at_backward, before)  # the optimizer runs last
    _assert_equal(at_optimizer, _params(model))
    assert not any(torch.equal(a, b) for a, b in zip(at_optimizer, before))


def test_grads_of_returns_the_gradients_and_updates_nothing():
    model, ref, x, y = _pair()
    params = list(model.parameters())
    step = train_step(lambda: F.cross_entropy(model(x), y), autocast="cpu", grads_of=params)
    before, seen = _params(model), []
    loss, grads = step(seen.append)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref_loss = F.cross_entropy(ref(x), y)
    ref_grads = torch.autograd.grad(ref_loss, list(ref.parameters()))
    assert seen == ["forward", "backward"]
    assert torch.equal(loss, ref_loss.detach()) and not loss.requires_grad
    _assert_equal(list(grads), list(ref_grads))
    _assert_equal(_params(model), before)
    assert all(p.grad is None for p in params)


def test_autocast_wraps_the_forward_only():
    model, ref, x, y = _pair()
    opt, ref_opt = torch.optim.SGD(model.parameters(), lr=0.1), torch.optim.SGD(ref.parameters(), lr=0.1)
    dtypes = []

    def loss_of(out):
        dtypes.append((out.dtype, torch.is_autocast_enabled("cpu")))
        return F.cross_entropy(out, y)

    loss = train_step(lambda: model(x), opt, loss_of=loss_of, autocast="cpu")()
    ref_opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = ref(x)
    ref_loss = F.cross_entropy(out, y)
    ref_loss.backward()
    ref_opt.step()
    assert dtypes == [(torch.bfloat16, False)]
    assert torch.equal(loss, ref_loss.detach())
    _assert_equal(_params(model), _params(ref))


def test_exactly_one_of_optimizer_and_grads_of():
    model = MLP()
    with pytest.raises(ValueError):
        train_step(lambda: model(torch.randn(2, 32)).sum())
    with pytest.raises(ValueError):
        train_step(lambda: model(torch.randn(2, 32)).sum(), torch.optim.SGD(model.parameters(), lr=0.1),
                   grads_of=list(model.parameters()))
