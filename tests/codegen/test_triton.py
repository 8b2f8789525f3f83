"""Generated Triton kernels vs the reference interpreter, run on the CPU by Triton's interpreter
(TRITON_INTERPRET=1, set for this module's tests only). Shapes are small: the interpreter is slow."""
from __future__ import annotations

import pytest
import torch
from codegen_cases import CROSS_ENTROPY, EMBEDDING, ONE_HOT, SHIFTED, compare, targets
from codegen_cases import graph as _graph
from hypothesis import HealthCheck, given, settings
from ir.ir_builders import random_graphs

pytest.importorskip("triton")

import tensorsmith
from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.codegen.triton import blocks
from tensorsmith.passes.fuse import schedule
from tensorsmith.compile.codegen import generate_code
from tensorsmith.errors import IndexOutOfRange
from tensorsmith.runtime.cuda import TritonGraph


@pytest.fixture(autouse=True)
def _interpreted_triton(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(tensorsmith.config, "executor", "triton")
    yield


@pytest.fixture
def small_blocks(monkeypatch):
    """Loop over rows longer than 64 in chunks of 32: the looped kernels at interpreter-sized shapes."""
    monkeypatch.setattr(blocks, "PERSISTENT_MAX", 64)
    monkeypatch.setattr(blocks, "LOOPED_RBLOCK", 32)


def _compare(graph, inputs=None, tol=2e-5):
    compiled = compare(graph, inputs, tol)
    assert isinstance(compiled, TritonGraph)
    return compiled


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(max_nodes=6, allow_dead=False))
def test_random_graphs_match_the_interpreter(graph):
    _compare(graph)


def _softmax(rows: int, cols: int) -> str:
    return f"""\
        graph @softmax(%x: f32[{rows},{cols}]@cpu) {{
          %0 = reduce(%x) {{kind="max", dims=[1]}} : f32[{rows}]@cpu
          %1 = broadcast_in_dim(%0) {{shape=[{rows},{cols}], dims=[0]}} : f32[{rows},{cols}]@cpu
          %2 = sub(%x, %1) : f32[{rows},{cols}]@cpu
          %3 = exp(%2) : f32[{rows},{cols}]@cpu
          %4 = reduce(%3) {{kind="sum", dims=[1]}} : f32[{rows}]@cpu
          %5 = broadcast_in_dim(%4) {{shape=[{rows},{cols}], dims=[0]}} : f32[{rows},{cols}]@cpu
          %6 = div(%3, %5) : f32[{rows},{cols}]@cpu
          return %6
        }}
    """


@pytest.mark.parametrize("rows,cols", [(6, 50), (3, 150)], ids=["persistent", "looped"])
def test_softmax_rows_persistent_and_looped(rows, cols, small_blocks):
    graph = _graph(_softmax(rows, cols))
    (kernel,) = [s.kernel for s in schedule(graph).steps if isinstance(s, KernelStep)]
    assert [type(s).__name__ for s in kernel.stages] == ["Reduce", "Reduce", "Store"]
    assert blocks.choose(rows, cols, True, False).looped == (cols > 64)
    x = torch.randn(rows, cols) * 4
    x[0, 3] = float("nan")
    _compare(graph, [x])


def _logsumexp_parts(rows: int, cols: int) -> str:
    return f"""\
        graph @lse(%x: f32[{rows},{cols}]@cpu) {{
          %0 = reduce(%x) {{kind="max", dims=[1]}} : f32[{rows}]@cpu
          %1 = broadcast_in_dim(%0) {{shape=[{rows},{cols}], dims=[0]}} : f32[{rows},{cols}]@cpu
          %2 = sub(%x, %1) : f32[{rows},{cols}]@cpu
          %3 = exp(%2) : f32[{rows},{cols}]@cpu
          %4 = reduce(%3) {{kind="sum", dims=[1]}} : f32[{rows}]@cpu
          return %0, %4
        }}
    """


def test_looped_max_and_sum_of_exp_read_the_row_once(small_blocks):
    """The sum of exp(x - max) rides the max's loop (online softmax), with eager's special values:
    a max that grows chunk by chunk, rows that start with -inf, all -inf (NaN), NaN and +inf."""
    rows, cols = 7, 150
    x = torch.randn(rows, cols) * 4
    x[0] += torch.linspace(0, 60, cols)  # every chunk raises the max: the sum is rescaled each time
    x[1] -= torch.linspace(0, 60, cols)
    x[2, :70] = float("-inf")  # the first two chunks see only -inf
    x[3] = float("-inf")
    x[4, 90] = float("nan")
    x[5, 100] = float("inf")
    x[6, 149] = 80.0  # the max in the last, partial chunk
    compiled = _compare(_graph(_logsumexp_parts(rows, cols)), [x])
    (kernel,) = compiled.kernels
    assert kernel.source.count("for roff in range") == 1, kernel.source
    got = compiled([x])
    assert got[1][3].isnan() and got[1][4].isnan() and got[1][5].isnan()
    torch.testing.assert_close(got[1][:3].double(), torch.exp(x[:3].double() - got[0][:3, None].double()).sum(1),
                               rtol=1e-5, atol=0)


