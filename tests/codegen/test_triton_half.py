"""float16/bfloat16 in generated Triton kernels vs eager PyTorch, run by Triton's CPU interpreter
(TRITON_INTERPRET=1 for this module's tests only).

The reference for "the same numbers as eager" is the IR interpreter, which runs each op as the
eager ATen op on the half tensors (CPU), and for fused chains a float64 evaluation of the same
graph. The kernels round every half result to its type (values.py), so single ops match eager to
the bit or within one ulp (math functions: float32 libraries may differ in the last float32 bit,
which can move a rounding), and chains stay within 1e-2 of float64.

Fusion admits half values only while Triton's code generation schedules a graph (codegen.exprs
.half_kernels): the C++ emitter has no half types.
"""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from codegen_cases import graph as _graph

pytest.importorskip("triton")

from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.codegen.triton import blocks
import tensorsmith
from tensorsmith import records
from tensorsmith.ir import interpret, verify
from tensorsmith.compile.codegen import generate_code
from tensorsmith.runtime.cuda import TritonGraph

HALF = {"bf16": torch.bfloat16, "f16": torch.float16}


pytestmark = pytest.mark.usefixtures("interpreted_triton")


@pytest.fixture
def small_blocks(monkeypatch):
    """Loop over rows longer than 64 in chunks of 32: the looped kernels at interpreter-sized shapes."""
    monkeypatch.setattr(blocks, "PERSISTENT_MAX", 64)
    monkeypatch.setattr(blocks, "LOOPED_RBLOCK", 32)


def _ordered(t: torch.Tensor) -> torch.Tensor:
    """A half tensor's bits as integers ordered like the values (one apart: one ulp apart)."""
    bits = t.view(torch.int16).int() & 0xFFFF
    magnitude = bits & 0x7FFF
    return torch.where(bits >= 0x8000, -magnitude, magnitude)


def ulps(actual: torch.Tensor, expected: torch.Tensor) -> int:
    """The most ulps between two half tensors; NaNs (and infinities) must be at the same places."""
    nan = torch.isnan(expected)
    assert torch.equal(torch.isnan(actual), nan), "NaNs differ"
    if not (~nan).any():
        return 0
    return int((_ordered(actual[~nan]) - _ordered(expected[~nan])).abs().max())


def _run(ir_graph, inputs):
    """The generated kernels' outputs, the eager (interpreter) outputs and the float64 ones; checks
    that every step of the schedule is a generated kernel."""
    verify(ir_graph)
    compiled = generate_code(ir_graph)
    assert isinstance(compiled, TritonGraph)
    assert all(isinstance(s, KernelStep) for s in compiled.schedule.steps), "a half op was not fused"
    actual = compiled([x.contiguous() for x in inputs])
    expected = interpret(ir_graph, inputs)
    reference = interpret(ir_graph, inputs, float64=True)
    for a, e in zip(actual, expected):
        assert a.shape == e.shape and a.dtype == e.dtype
    return actual, expected, reference


def _relative(actual, reference) -> float:
    a, r = actual.double(), reference.double()
    finite = torch.isfinite(r)
    return ((a - r)[finite].abs().max() / r[finite].abs().max().clamp_min(1e-30)).item()


# -- single ops: eager's numbers ----------------------------------------------------------------
_EXACT = ["add", "sub", "mul", "div", "max", "min", "neg", "abs", "sqrt", "floor", "remainder"]
_MATH = ["exp", "tanh", "erf", "sigmoid", "rsqrt", "log1p", "sin", "expm1", "atan", "pow"]


