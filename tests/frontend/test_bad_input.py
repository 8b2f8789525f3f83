"""Bad input reaches the user as a clear error naming the problem, never a bare crash."""
from __future__ import annotations

import pytest
import torch

import tensorsmith
from tensorsmith.errors import InputError, VerifyError
from tensorsmith import records
from tensorsmith.frontend.importer import import_graph
from tensorsmith.passes import pipeline
from tensorsmith.runtime.executor import GraphExecutor


class TwoLayer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = torch.nn.Parameter(torch.randn(6, 5))
        self.w2 = torch.nn.Parameter(torch.randn(5, 3))

    def forward(self, x):
        h = torch.tanh(x @ self.w1)
        return h @ self.w2  # the line a failing dot points at


def test_wrong_input_dtype_names_the_op_and_source_line():
    model = TwoLayer()
    compiled = torch.compile(model, backend="tensorsmith")
    compiled(torch.randn(4, 6))
    with pytest.raises(RuntimeError) as info:  # what eager raises too
        compiled(torch.randn(4, 6, dtype=torch.float64))
    message = str(info.value)
    assert "dtype" in message.lower(), message
    assert "test_bad_input.py" in message and "x @ self.w1" in message, message


def test_executor_rejects_arguments_unlike_the_compiled_ones():
    gm = torch.fx.symbolic_trace(lambda x, y: torch.ops.aten.add.Tensor(x, y))
    x, y = torch.randn(3, 4), torch.randn(3, 4)
    executor = GraphExecutor(import_graph(gm, [x, y]), [0, 1])
    torch.testing.assert_close(executor(x, y)[0], x + y)
    cases = [
        ((x, y.double()), "argument 1 (y) has dtype torch.float64 (expected torch.float32)"),
        ((x, torch.randn(3, 5)), "argument 1 (y) has shape [3, 5] (expected [3, 4])"),
        ((x, torch.randn(3, 4, device="meta")), "argument 1 (y) has device meta (expected cpu)"),
        ((5.0, y), "argument 0 (x) must be a tensor f32[3,4]@cpu, got float"),
    ]
    for args, expected in cases:
        with pytest.raises(InputError) as info:
            executor(*args)
        assert expected in str(info.value)


def _break_first_add(graph):
    """A deliberately broken pass: declares the first add's result with a wrong shape."""
    for node in graph.nodes:
        if node.op == "add":
            node.type = node.type.with_shape([s + 1 for s in node.type.shape])
            return True
    return False


def test_verifier_rejection_names_the_node_and_model_source_line(monkeypatch):
    monkeypatch.setitem(pipeline.PIPELINES, "optimize", [("broken", _break_first_add)])

    def model(x, y):
        return torch.sin(x) + y  # the line the broken node came from

    with pytest.raises(Exception) as info:
        torch.compile(model, backend="tensorsmith")(torch.randn(3), torch.randn(3))
    cause = info.value  # Dynamo wraps backend errors in BackendCompilerFailed
    while not isinstance(cause, VerifyError) and cause is not None:
        cause = getattr(cause, "inner_exception", None) or cause.__cause__
    assert isinstance(cause, VerifyError), repr(info.value)
    message = str(cause)
    assert "add: declared type f32[4]@cpu differs from inferred type f32[3]@cpu" in message
    assert "= add(" in message
    assert "test_bad_input.py" in message and "torch.sin(x) + y" in message


def test_non_strict_mode_runs_a_rejected_graph_through_aten_and_says_why(monkeypatch):
    monkeypatch.setitem(pipeline.PIPELINES, "optimize", [("broken", _break_first_add)])
    monkeypatch.setattr(tensorsmith.config, "strict", False)
    records.reset()
    x, y = torch.randn(3), torch.randn(3)
    out = torch.compile(lambda a, b: torch.sin(a) + b, backend="tensorsmith")(x, y)
    torch.testing.assert_close(out, torch.sin(x) + y)
    (record,) = records.RECORDS
    assert record.whole_graph_fallback and "VerifyError" in record.whole_graph_fallback
    assert "ran whole through ATen" in records.format_records(records.RECORDS)