def test_a_row_value_is_computed_once_per_row_not_per_element():
    """x - m[row] and a per-row index check: the row's load and math run on [XBLOCK, 1] tiles."""
    graph = _graph("""\
        graph @rows(%x: f32[5,37]@cpu, %m: f32[5]@cpu) {
          %0 = exp(%m) : f32[5]@cpu
          %1 = broadcast_in_dim(%0) {shape=[5,37], dims=[0]} : f32[5,37]@cpu
          %2 = sub(%x, %1) : f32[5,37]@cpu
          return %2
        }
    """)
    compiled = _compare(graph)
    (kernel,) = compiled.kernels
    row_loads = [line for line in kernel.source.splitlines() if "tl.load(" in line and "zx +" in line]
    assert len(row_loads) == 1 and "dm.exp" in kernel.source, kernel.source
    exp_line = next(line for line in kernel.source.splitlines() if "dm.exp" in line)
    assert row_loads[0].split("=")[0].strip() in exp_line  # exp of the row's value, not a tile's


def test_layer_norm_is_multi_stage_and_multi_output():
    graph = _graph("""\
        graph @ln(%x: f32[5,37]@cpu, %w: f32[37]@cpu) {
          %0 = reduce(%x) {kind="sum", dims=[1]} : f32[5]@cpu
          %1 = constant() {value=0.02702702702702703, shape=[5], dtype=f32, device="cpu"} : f32[5]@cpu
          %2 = mul(%0, %1) : f32[5]@cpu
          %3 = broadcast_in_dim(%2) {shape=[5,37], dims=[0]} : f32[5,37]@cpu
          %4 = sub(%x, %3) : f32[5,37]@cpu
          %5 = mul(%4, %4) : f32[5,37]@cpu
          %6 = reduce(%5) {kind="sum", dims=[1]} : f32[5]@cpu
          %7 = rsqrt(%6) : f32[5]@cpu
          %8 = broadcast_in_dim(%7) {shape=[5,37], dims=[0]} : f32[5,37]@cpu
          %9 = broadcast_in_dim(%w) {shape=[5,37], dims=[1]} : f32[5,37]@cpu
          %10 = mul(%4, %8) : f32[5,37]@cpu
          %11 = mul(%10, %9) : f32[5,37]@cpu
          return %11, %2, %7
        }
    """)
    _compare(graph)


def test_reduction_over_leading_dims_and_full_reduction(small_blocks):
    graph = _graph("""\
        graph @bias_grad(%g: f32[9,7,40]@cpu) {
          %0 = reduce(%g) {kind="sum", dims=[0,1]} : f32[40]@cpu
          %1 = reduce(%g) {kind="min", dims=[0,1,2]} : f32[]@cpu
          %2 = reduce(%g) {kind="prod", dims=[0]} : f32[7,40]@cpu
          return %0, %1, %2
        }
    """)
    _compare(graph, tol=1e-4)


def test_column_reductions_over_many_rows_run_split_in_two_kernels():
    graph = _graph("""\
        graph @bias_grad(%g: f32[2,1024,12]@cpu, %h: f32[2,1024,12]@cpu) {
          %0 = mul(%g, %h) : f32[2,1024,12]@cpu
          %1 = reduce(%0) {kind="sum", dims=[0,1]} : f32[12]@cpu
          %2 = reduce(%g) {kind="max", dims=[0,1]} : f32[12]@cpu
          return %1, %2
        }
    """)
    compiled = _compare(graph, tol=1e-4)
    reductions = [s.kernel for s in compiled.schedule.steps if isinstance(s, KernelStep)]
    assert len(reductions) == 2, "partial sums and maxima in one kernel, their totals in a second"