@pytest.mark.parametrize("h", ["bf16", "f16"])
def test_single_ops_give_eager_numbers(h):
    s = "[6,33]@cpu"
    unary = {"neg", "abs", "sqrt", "floor", "exp", "tanh", "erf", "sigmoid", "rsqrt", "log1p", "sin",
             "expm1", "atan"}
    lines = []
    for i, op in enumerate(_EXACT + _MATH):
        arg = "%a" if op in ("sqrt", "rsqrt", "log1p", "pow") else "%x"  # where it is defined
        args = arg if op in unary else f"{arg}, %y"
        lines.append(f"  %{i} = {op}({args}) : {h}{s}")
    n = len(lines)
    graph = _graph(f"graph @ops(%x: {h}{s}, %y: {h}{s}) {{\n  %a = abs(%x) : {h}{s}\n"
                   + "\n".join(lines) + f"\n  return {', '.join(f'%{i}' for i in range(n))}\n}}\n")
    dtype = HALF[h]
    x = (torch.randn(6, 33) * 3).to(dtype)
    y = (torch.rand(6, 33) + 0.5).to(dtype)
    x[0, :3] = torch.tensor([float("nan"), float("inf"), -float("inf")])
    y[1, 4] = float("nan")
    actual, expected, reference = _run(graph, [x, y])
    for op, a, e, r in zip(_EXACT + _MATH, actual, expected, reference):
        if op in _EXACT:
            assert ulps(a, e) == 0, f"{op}: {ulps(a, e)} ulps from eager"
        else:  # eager's own half erf is 1 ulp off the rounded exact value at some small x
            closest = min(ulps(a, e), ulps(a, r.to(dtype)))
            assert closest <= 1, f"{op}: {ulps(a, e)} ulps from eager, {ulps(a, r.to(dtype))} from float64"


@pytest.mark.parametrize("h", ["bf16", "f16"])
def test_fused_chain_rounds_at_each_op_like_eager(h):
    """add, mul, gelu (through erf), exp and tanh in one kernel: eager's numbers, and within 1e-2
    of float64."""
    s = f"{h}[8,40]@cpu"
    graph = _graph(f"""\
        graph @chain(%x: {s}, %y: {s}) {{
          %0 = add(%x, %y) : {s}
          %1 = mul(%0, %x) : {s}
          %c = constant() {{value=0.7071067811865476, shape=[8,40], dtype={h}, device="cpu"}} : {s}
          %h = constant() {{value=0.5, shape=[8,40], dtype={h}, device="cpu"}} : {s}
          %one = constant() {{value=1.0, shape=[8,40], dtype={h}, device="cpu"}} : {s}
          %2 = mul(%1, %c) : {s}
          %3 = erf(%2) : {s}
          %4 = add(%3, %one) : {s}
          %5 = mul(%1, %h) : {s}
          %6 = mul(%5, %4) : {s}
          %7 = tanh(%6) : {s}
          %8 = exp(%7) : {s}
          return %8, %6
        }}
    """)
    x, y = (torch.randn(8, 40).to(HALF[h]) for _ in range(2))
    actual, expected, reference = _run(graph, [x, y])
    for a, e, r in zip(actual, expected, reference):
        assert ulps(a, e) <= 1
        assert (a != e).float().mean() < 0.05, "rounding at each op should mostly match eager's bits"
        assert _relative(a, r) < 1e-2


# -- reductions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("cols", [50, 600], ids=["persistent", "looped"])
def test_half_sums_accumulate_in_float32(cols, small_blocks):
    """A sum of 600 ones is 600 in float32 (and bf16 holds 600), but stops at 256 when accumulated
    in bfloat16; max/argmax compare the values exactly."""
    graph = _graph(f"""\
        graph @sums(%x: bf16[3,{cols}]@cpu, %h: f16[3,{cols}]@cpu) {{
          %0 = reduce(%x) {{kind="sum", dims=[1]}} : bf16[3]@cpu
          %1 = reduce(%h) {{kind="sum", dims=[1]}} : f16[3]@cpu
          %2 = reduce(%x) {{kind="max", dims=[1]}} : bf16[3]@cpu
          %3 = argmax(%h) {{dim=1}} : i64[3]@cpu
          %4 = reduce(%x) {{kind="prod", dims=[1]}} : bf16[3]@cpu
          return %0, %1, %2, %3, %4
        }}
    """)
    x = torch.randn(3, cols).bfloat16()
    x[0] = 1.0
    x[2, 7] = float("nan")
    h = torch.randn(3, cols).half()
    actual, expected, reference = _run(graph, [x, h])
    assert actual[0][0].item() == cols
    assert ulps(actual[0], expected[0]) <= 1 and ulps(actual[1], expected[1]) <= 1
    assert torch.isnan(actual[2][2]) and torch.equal(actual[2][:2], expected[2][:2])
    assert torch.equal(actual[3], expected[3])
    # prod accumulates in float32 too (as ATen on CUDA; its CPU prod of bf16 rounds at each step)
    assert _relative(actual[4][:2], reference[4][:2]) < 1e-2


