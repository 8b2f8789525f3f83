"""The training step the bench scripts time, built in one place so that a "train step" is the same
work in each of them, with a hook after each phase for bench/step_timeline.py."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch


def no_mark(phase: str) -> None:
    """A step's default `mark`: does nothing."""


def train_step(forward: Callable[[], Any], optimizer: torch.optim.Optimizer | None = None, *,
               loss_of: Callable[[Any], torch.Tensor] | None = None, autocast: str | None = None,
               grads_of: Sequence[torch.Tensor] | None = None) -> Callable[..., Any]:
    """`step(mark=no_mark)`: optimizer.zero_grad(set_to_none=True), loss = loss_of(forward()),
    loss.backward(), optimizer.step(), with mark("forward"), mark("backward") and mark("optimizer")
    after each phase; it returns loss.detach(). The optimizer runs eagerly.

    loss_of: the forward's output -> scalar loss (default: the output is the loss); the output is
    not held past it, so e.g. a model output's logits are freed before the backward.
    autocast: a device type; forward() runs under bfloat16 autocast on it (loss_of outside).
    grads_of: instead of an optimizer (pass none), the step takes the gradients of these tensors
    with torch.autograd.grad (no .grad written, nothing updated) and returns (loss.detach(), grads).
    """
    if (optimizer is None) == (grads_of is None):
        raise ValueError("train_step takes exactly one of optimizer and grads_of")
    if autocast is not None:
        forward = _under_autocast(forward, autocast)
    if loss_of is not None:
        forward = _then(forward, loss_of)

    if grads_of is not None:
        def grads_step(mark=no_mark):
            loss = forward()
            mark("forward")
            grads = torch.autograd.grad(loss, grads_of)
            mark("backward")
            return loss.detach(), grads
        return grads_step

    def step(mark=no_mark):
        optimizer.zero_grad(set_to_none=True)
        loss = forward()
        mark("forward")
        loss.backward()
        mark("backward")
        optimizer.step()
        mark("optimizer")
        return loss.detach()
    return step


def _under_autocast(fn, device_type: str):
    def autocast():
        with torch.autocast(device_type, dtype=torch.bfloat16):
            return fn()
    return autocast


def _then(fn, after):
    return lambda: after(fn())
