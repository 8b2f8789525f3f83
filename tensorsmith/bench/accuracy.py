"""Accuracy against a float64 eager reference, with the tolerance stated.

Inference compares every output tensor; training compares the loss and every parameter gradient of
one forward and backward from the initial weights (before any optimizer step, so all backends start
from the same point). For each tensor, error = max|x - ref64| and scale = max|ref64|, the scale no
less than SCALE_FLOOR times the largest scale in the comparison (a tensor that is zero in exact
arithmetic, like the gradient of attention's key bias, is judged against the magnitudes around it,
not its own rounding noise). The relative error is error / scale; it passes when
    error <= max(tolerance * scale, EAGER_FACTOR * max|eager32 - ref64|)
i.e. within the stated relative tolerance, or within a small multiple of what float32 eager itself
gets wrong on that tensor (unless eager's error is NaN or infinite: then the tolerance alone).
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch

from .workload import Workload, to_double

DEFAULT_TOLERANCE = 1e-4
EAGER_FACTOR = 10.0
SCALE_FLOOR = 1e-3


@dataclass
class Accuracy:
    max_rel_error: float  # max over tensors of error / scale
    tolerance: float
    passed: bool
    worst: str  # the tensor with the largest relative error
    reference: str  # "float64 eager" or what stood in for it
    tensors: int

    def to_dict(self) -> dict:
        return asdict(self)


def capture(workload: Workload, fn, mode: str, model: torch.nn.Module, inputs=None) -> list:
    """[(name, tensor or None)]: train -> loss and gradients (grads cleared after), infer -> outputs."""
    if mode == "train":
        inputs = workload.train_inputs if inputs is None else inputs
        model.zero_grad(set_to_none=True)
        loss = workload.loss(fn(**inputs))
        loss.backward()
        result = [("loss", loss.detach())]
        result += [(f"grad {n}", None if p.grad is None else p.grad.detach().clone())
                   for n, p in model.named_parameters()]
        model.zero_grad(set_to_none=True)
        return result
    inputs = workload.infer_inputs if inputs is None else inputs
    with torch.no_grad():
        return [(f"output {i}", t.detach()) for i, t in enumerate(workload.outputs(fn(**inputs)))]


def reference(workload: Workload, mode: str) -> list:
    """The same call on a float64 copy of the model and float64 copies of the floating inputs."""
    model64 = copy.deepcopy(workload.model).double()
    inputs = to_double(workload.train_inputs if mode == "train" else workload.infer_inputs)
    try:
        return capture(workload, model64, mode, model64, inputs)
    finally:
        del model64


def _abs_error(a: torch.Tensor, r: torch.Tensor) -> float:
    if a.numel() == 0:
        return 0.0
    a, r = a.double(), r.double()
    both_nan = torch.isnan(a) & torch.isnan(r)
    diff = torch.where(both_nan, torch.zeros_like(a), (a - r).abs())
    return float("inf") if torch.isnan(diff).any() else diff.max().item()


def compare(actual: list, ref: list, eager: list | None = None,
            tolerance: float = DEFAULT_TOLERANCE, reference_name: str = "float64 eager") -> Accuracy:
    worst, worst_rel, passed = "", 0.0, True
    if len(actual) != len(ref):
        return Accuracy(float("inf"), tolerance, False, f"{len(actual)} tensors vs {len(ref)}",
                        reference_name, len(actual))
    floats = [r for _, r in ref if r is not None and r.is_floating_point() and r.numel()]
    floor = SCALE_FLOOR * max((r.double().abs().max().item() for r in floats), default=0.0)
    for i, ((name, a), (_, r)) in enumerate(zip(actual, ref)):
        e = eager[i][1] if eager is not None else None
        if a is None or r is None:
            ok, rel = (a is None) == (r is None), 0.0 if (a is None) == (r is None) else float("inf")
        elif a.shape != r.shape:
            ok, rel = False, float("inf")
        elif not a.is_floating_point():
            ok = torch.equal(a.cpu(), r.cpu())
            rel = 0.0 if ok else float("inf")
        else:
            err = _abs_error(a, r)
            scale = max(r.double().abs().max().item() if r.numel() else 0.0, floor)
            allowed = tolerance * scale
            eager_error = _abs_error(e, r) if e is not None and e.shape == r.shape else math.inf
            if math.isfinite(eager_error):  # eager's NaN or Inf sets no bound: nothing would fail
                allowed = max(allowed, EAGER_FACTOR * eager_error)
            ok = err <= allowed
            rel = err / scale if scale > 0 else (0.0 if err == 0 else float("inf"))
        passed &= ok
        if rel > worst_rel or (not ok and not worst):
            worst, worst_rel = name, rel
    return Accuracy(worst_rel, tolerance, passed, worst, reference_name, len(actual))
