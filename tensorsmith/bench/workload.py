"""What a zoo entry builds: a model with its inputs, and how to take a loss and outputs from it.

The harness, the float64 reference and the subprocess probes all drive models through this one
shape, so a training step and an inference call mean the same thing everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .train_step import train_step


def flatten(value) -> list[torch.Tensor]:
    """Every tensor in a (nested) output, in order: tensors, tuples, dicts, HF ModelOutputs."""
    if isinstance(value, torch.Tensor):
        return [value]
    if hasattr(value, "to_tuple"):
        value = value.to_tuple()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in flatten(v)]
    return []


def model_loss(output) -> torch.Tensor:
    """The loss a model computed itself: a scalar tensor, or a Hugging Face output's `.loss`."""
    loss = getattr(output, "loss", None)
    return output if loss is None else loss


@dataclass
class Workload:
    model: torch.nn.Module
    train_inputs: dict[str, Any]  # keyword arguments of a training call (labels included)
    infer_inputs: dict[str, Any]  # keyword arguments of an inference call
    summary: str  # the size in words, e.g. "GPT-2 12x768, seq 1024, batch 8"
    loss: Callable[[Any], torch.Tensor] = model_loss  # training call's output -> scalar loss
    outputs: Callable[[Any], list[torch.Tensor]] = flatten  # inference output -> tensors compared
    batch: int = 1


def _map_tensors(value, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_tensors(v, fn) for v in value)
    return value


def to_double(value):
    """Floating tensors (nested) in float64; integer tensors and everything else unchanged."""
    return _map_tensors(value, lambda t: t.double() if t.is_floating_point() else t)


def to_device(value, device):
    return _map_tensors(value, lambda t: t.to(device))


def make_step(workload: Workload, fn, mode: str, optimizer=None):
    """One benchmark step: train = bench/train_step.py's (zero grads, forward, loss, backward,
    optimizer step); infer = a forward under no_grad."""
    if mode == "train":
        inputs = workload.train_inputs
        return train_step(lambda: fn(**inputs), optimizer, loss_of=workload.loss)
    inputs = workload.infer_inputs

    def step():
        with torch.no_grad():
            fn(**inputs)
    return step


def optimizer_for(model: torch.nn.Module) -> torch.optim.Optimizer:
    return torch.optim.AdamW(model.parameters(), lr=1e-4)


def prepare(model: torch.nn.Module, mode: str) -> torch.nn.Module:
    return model.train() if mode == "train" else model.eval()
