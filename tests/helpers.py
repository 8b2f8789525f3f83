"""The one helper model and op tests compare with eager through.

Error measure: for each output or gradient tensor, max|compiled - eager| / max(max|eager|, 1e-6)
(a norm-relative max error), which stays meaningful where individual elements are near zero.
"""
from __future__ import annotations

import torch


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().double(), expected.detach().double()
    if actual.numel() == 0:
        return 0.0
    scale = max(expected.abs().max().item(), 1e-6)
    return ((actual - expected).abs().max() / scale).item()


def _flatten(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _flatten(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flatten(v)]
    if hasattr(value, "to_tuple"):  # transformers ModelOutput
        return _flatten(value.to_tuple())
    return []


def assert_close(actual, expected, tol: float, what: str = "output"):
    actual, expected = _flatten(actual), _flatten(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} tensors vs {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, f"{what}[{i}]: shape {tuple(a.shape)} vs eager {tuple(e.shape)}"
        assert a.dtype == e.dtype, f"{what}[{i}]: dtype {a.dtype} vs eager {e.dtype}"
        if not a.dtype.is_floating_point:
            assert torch.equal(a, e), f"{what}[{i}]: differs from eager"
            continue
        nan_a, nan_e = torch.isnan(a), torch.isnan(e)
        assert torch.equal(nan_a, nan_e), f"{what}[{i}]: NaNs differ from eager"
        err = relative_error(torch.where(nan_a, 0, a), torch.where(nan_e, 0, e))
        assert err <= tol, f"{what}[{i}]: relative error {err:.3g} > {tol}"


def _clone_inputs(inputs, requires_grad: bool):
    result = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            x = x.detach().clone()
            if requires_grad and x.dtype.is_floating_point:
                x.requires_grad_(True)
        result.append(x)
    return result


def check_against_eager(fn, *inputs, tol: float = 1e-4, grads: bool = True, dynamic=None):
    """Run `fn` eagerly and compiled with tensorsmith on the same inputs; compare outputs and, when
    `grads`, the gradients of a random projection of the outputs w.r.t. every floating input and
    every parameter of `fn` (when it is a module)."""
    compiled = torch.compile(fn, backend="tensorsmith", dynamic=dynamic)
    eager_in, compiled_in = _clone_inputs(inputs, grads), _clone_inputs(inputs, grads)
    expected = fn(*eager_in)
    actual = compiled(*compiled_in)
    assert_close(actual, expected, tol, "output")
    if not grads:
        return actual
    outs = [t for t in _flatten(expected) if t.requires_grad]
    if not outs:
        return actual
    weights = [torch.randn_like(t) for t in outs]
    params = list(fn.parameters()) if isinstance(fn, torch.nn.Module) else []
    wrt_eager = [x for x in eager_in if isinstance(x, torch.Tensor) and x.requires_grad] + params
    wrt_compiled = [x for x in compiled_in if isinstance(x, torch.Tensor) and x.requires_grad] + params
    eager_grads = torch.autograd.grad(sum((w * t).sum() for w, t in zip(weights, outs)), wrt_eager,
                                      allow_unused=True)
    compiled_outs = [t for t in _flatten(actual) if t.requires_grad]
    compiled_grads = torch.autograd.grad(
        sum((w * t).sum() for w, t in zip(weights, compiled_outs)), wrt_compiled, allow_unused=True)
    for i, (a, e) in enumerate(zip(compiled_grads, eager_grads)):
        if e is None:
            assert a is None or not a.any(), f"gradient {i}: eager has none"
            continue
        assert_close(a, e, tol, f"gradient {i}")
    return actual
