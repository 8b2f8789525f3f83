"""Input guards, fuzzed (hypothesis): a compiled callable given tensors of another dtype, device,
rank or shape, zero-size, strided, expanded or non-finite tensors, or Python scalars, either answers
what eager answers or raises an error with a message; the process never crashes or hangs.

Two entry points: `torch.compile(..., backend="tensorsmith")` (what users call: Dynamo guards
recompile for new dtypes and shapes, and the recompiled graph must just work) and a compiled graph's
executor called directly (which must reject any argument unlike the one it was compiled for with an
InputError naming the argument and what was expected).
"""
from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import tensorsmith
from tensorsmith.errors import InputError, TensorsmithError
from tensorsmith.frontend.importer import import_graph
from tensorsmith.passes.pipeline import run_pipeline
from tensorsmith.compile.codegen import generate_code
from tensorsmith.runtime.executor import GraphExecutor

FUZZ = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
          torch.bool]


@st.composite
def tensors(draw, allow_meta: bool = True):
    """A tensor of random dtype, rank (0-3, zero sizes included) and layout, maybe with NaN/Inf,
    maybe on the meta device; or a Python scalar instead."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(st.integers(-3, 3), st.floats(-2, 2), st.none()))
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.lists(st.integers(0, 4), min_size=0, max_size=3))
    layout = draw(st.sampled_from(["contiguous", "transposed", "strided", "expanded"]))
    base_shape = list(shape)
    if layout == "strided" and shape:
        base_shape[-1] = shape[-1] * 2
    if layout == "expanded" and shape:
        base_shape[0] = 1
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = (torch.randn(base_shape, generator=generator) * 3).to(dtype)
    if dtype.is_floating_point and x.numel() and draw(st.booleans()):
        flat = x.view(-1)
        flat[draw(st.integers(0, x.numel() - 1))] = draw(st.sampled_from(
            [float("nan"), float("inf"), float("-inf")]))
    if layout == "transposed" and x.dim() >= 2:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, column-major
    elif layout == "strided" and shape:
        x = x[..., ::2]
    elif layout == "expanded" and shape:
        x = x.expand(shape)
    if allow_meta and draw(st.integers(0, 7)) == 0:
        x = x.to("meta")
    return x


def model(x, y):
    h = torch.tanh(x * 2.0 + y)
    return h.sum(-1), (h * y).exp()


def rows(x, y):
    p = torch.softmax(x + y, dim=-1)
    return p.amax(-1), p @ y.transpose(-1, -2)


def _eager(fn, args):
    try:
        return fn(*args), None
    except Exception as e:  # noqa: BLE001
        return None, e


def _close(got, expected):
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor)
        assert got.shape == expected.shape and got.dtype == expected.dtype and got.device == expected.device
        if expected.device.type != "meta":
            tol = 1e-2 if expected.dtype in (torch.float16, torch.bfloat16) else 1e-4
            torch.testing.assert_close(got, expected, rtol=tol, atol=tol, equal_nan=True)
        return
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        _close(g, e)


def _clear(error: BaseException):
    """A user-facing error with a message: ours, or PyTorch's (as eager raises)."""
    assert isinstance(error, (TensorsmithError, RuntimeError, TypeError, ValueError, IndexError)), \
        repr(error)
    assert str(error).strip(), repr(error)


@settings(FUZZ, max_examples=20)
@given(fn=st.sampled_from([model, rows]), x=tensors(), y=tensors())
def test_compiled_function_answers_as_eager_or_raises_clearly(fn, x, y):
    torch._dynamo.reset()  # each example compiles anew: no recompile limit reached
    expected, eager_error = _eager(fn, (x, y))
    compiled = torch.compile(fn, backend="tensorsmith")
    try:
        got = compiled(x, y)
    except Exception as e:  # noqa: BLE001
        _clear(e)
        assert eager_error is not None, f"eager answered, compiled raised {e!r}"
        event(f"both raised {type(e).__name__}")
        return
    assert eager_error is None, f"eager raised {eager_error!r}, compiled answered"
    _close(got, expected)
    event("same answer as eager")


@FUZZ
@given(x=tensors(allow_meta=False), y=tensors(allow_meta=False))
def test_with_check_numerics_non_finite_arguments_are_named(monkeypatch, x, y):
    torch._dynamo.reset()
    monkeypatch.setattr(tensorsmith.config, "check_numerics", "raise")
    expected, eager_error = _eager(model, (x, y))
    bad = [i for i, a in enumerate((x, y)) if isinstance(a, torch.Tensor) and a.is_floating_point()
           and a.numel() and not torch.isfinite(a).all()]
    try:
        got = torch.compile(model, backend="tensorsmith")(x, y)
    except InputError as e:
        assert bad and "must be finite" in str(e) and "argument" in str(e), (bad, str(e))
        return
    except Exception as e:  # noqa: BLE001
        _clear(e)
        assert eager_error is not None or bad, f"eager answered, compiled raised {e!r}"
        return
    assert not bad, "a non-finite argument was accepted with check_numerics='raise'"
    assert eager_error is None
    _close(got, expected)


@pytest.fixture(scope="module")
def executor():
    """The graph of `model` for f32[3,4] arguments, compiled to C++ and called directly."""
    gm = torch.fx.symbolic_trace(lambda x, y: (torch.ops.aten.mul.Tensor(x, y),
                                               torch.ops.aten.sum.dim_IntList(x, [1])))
    example = [torch.randn(3, 4), torch.randn(3, 4)]
    imported = import_graph(gm, example)
    imported.graph = run_pipeline(imported.graph, "optimize")
    return GraphExecutor(imported, [0, 1], generate_code(imported.graph))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(x=tensors(), y=tensors())
def test_compiled_graph_rejects_any_unlike_argument_by_name(executor, x, y):
    def fits(a):
        return (isinstance(a, torch.Tensor) and a.dtype == torch.float32 and a.device.type == "cpu"
                and tuple(a.shape) == (3, 4))

    if fits(x) and fits(y):  # any layout, any values: the right answer
        product, total = executor(x, y)
        torch.testing.assert_close(product, x * y, equal_nan=True)
        torch.testing.assert_close(total, x.sum(1), equal_nan=True)
        return
    with pytest.raises(InputError) as info:
        executor(x, y)
    position = 0 if not fits(x) else 1
    message = str(info.value)
    assert f"argument {position} (" in message, message
    assert "expected" in message or "must be a tensor f32[3,4]@cpu" in message, message


def test_one_compiled_function_called_with_changing_dtypes_shapes_ranks_and_layouts():
    """What a user sees when Dynamo's guards fail and it recompiles (or marks sizes dynamic): the
    new graph just works."""
    torch._dynamo.reset()
    compiled = torch.compile(rows, backend="tensorsmith")
    base = torch.randn(4, 8)
    calls = [
        (base, torch.randn(4, 8)),
        (torch.randn(6, 8), torch.randn(6, 8)),  # new size: Dynamo marks it dynamic
        (base.double(), torch.randn(4, 8, dtype=torch.float64)),  # new dtype
        (torch.randn(2, 3, 8), torch.randn(2, 3, 8)),  # new rank
        (torch.randn(4, 1).expand(4, 8), torch.randn(8, 4).t()),  # expanded, transposed
        (torch.randn(0, 8), torch.randn(0, 8)),  # zero-size
    ]
    for x, y in calls:
        _close(compiled(x, y), rows(x, y))
    with pytest.raises(RuntimeError):  # what eager raises (mismatched sizes), not a crash
        compiled(torch.randn(4, 8), torch.randn(4, 7))