def _softmax(h: str, rows: int, cols: int) -> str:
    """Softmax of half rows as autocast's decomposition has it: upcast, float32 softmax, round."""
    s, f = f"{h}[{rows},{cols}]@cpu", f"f32[{rows},{cols}]@cpu"
    return f"""\
        graph @softmax(%x: {s}) {{
          %u = convert(%x) {{dtype=f32}} : {f}
          %0 = reduce(%u) {{kind="max", dims=[1]}} : f32[{rows}]@cpu
          %1 = broadcast_in_dim(%0) {{shape=[{rows},{cols}], dims=[0]}} : {f}
          %2 = sub(%u, %1) : {f}
          %3 = exp(%2) : {f}
          %4 = reduce(%3) {{kind="sum", dims=[1]}} : f32[{rows}]@cpu
          %5 = broadcast_in_dim(%4) {{shape=[{rows},{cols}], dims=[0]}} : {f}
          %6 = div(%3, %5) : {f}
          %7 = convert(%6) {{dtype={h}}} : {s}
          return %7
        }}
    """


@pytest.mark.parametrize("rows,cols", [(6, 50), (3, 150)], ids=["persistent", "looped"])
def test_softmax_of_bf16_rows(rows, cols, small_blocks):
    x = (torch.randn(rows, cols) * 4).bfloat16()
    x[0, 3] = float("nan")
    (a,), (e,), (r,) = _run(_graph(_softmax("bf16", rows, cols)), [x])
    assert ulps(a, e) <= 1 and _relative(a[1:], r[1:]) < 1e-2
    torch.testing.assert_close(a, torch.softmax(x, -1), rtol=1e-2, atol=1e-3, equal_nan=True)


def test_layer_norm_of_half_rows_in_float32():
    """Statistics in float32 (as ATen's layer norm of half inputs), a bf16 weight, a bf16 result."""
    graph = _graph("""\
        graph @ln(%x: bf16[5,37]@cpu, %w: bf16[37]@cpu) {
          %u = convert(%x) {dtype=f32} : f32[5,37]@cpu
          %0 = reduce(%u) {kind="sum", dims=[1]} : f32[5]@cpu
          %1 = constant() {value=0.02702702702702703, shape=[5], dtype=f32, device="cpu"} : f32[5]@cpu
          %2 = mul(%0, %1) : f32[5]@cpu
          %3 = broadcast_in_dim(%2) {shape=[5,37], dims=[0]} : f32[5,37]@cpu
          %4 = sub(%u, %3) : f32[5,37]@cpu
          %5 = mul(%4, %4) : f32[5,37]@cpu
          %6 = reduce(%5) {kind="sum", dims=[1]} : f32[5]@cpu
          %e = constant() {value=1e-05, shape=[5], dtype=f32, device="cpu"} : f32[5]@cpu
          %v = mul(%6, %1) : f32[5]@cpu
          %ve = add(%v, %e) : f32[5]@cpu
          %7 = rsqrt(%ve) : f32[5]@cpu
          %8 = broadcast_in_dim(%7) {shape=[5,37], dims=[0]} : f32[5,37]@cpu
          %9 = broadcast_in_dim(%w) {shape=[5,37], dims=[1]} : bf16[5,37]@cpu
          %10 = mul(%4, %8) : f32[5,37]@cpu
          %11 = convert(%10) {dtype=bf16} : bf16[5,37]@cpu
          %12 = mul(%11, %9) : bf16[5,37]@cpu
          return %12
        }
    """)
    x, w = (torch.randn(5, 37) * 3 + 1).bfloat16(), torch.randn(37).bfloat16()
    (a,), (e,), (r,) = _run(graph, [x, w])
    assert ulps(a, e) <= 1 and _relative(a, r) < 1e-2
    eager = (F.layer_norm(x.float(), (37,)).bfloat16() * w)
    # float32 statistics summed in another order may flip the bf16 rounding of the normalized value
    # by one ulp, which the bf16 multiply by w can carry to two
    assert ulps(a, eager) <= 2


