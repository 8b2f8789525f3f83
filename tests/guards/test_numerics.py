"""Numeric guards: NaN/Inf injected at a known op is reported there (op, graph, shape, source
line); NaN/Inf a model makes on purpose (-inf masks) is not."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
import torch.nn.functional as F

import tensorsmith
from tensorsmith.bench.models.small import tiny_nanogpt
from tensorsmith.codegen.cpp.emit import emit_kernel
from tensorsmith.codegen.index import Affine, Var
from tensorsmith.codegen.kernel import Kernel, Load, Op, Store
from tensorsmith.errors import (
    ExecutionError,
    InputError,
    NumericsError,
    NumericsWarning,
)
from tensorsmith.ir.types import F32


def line_of(marker: str) -> str:
    """'test_numerics.py:N' for the line of this file that contains `marker` (in a comment)."""
    with open(__file__) as f:
        for n, text in enumerate(f, 1):
            if f"# {marker}" in text:
                return f"test_numerics.py:{n}"
    raise AssertionError(marker)


def log_of_negative(x):
    y = x * 2.0 + 1.0
    z = torch.log(y - 10.0)  # LOG
    return z.sum(-1) + y.sum(-1)


def divide_by_zero(x, d):
    y = torch.tanh(x)
    q = y / d  # DIV
    return q * 3.0


def overflowing_exp_fp16(x):
    h = x.half() * 4.0
    e = torch.exp(h)  # EXP16
    return e.float().sum()


def sqrt_at_zero(x):
    return torch.sqrt(x).sum()  # SQRT


def assert_names(message: str, op: str, marker: str, kind: str):
    assert op in message, message
    assert line_of(marker) in message, message
    assert f"{kind} graph" in message, message


def test_log_of_a_negative_raises_naming_op_graph_shape_and_line(numerics):
    numerics("raise")
    compiled = torch.compile(log_of_negative, backend="tensorsmith")
    with pytest.raises(NumericsError) as info:
        compiled(torch.rand(4, 8))
    assert isinstance(info.value, ExecutionError)
    assert_names(str(info.value), "log", "LOG", "inference")
    assert "NaN" in str(info.value) and "[4, 8]" in str(info.value)
    assert info.value.op == "log" and info.value.shape == [4, 8] and info.value.kind == "inference"


def test_division_by_zero_in_a_fused_kernel(numerics):
    numerics("raise")
    compiled = torch.compile(divide_by_zero, backend="tensorsmith")
    d = torch.ones(3, 5)
    x = torch.randn(3, 5)
    torch.testing.assert_close(compiled(x, d), divide_by_zero(x, d))  # finite: no report
    d[1, 2] = 0.0
    with pytest.raises(NumericsError) as info:
        compiled(x, d)
    assert_names(str(info.value), "div", "DIV", "inference")
    assert "Inf" in str(info.value) or "NaN" in str(info.value)


def test_overflowing_exp_in_float16_is_caught_at_the_library_step(numerics):
    numerics("raise")
    compiled = torch.compile(overflowing_exp_fp16, backend="tensorsmith")
    x = torch.full((16,), 1.0)
    x[3] = 4.0  # exp(16) = 8.9e6 > 65504: Inf in float16
    with pytest.raises(NumericsError) as info:
        compiled(x)
    assert_names(str(info.value), "exp", "EXP16", "inference")
    assert "Inf" in str(info.value)


def test_backward_graph_fault_is_reported_as_backward(numerics):
    numerics("raise")
    compiled = torch.compile(sqrt_at_zero, backend="tensorsmith")
    x = torch.rand(6, 4) + 0.5
    compiled(x.clone().requires_grad_()).backward()  # all finite
    x[2, 1] = 0.0  # sqrt(0) is finite; its gradient 1 / (2 sqrt(0)) is Inf
    out = compiled(x.clone().requires_grad_())
    with pytest.raises(NumericsError) as info:
        out.backward()
    assert "backward graph" in str(info.value), str(info.value)
    assert line_of("SQRT") in str(info.value), str(info.value)


def test_forward_training_graph_fault(numerics):
    numerics("raise")
    w = torch.nn.Parameter(torch.rand(8))
    compiled = torch.compile(lambda x: log_of_negative(x * w), backend="tensorsmith")
    with pytest.raises(NumericsError) as info:
        compiled(torch.rand(4, 8))
    assert_names(str(info.value), "log", "LOG", "forward")


def test_warn_mode_warns_once_per_site_and_writes_an_incident(numerics, tmp_path, monkeypatch):
    numerics("warn")
    events = tmp_path / "events.jsonl"
    monkeypatch.setattr(tensorsmith.config, "events_path", str(events))
    compiled = torch.compile(log_of_negative, backend="tensorsmith")
    x = torch.rand(4, 8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled(x)
        compiled(x)
    torch.testing.assert_close(out, log_of_negative(x), equal_nan=True)  # the answer is unchanged
    ours = [w for w in caught if issubclass(w.category, NumericsWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert line_of("LOG") in str(ours[0].message)
    incidents = [json.loads(line) for line in events.read_text().splitlines()
                 if json.loads(line)["event"] == "incident"]
    assert len(incidents) == 1 and incidents[0]["op"] == "log", incidents
    assert incidents[0]["graph_kind"] == "inference" and incidents[0]["shape"] == [4, 8]


def test_interpreter_executor_checks_too(numerics, monkeypatch):
    numerics("raise")
    monkeypatch.setattr(tensorsmith.config, "executor", "interpreter")
    compiled = torch.compile(log_of_negative, backend="tensorsmith")
    with pytest.raises(NumericsError) as info:
        compiled(torch.rand(4, 8))
    assert_names(str(info.value), "log", "LOG", "inference")


def masked(x):
    scores = x.masked_fill(x < 0, float("-inf"))
    probs = F.softmax(scores, dim=-1)
    return scores * 2.0, probs, torch.full_like(x, float("inf")) + x


def test_deliberate_infinities_are_not_reported(numerics):
    numerics("raise")
    compiled = torch.compile(masked, backend="tensorsmith")
    x = torch.randn(4, 8)
    x[:, 0] = 1.0  # every row keeps one finite score
    for got, expected in zip(compiled(x), masked(x)):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("fuse_attention", [True, False])
def test_tiny_nanogpt_with_minus_inf_causal_mask_trains_without_reports(numerics, monkeypatch,
                                                                       fuse_attention):
    numerics("raise")
    monkeypatch.setattr(tensorsmith.config, "fuse_attention", fuse_attention)
    monkeypatch.setattr(tensorsmith.config, "fuse_attention_min_mb", 0)  # fuse even tiny attention
    model, (idx, targets) = tiny_nanogpt()
    compiled = torch.compile(model, backend="tensorsmith")
    loss = compiled(idx, targets)  # forward and backward graphs, all checks raising
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_nan_argument_is_an_input_error_naming_it(numerics):
    numerics("raise")
    compiled = torch.compile(divide_by_zero, backend="tensorsmith")
    x = torch.randn(3, 5)
    x[0, 0] = float("nan")
    with pytest.raises(InputError) as info:
        compiled(x, torch.ones(3, 5))
    message = str(info.value)
    assert "argument 0" in message and "NaN (1 of 15 values)" in message and "finite" in message


def test_checks_off_emit_no_check_and_on_keeps_the_store_loop_vectorized():
    i, o = Var("i0", 64), Var("o0", 4)
    index = Affine.of(i) + Affine.of(o) * 64
    value = Op("exp", (Load("in0", index, F32),), F32)
    kernel = Kernel("k", [o], [Store("out0", [i], index, value)], ["in0"], ["out0"])
    plain = emit_kernel(kernel, {"in0": F32, "out0": F32})
    checked = emit_kernel(kernel, {"in0": F32, "out0": F32}, check_numerics=True)
    assert "nonfinite" not in plain
    assert "#pragma omp simd reduction(|:nonfinite)" in checked
    assert "return error | (nonfinite ? 2 : 0);" in checked


def test_bench_variant_compiles_forward_and_backward_with_checks():
    from tensorsmith.bench import backends, command

    args = command.parser().parse_args(["--backends", "eager,tensorsmith", "--check-numerics"])
    assert command.settings_from(args).backends == ["eager", "tensorsmith", backends.CHECKED]
    assert tensorsmith.config.check_numerics == "off"
    compiled = torch.compile(sqrt_at_zero, backend=backends.CHECKED)
    x = torch.tensor([[0.0, 1.0]], requires_grad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled(x).backward()  # the backward was compiled with the forward, checks on
    ours = [str(w.message) for w in caught if issubclass(w.category, NumericsWarning)]
    assert len(ours) == 1 and "backward graph" in ours[0] and line_of("SQRT") in ours[0], ours
    assert tensorsmith.config.check_numerics == "off"


def two_faults(x, w):
    a = torch.log(x - 10.0)  # FIRST
    b = a.sum() + (x @ w).sum()
    return b, torch.reciprocal(x - x)  # SECOND


def test_the_first_fault_in_program_order_is_raised_and_warn_reports_each(numerics):
    numerics("raise")
    x, w = torch.rand(4, 8), torch.rand(8, 3)
    with pytest.raises(NumericsError) as info:
        torch.compile(two_faults, backend="tensorsmith")(x, w)
    assert line_of("FIRST") in str(info.value), str(info.value)
    torch._dynamo.reset()
    numerics("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.compile(two_faults, backend="tensorsmith")(x, w)
    reported = [str(w.message) for w in caught if issubclass(w.category, NumericsWarning)]
    assert any(line_of("FIRST") in m for m in reported), reported
    assert any(line_of("SECOND") in m for m in reported), reported


def test_warn_mode_nan_argument_warns_once_writes_an_incident_and_answers(numerics, tmp_path,
                                                                          monkeypatch):
    numerics("warn")
    events = tmp_path / "events.jsonl"
    monkeypatch.setattr(tensorsmith.config, "events_path", str(events))
    compiled = torch.compile(divide_by_zero, backend="tensorsmith")
    x, d = torch.randn(3, 5), torch.ones(3, 5)
    x[2, 2] = float("inf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compiled(x, d)
        compiled(x, d)
    torch.testing.assert_close(out, divide_by_zero(x, d), equal_nan=True)
    ours = [str(w.message) for w in caught if issubclass(w.category, NumericsWarning)]
    assert len(ours) == 1 and "argument 0" in ours[0] and "Inf (1 of 15 values)" in ours[0], ours
    kinds = [e.get("kind") for e in map(json.loads, events.read_text().splitlines())
             if e["event"] == "incident"]
    assert kinds.count("numerics_input") == 1, kinds  # once per argument, as the warning
    assert "numerics" not in kinds, kinds  # the Inf is carried along: no op is blamed