@pytest.mark.parametrize("cols", [20, 150], ids=["persistent", "looped"])
def test_argmax_argmin_take_the_first_nan_or_extreme(cols, small_blocks):
    graph = _graph(f"""\
        graph @arg(%x: f32[4,{cols}]@cpu) {{
          %0 = argmax(%x) {{dim=1}} : i64[4]@cpu
          %1 = argmin(%x) {{dim=1}} : i64[4]@cpu
          return %0, %1
        }}
    """)
    x = torch.randint(-3, 4, (4, cols)).float()  # ties: the first index wins
    x[1, cols - 2] = float("nan")
    x[1, cols - 1] = float("nan")
    x[2, cols // 2] = 10.0
    _compare(graph, [x])


def test_bool_and_integer_ops_any_all_and_converts():
    graph = _graph("""\
        graph @logic(%x: f32[6,9]@cpu, %n: i32[6,9]@cpu) {
          %0 = constant() {value=0.0, shape=[6,9], dtype=f32, device="cpu"} : f32[6,9]@cpu
          %1 = compare(%x, %0) {dir="GT"} : bool[6,9]@cpu
          %2 = reduce(%1) {kind="any", dims=[1]} : bool[6]@cpu
          %3 = reduce(%1) {kind="all", dims=[1]} : bool[6]@cpu
          %4 = not(%1) : bool[6,9]@cpu
          %5 = convert(%4) {dtype=i64} : i64[6,9]@cpu
          %6 = reduce(%5) {kind="sum", dims=[1]} : i64[6]@cpu
          %7 = not(%n) : i32[6,9]@cpu
          %8 = xor(%7, %n) : i32[6,9]@cpu
          %9 = mul(%n, %n) : i32[6,9]@cpu
          %10 = max(%9, %8) : i32[6,9]@cpu
          %11 = convert(%x) {dtype=i8} : i8[6,9]@cpu
          %12 = sign(%x) : f32[6,9]@cpu
          %13 = abs(%n) : i32[6,9]@cpu
          return %2, %3, %6, %10, %11, %12, %13
        }
    """)
    x = torch.randn(6, 9) * 50
    x[0] = -1.0
    x[1] = 1.0
    _compare(graph, [x, torch.randint(-100, 100, (6, 9), dtype=torch.int32)])


def test_math_functions_and_nan_propagating_maximum():
    ops = ["exp", "log1p", "expm1", "sin", "cos", "tanh", "erf", "atan", "sinh", "asinh", "log2",
           "exp2", "floor", "ceil", "round", "trunc", "sigmoid", "rsqrt", "sqrt", "reciprocal"]
    body = "\n".join(f"          %{i + 1} = {op}(%a) : f32[3,11]@cpu" for i, op in enumerate(ops))
    n = len(ops)
    graph = _graph(f"""\
        graph @math(%x: f32[3,11]@cpu, %y: f32[3,11]@cpu) {{
          %0 = abs(%x) : f32[3,11]@cpu
          %a = add(%0, %y) : f32[3,11]@cpu
{body}
          %{n + 1} = max(%x, %y) : f32[3,11]@cpu
          %{n + 2} = remainder(%x, %y) : f32[3,11]@cpu
          %{n + 3} = pow(%0, %y) : f32[3,11]@cpu
          %{n + 4} = atan2(%x, %y) : f32[3,11]@cpu
          %{n + 5} = is_finite(%x) : bool[3,11]@cpu
          return {", ".join(f"%{i + 1}" for i in range(n + 5))}
        }}
    """)
    x, y = torch.randn(3, 11) * 3, torch.rand(3, 11) + 0.5
    x[0, 1], y[1, 2], x[2, 3] = float("nan"), float("nan"), float("inf")
    _compare(graph, [x, y], tol=1e-5)


def test_pad_and_concat_never_read_outside_and_floor_negative_offsets():
    _compare(_graph(SHIFTED))


def test_cross_entropy_and_one_hot_scatter_looped_over_long_rows(small_blocks):
    """Rows of 37 > 32 loop: the recomputed shifted logits and the fused one-hot scatter."""
    _compare(_graph(CROSS_ENTROPY), [torch.randn(6, 37), targets()])
    graph = _graph(ONE_HOT)
    _compare(graph, [targets(), torch.randn(6, 1), torch.randn(6, 37)])
    with pytest.raises(IndexOutOfRange, match="out of range"):
        generate_code(graph)([targets(out_of_range=True), torch.randn(6, 1), torch.randn(6, 37)])


def test_embedding_lookup_out_of_range_raises_instead_of_reading_outside():
    compiled = generate_code(_graph(EMBEDDING))
    w = torch.randn(10, 4)
    torch.testing.assert_close(compiled([w, torch.tensor([1, 9, 4])])[0], w[[1, 9, 4]] ** 2)
    for bad in ([1, 10, 4], [-1, 0, 0]):
        with pytest.raises(IndexOutOfRange, match="out of range"):
            compiled([w, torch.tensor(bad)])
    torch.testing.assert_close(compiled([w, torch.tensor([0, 2, 3])])[0], w[[0, 2, 3]] ** 2)


def test_identical_kernels_share_one_function():
    graph = _graph("""\
        graph @twice(%x: f32[4,8]@cpu, %w: f32[8,8]@cpu) {
          %0 = exp(%x) : f32[4,8]@cpu
          %1 = reduce(%0) {kind="sum", dims=[1]} : f32[4]@cpu
          %2 = dot(%x, %w) : f32[4,8]@cpu
          %3 = exp(%2) : f32[4,8]@cpu
          %4 = reduce(%3) {kind="sum", dims=[1]} : f32[4]@cpu
          return %1, %4
        }
    """)
    compiled = _compare(graph)
    names = [k.name for k in compiled.kernels]
    assert len(names) == 2 and names[0] == names[1]


def test_library_results_are_freed_after_their_last_reader():
    graph = _graph("""\
        graph @mlp(%x: f32[4,8]@cpu, %w: f32[8,8]@cpu) {
          %0 = dot(%x, %w) : f32[4,8]@cpu
          %1 = tanh(%0) : f32[4,8]@cpu
          %2 = dot(%1, %w) : f32[4,8]@cpu
          return %2
        }
    """)
    compiled = _compare(graph)
    first_matmul = compiled.schedule.steps[0].output
    assert f"del {first_matmul}" in compiled.source


@pytest.mark.parametrize("x,r,reduces,lanes", [(1, 1, False, False), (4096, 3072, False, False),
                                                (1, 5_000_000, False, False), (8192, 768, True, False),
                                                (96, 1024, True, False), (8192, 50304, True, False),
                                                (768, 8192, True, True), (3, 9, True, True)])
def test_block_heuristic_covers_the_index_space(x, r, reduces, lanes):
    b = blocks.choose(x, r, reduces, lanes)
    for size in (b.xblock, b.rblock):
        assert size & (size - 1) == 0, "Triton blocks are powers of two"
    assert b.grid[0] * b.xblock >= x
    if not reduces:
        assert b.grid[1] * b.rblock >= r and b.grid[1] <= blocks.MAX_GRID_Y
    else:
        assert b.looped or b.rblock >= r
        assert b.xblock * b.rblock <= blocks.TILE
    assert 2 <= b.num_warps <= 16


def test_graphs_pick_their_backend_by_device(monkeypatch):
    from tensorsmith.compile.backends import backend_for

    cuda = _graph("""\
        graph @g(%x: f32[4]@cuda:0) {
          %0 = exp(%x) : f32[4]@cuda:0
          return %0
        }
    """)
    cpu = _graph("""\
        graph @g(%x: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          return %0
        }
    """)
    assert backend_for(cuda) == "triton" and backend_for(cpu) == "triton"
    monkeypatch.setattr(tensorsmith.config, "executor", "cpp")
    assert backend_for(cuda) == "triton" and backend_for(cpu) == "cpp"
    monkeypatch.setattr(tensorsmith.config, "executor", "interpreter")
    assert backend_for(cuda) == "interpreter" and backend_for(cpu) == "interpreter"


def test_unchecked_indices_still_never_read_outside(monkeypatch):
    monkeypatch.setattr(tensorsmith.config, "check_indices", False)
    graph = _graph("""\
        graph @embed(%w: f32[10,4]@cpu, %ids: i64[3]@cpu) {
          %0 = take(%w, %ids) {dim=0} : f32[3,4]@cpu
          return %0
        }
    """)
    w = torch.randn(10, 4)
    out = generate_code(graph)([w, torch.tensor([3, 10_000, -5])])[0]
    torch.testing.assert_close(out, w[[3, 0, 0]])  # out-of-range ids read row 0, not outside


def test_empty_inner_dimension_still_stores_outer_values():
    # A kernel whose inner loop is empty (a zero-size output) still computes its outer-only
    # values; its empty inner stores write nothing (never outside the zero-size buffer).
    graph = _graph("""\
        graph @f(%x: f32[1]@cpu, %y: f32[3,0,2]@cpu) {
          %0 = reshape(%x) {shape=[]} : f32[]@cpu
          %1 = constant() {value=2.0, shape=[], dtype=f32, device="cpu"} : f32[]@cpu
          %2 = mul(%0, %1) : f32[]@cpu
          %3 = exp(%y) : f32[3,0,2]@cpu
          %4 = reduce(%y) {kind="sum", dims=[1]} : f32[3,2]@cpu
          return %2, %3, %4
        }
    """)
    _compare(graph)