# -- casts, promotion, constants, overflow ------------------------------------------------------
def test_explicit_casts_round_to_nearest_even():
    """f32 -> bf16 -> f32 inside a kernel rounds (not truncates) as eager's .to(bfloat16) does;
    float64 and integers reach bf16 through float32, as c10's conversions do."""
    graph = _graph("""\
        graph @casts(%x: f32[4,64]@cpu, %d: f64[4,64]@cpu, %n: i64[4,64]@cpu) {
          %0 = convert(%x) {dtype=bf16} : bf16[4,64]@cpu
          %1 = convert(%0) {dtype=f32} : f32[4,64]@cpu
          %c = constant() {value=3.0, shape=[4,64], dtype=f32, device="cpu"} : f32[4,64]@cpu
          %2 = mul(%1, %c) : f32[4,64]@cpu
          %3 = convert(%d) {dtype=bf16} : bf16[4,64]@cpu
          %4 = convert(%n) {dtype=bf16} : bf16[4,64]@cpu
          %5 = convert(%x) {dtype=f16} : f16[4,64]@cpu
          %6 = convert(%5) {dtype=bf16} : bf16[4,64]@cpu
          %7 = convert(%0) {dtype=i32} : i32[4,64]@cpu
          %8 = convert(%0) {dtype=bool} : bool[4,64]@cpu
          return %2, %3, %4, %6, %7, %8
        }
    """)
    x = torch.randn(4, 64) * 100
    x[0, :4] = torch.tensor([1.0 + 2**-8, 1.0 + 3 * 2**-8, -(1.0 + 2**-8 + 2**-20), 0.0])  # ties, above
    d = torch.randn(4, 64, dtype=torch.float64) * 1e3
    n = torch.randint(-2**40, 2**40, (4, 64))
    actual, expected, _ = _run(graph, [x, d, n])
    assert torch.equal(actual[0], x.bfloat16().float() * 3)
    assert actual[0][0, :3].tolist() == [3.0, 3 * (1.0 + 2**-6), -3 * (1.0 + 2**-7)]
    for a, e in zip(actual[1:], expected[1:]):
        assert torch.equal(a, e)


def test_mixed_bf16_and_float32_promote_like_eager():
    graph = _graph("""\
        graph @mixed(%x: bf16[7,9]@cpu, %y: f32[7,9]@cpu) {
          %0 = convert(%x) {dtype=f32} : f32[7,9]@cpu
          %1 = add(%0, %y) : f32[7,9]@cpu
          %2 = compare(%x, %x) {dir="EQ"} : bool[7,9]@cpu
          %3 = convert(%y) {dtype=bf16} : bf16[7,9]@cpu
          %4 = compare(%x, %3) {dir="GT"} : bool[7,9]@cpu
          %5 = select(%4, %x, %3) : bf16[7,9]@cpu
          %6 = is_finite(%x) : bool[7,9]@cpu
          return %1, %2, %4, %5, %6
        }
    """)
    x, y = torch.randn(7, 9).bfloat16(), torch.randn(7, 9)
    x[0, 0], x[1, 1] = float("nan"), float("inf")
    actual, expected, _ = _run(graph, [x, y])
    # eager's promotion: bf16 + f32 computes in f32
    torch.testing.assert_close(actual[0], x + y, rtol=0, atol=0, equal_nan=True)
    for a, e in zip(actual[1:], expected[1:]):
        assert torch.equal(a, e) or (a.dtype.is_floating_point and ulps(a, e) == 0)


