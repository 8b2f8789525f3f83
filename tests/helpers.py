"""The helpers model and op tests compare with eager through.

How error is measured: each output and gradient is computed three ways: compiled (float32), eager
(float32) and eager in float64 (the independent reference). For every tensor,
    relative error = max|compiled - ref64| / max|ref64|
must be <= tol (1e-4 by default), or, where eager float32 itself is that far off, within 4x eager's
own error against ref64. Where eager's error exceeds ref64 itself (a gradient that is zero in exact
arithmetic, such as an attention key's bias, and pure rounding noise in float32), the compiled
value must be noise of the same order: within 32x eager's error, since another summation order
alone moves such noise by several times.
"""
from __future__ import annotations

import contextlib

import torch


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    actual, expected = actual.detach().double(), expected.detach().double()
    if actual.numel() == 0:
        return 0.0
    scale = max(expected.abs().max().item(), 1e-30)
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


def _max_abs_diff(a, b) -> float:
    return (a.detach().double() - b.detach().double()).abs().max().item() if a.numel() else 0.0


def assert_close(actual, expected, tol: float, what: str = "output", reference=None):
    """`actual` (compiled) vs `expected` (eager, same dtype); with `reference` (float64 eager) the
    error is measured against it, as the module docstring says."""
    actual, expected = _flatten(actual), _flatten(expected)
    refs = _flatten(reference) if reference is not None else expected
    assert len(actual) == len(expected), f"{what}: {len(actual)} tensors vs {len(expected)}"
    for i, (a, e, r) in enumerate(zip(actual, expected, refs)):
        assert a.shape == e.shape, f"{what}[{i}]: shape {tuple(a.shape)} vs eager {tuple(e.shape)}"
        assert a.dtype == e.dtype, f"{what}[{i}]: dtype {a.dtype} vs eager {e.dtype}"
        if not a.dtype.is_floating_point:
            assert torch.equal(a, e), f"{what}[{i}]: differs from eager"
            continue
        nan_a, nan_e = torch.isnan(a), torch.isnan(e)
        assert torch.equal(nan_a, nan_e), f"{what}[{i}]: NaNs differ from eager"
        inf_a, inf_e = torch.isinf(a), torch.isinf(e)
        assert torch.equal(inf_a, inf_e) and torch.equal(a[inf_a], e[inf_e]), \
            f"{what}[{i}]: infinities differ from eager"
        special = nan_a | inf_a
        a, e, r = (torch.where(special, 0, t.detach().double()) for t in (a, e, r))
        scale = r.abs().max().item() if r.numel() else 0.0
        err = _max_abs_diff(a, r)
        eager_err = _max_abs_diff(e, r)
        allowed = max(tol * scale, (32 if eager_err > scale else 4) * eager_err)
        assert err <= allowed, (f"{what}[{i}]: relative error {err / max(scale, 1e-30):.3g} > {tol} "
                                f"(eager float32's own: {eager_err / max(scale, 1e-30):.3g})")


@contextlib.contextmanager
def _in_float64(module):
    """Temporarily run `module` in float64 (float32 -> float64 -> float32 is exact)."""
    if module is None:
        yield
        return
    dtypes = {}
    for t in [*module.parameters(), *module.buffers()]:
        if t.dtype == torch.float32:
            dtypes[t] = t.dtype
            t.data = t.data.double()
    try:
        yield
    finally:
        for t, dtype in dtypes.items():
            t.data = t.data.to(dtype)


def _clone_inputs(inputs, requires_grad: bool, float64: bool = False):
    result = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            x = x.detach().clone()
            if float64 and x.dtype == torch.float32:
                x = x.double()
            if requires_grad and x.dtype.is_floating_point:
                x.requires_grad_(True)
        result.append(x)
    return result


def _grads(fn, inputs, params, weights):
    """Outputs of fn, and the gradients of sum(weights * outputs) w.r.t. float inputs and params."""
    outputs = fn(*inputs)
    if weights is None:
        return outputs, None
    outs = [t for t in _flatten(outputs) if t.requires_grad]
    assert outs, "no output requires grad: pass grads=False"
    wrt = [x for x in inputs if isinstance(x, torch.Tensor) and x.requires_grad] + params
    total = sum((w.to(t.dtype) * t).sum() for w, t in zip(weights, outs))
    return outputs, torch.autograd.grad(total, wrt, allow_unused=True)


def check_against_eager(fn, *inputs, tol: float = 1e-4, grads: bool = True, dynamic=None,
                        module=None):
    """Run `fn` compiled with tensorsmith, eagerly, and eagerly in float64 on the same inputs and
    compare outputs and, when `grads`, the gradients of a random projection of the outputs w.r.t.
    every floating input and every parameter of `module` (by default `fn`, when it is a module)."""
    module = module if module is not None else (fn if isinstance(fn, torch.nn.Module) else None)
    params = list(module.parameters()) if module is not None else []
    expected = fn(*_clone_inputs(inputs, grads))
    weights = [torch.randn(t.shape) for t in _flatten(expected) if t.requires_grad] \
        if grads else None
    expected, eager_grads = _grads(fn, _clone_inputs(inputs, grads), params, weights)
    compiled = torch.compile(fn, backend="tensorsmith", dynamic=dynamic)
    actual, compiled_grads = _grads(compiled, _clone_inputs(inputs, grads), params, weights)
    reference, reference_grads = None, None
    if any(t.dtype == torch.float32 for t in _flatten(expected)):
        with _in_float64(module):
            reference, reference_grads = _grads(fn, _clone_inputs(inputs, grads, float64=True),
                                                params, weights)
    assert_close(actual, expected, tol, "output", reference)
    for i, (a, e) in enumerate(zip(compiled_grads or [], eager_grads or [])):
        if e is None:
            assert a is None or not a.any(), f"gradient {i}: eager has none"
            continue
        r = reference_grads[i] if reference_grads is not None else None
        assert_close(a, e, tol, f"gradient {i}", r)
    return actual


def check_training(model: torch.nn.Module, batches, loss_fn, steps: int = 3, tol: float = 1e-4,
                   lr: float = 1e-3):
    """Train a copy of `model` eagerly and a copy compiled with tensorsmith for `steps` AdamW steps
    on the same `batches`; the losses must agree step by step within `tol` (relative)."""
    import copy

    eager, compiled_model = copy.deepcopy(model), copy.deepcopy(model)
    compiled = torch.compile(compiled_model, backend="tensorsmith")
    losses = {}
    for name, net, module in (("eager", eager, eager), ("compiled", compiled, compiled_model)):
        opt = torch.optim.AdamW(module.parameters(), lr=lr)
        losses[name] = []
        for step in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net, batches[step % len(batches)])
            loss.backward()
            opt.step()
            losses[name].append(loss.item())
    for step, (c, e) in enumerate(zip(losses["compiled"], losses["eager"])):
        assert abs(c - e) <= tol * max(abs(e), 1e-6), (
            f"step {step}: compiled loss {c} vs eager {e}")
    return losses