def test_float16_overflows_to_inf_and_constants_round():
    graph = _graph("""\
        graph @overflow(%x: f16[4,16]@cpu) {
          %c = constant() {value=1000.0, shape=[4,16], dtype=f16, device="cpu"} : f16[4,16]@cpu
          %0 = mul(%x, %c) : f16[4,16]@cpu
          %1 = exp(%x) : f16[4,16]@cpu
          %2 = sub(%0, %0) : f16[4,16]@cpu
          %t = constant() {value=0.1, shape=[4,16], dtype=bf16, device="cpu"} : bf16[4,16]@cpu
          %y = convert(%x) {dtype=bf16} : bf16[4,16]@cpu
          %3 = add(%y, %t) : bf16[4,16]@cpu
          %4 = convert(%0) {dtype=f32} : f32[4,16]@cpu
          return %0, %1, %2, %3, %4
        }
    """)
    x = torch.randn(4, 16).half() * 40
    x[0, 0], x[0, 2] = 70.0, -70.0  # x * 1000 and exp(x) overflow float16
    x[0, 1] = float("nan")
    actual, expected, _ = _run(graph, [x])
    assert actual[0][0, 0] == float("inf") and actual[1][0, 0] == float("inf")
    assert actual[0][0, 2] == -float("inf") and torch.isnan(actual[2][0, 0])  # inf - inf
    assert actual[4][0, 0] == float("inf") and torch.isnan(actual[4][0, 1])
    assert torch.equal(actual[3][1:], x[1:].bfloat16() + torch.tensor(0.1, dtype=torch.bfloat16))
    for a, e in zip(actual, expected):
        assert ulps(a, e) <= 1 if a.dtype != torch.float32 else torch.equal(a.isnan(), e.isnan())


# -- end to end ---------------------------------------------------------------------------------
def _records_ran_kernels():
    assert records.RECORDS and not [r.graph_id for r in records.RECORDS if r.whole_graph_fallback]
    assert all(r.kernels for r in records.RECORDS), "a graph ran without generated kernels"


def test_compiled_bf16_function_matches_eager():
    def f(x, y):
        return torch.tanh(F.gelu(x * y + x)).exp() - y.float().sum(-1, keepdim=True).bfloat16()

    x, y = torch.randn(6, 40).bfloat16(), torch.randn(6, 40).bfloat16()
    actual = torch.compile(f, backend="tensorsmith")(x, y)
    expected = f(x, y)
    assert actual.dtype == torch.bfloat16 and ulps(actual, expected) <= 2
    _records_ran_kernels()


def test_mlp_under_bf16_autocast_forward_and_backward_match_eager(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "half_kernels", True)  # training graphs too
    # Smooth activations: a bf16 rounding that flips a ReLU's sign (rounding order differs from
    # eager's fused addmm) would move a gradient row by a few percent, in eager as much as here.
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64),
                                torch.nn.GELU(), torch.nn.Linear(64, 10))
    x, y = torch.randn(16, 32), torch.randint(0, 10, (16,))

    def step(fn, dtype=torch.bfloat16):
        with torch.autocast("cpu", dtype=dtype, enabled=dtype == torch.bfloat16):
            out = fn(x.to(torch.float64 if dtype == torch.float64 else x.dtype))
            loss = F.cross_entropy(out, y)
        return [out, loss, *torch.autograd.grad(loss, list(fn.parameters() if dtype == torch.float64
                                                            else model.parameters()))]

    compiled = step(torch.compile(model, backend="tensorsmith"))
    eager = step(model)
    exact = step(copy.deepcopy(model).double(), torch.float64)
    for c, e, r in zip(compiled, eager, exact):
        assert c.dtype == e.dtype
        # As close to float64 as eager's bf16 is (whole-tensor errors).
        ours, eagers = (((t.double() - r).norm() / r.norm()).item() for t in (c, e))
        assert ours <= 2 * eagers + 5e-3, (ours, eagers)
    _records_ran_kernels()
    assert sum(r.library_calls for r in records.RECORDS) <= 12  # the matmuls, no op-by-op fallback


@pytest.mark.parametrize("setting, forward, inference", [("inference", False, True), (True, True, True),
                                                          (False, False, False)])
def test_half_kernels_setting_decides_per_kind_of_graph(setting, forward, inference, monkeypatch):
    """"inference" keeps half values out of training graphs' kernels (op by op); True (the default)
    admits them in every graph."""
    from tensorsmith.compile import triton as triton_backend
    monkeypatch.setattr(tensorsmith.config, "half_kernels", setting)
    text = """\
        graph @{name}(%x: bf16[4,8]@cpu) {{
          %0 = exp(%x) : bf16[4,8]@cpu
          %1 = mul(%0, %x) : bf16[4,8]@cpu
          return %1
        }}"""
    for name, fused in (("forward", forward), ("backward", forward), ("inference", inference)):
        plan = triton_backend.schedule(_graph(text.format(name=name)))
        kernels = [s for s in plan.steps if isinstance(s, KernelStep)]
        assert bool(kernels) == fused, (name, setting, plan.steps)
