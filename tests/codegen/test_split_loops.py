"""Inner loops split at a divisor (codegen/cpp/split_loops.py): which stages split, and the generated
C++ of split stages against the reference interpreter."""
from __future__ import annotations

import pytest
from codegen_cases import compare, graph

from tensorsmith.codegen.cpp.split_loops import split_inner_loops
from tensorsmith.codegen.index import Affine, FloorDiv, Mod
from tensorsmith.codegen.kernel import IndexValue, Load, Op, Store
from tensorsmith.codegen.schedule import KernelStep
from tensorsmith.passes.fuse import schedule


def _stores(ir_graph):
    """Each Store stage of the graph's kernels, before and after the split."""
    kernels = [s.kernel for s in schedule(ir_graph).steps if isinstance(s, KernelStep)]
    return [(old, new) for k in kernels
            for old, new in zip(k.stages, split_inner_loops(k).stages) if isinstance(old, Store)]


def _divisions_of(var_name: str, store: Store) -> list:
    """The floor-divs and mods whose argument reads the loop variable `var_name`."""
    found = []

    def walk_index(index: Affine):
        for atom, _ in index.terms:
            if isinstance(atom, (FloorDiv, Mod)):
                if any(getattr(a, "name", None) == var_name for a, _ in atom.arg.terms):
                    found.append(atom)
                walk_index(atom.arg)

    def walk(expr):
        if isinstance(expr, Op):
            for a in expr.args:
                walk(a)
        elif isinstance(expr, (Load, IndexValue)):
            walk_index(expr.index)

    walk_index(store.index)
    walk(store.value)
    return found


def _heads_concat(batch: int, heads: int, length: int, dim: int) -> str:
    """The gradient of q, k and v split from one projection: three (B, H, L, D) gradients, each
    transposed back to (B, L, H*D), concatenated along the last dimension."""
    width = heads * dim
    lines = []
    for n, name in enumerate("qkv"):
        lines.append(f"%t{n} = transpose(%{name}) {{perm=[0,2,1,3]}} : f32[{batch},{length},{heads},{dim}]@cpu")
        lines.append(f"%r{n} = reshape(%t{n}) {{shape=[{batch},{length},{width}]}} : "
                     f"f32[{batch},{length},{width}]@cpu")
    params = ", ".join(f"%{n}: f32[{batch},{heads},{length},{dim}]@cpu" for n in "qkv")
    body = "\n      ".join(lines)
    return f"""\
    graph @heads_concat({params}) {{
      {body}
      %c = concat(%r0, %r1, %r2) {{dim=2}} : f32[{batch},{length},{3 * width}]@cpu
      return %c
    }}
"""


@pytest.mark.parametrize("heads, dim", [(4, 16), (3, 8), (2, 24)])
def test_a_concatenation_of_transposed_heads_loops_over_runs_of_one_head(heads, dim):
    ir_graph = graph(_heads_concat(2, heads, 5, dim))
    ((old, new),) = _stores(ir_graph)
    assert _divisions_of(old.inner[0].name, old), "the unsplit loop divides its index"
    high, low = new.inner
    assert (high.extent, low.extent) == (3 * heads, dim)
    assert not _divisions_of(low.name, new)
    compare(ir_graph)


def test_a_pad_along_the_last_dimension_splits_at_its_edges():
    ir_graph = graph("""\
        graph @pad(%x: f32[3,16]@cpu) {
          %0 = pad(%x) {low=[0,8], high=[0,24], value=0.5} : f32[3,48]@cpu
          return %0
        }
    """)
    ((old, new),) = _stores(ir_graph)
    assert [v.extent for v in new.inner] == [6, 8]
    compare(ir_graph)


@pytest.mark.parametrize("sizes", [(5, 11), (12, 4, 7), (3, 8)])
def test_a_concatenation_with_edges_inside_a_vector_keeps_its_loop(sizes):
    pieces = ", ".join(f"%x{i}: f32[2,{n}]@cpu" for i, n in enumerate(sizes))
    ir_graph = graph(f"""\
        graph @concat({pieces}) {{
          %0 = concat({', '.join(f'%x{i}' for i in range(len(sizes)))}) {{dim=1}} : f32[2,{sum(sizes)}]@cpu
          %1 = mul(%0, %0) : f32[2,{sum(sizes)}]@cpu
          return %1
        }}
    """)
    ((old, new),) = _stores(ir_graph)
    assert new is old
    compare(ir_graph)


def test_a_concatenation_with_a_negative_offset_reads_each_piece_in_runs():
    """The second piece starts at i = 32: its rows' floor-div by 16 becomes a - 2. The reshape of a
    transpose after it divides by 4, less than a vector: that loop stays as it was."""
    ir_graph = graph("""\
        graph @offset(%a: f32[4,2,16]@cpu, %b: f32[4,3,16]@cpu) {
          %0 = reshape(%a) {shape=[4,32]} : f32[4,32]@cpu
          %1 = reshape(%b) {shape=[4,48]} : f32[4,48]@cpu
          %2 = concat(%0, %1) {dim=1} : f32[4,80]@cpu
          %3 = transpose(%2) {perm=[1,0]} : f32[80,4]@cpu
          %4 = reshape(%3) {shape=[320]} : f32[320]@cpu
          %5 = reshape(%4) {shape=[4,80]} : f32[4,80]@cpu
          %6 = exp(%5) : f32[4,80]@cpu
          return %2, %6
        }
    """)
    (concat_old, concat), (scrambled_old, scrambled) = _stores(ir_graph)
    assert [v.extent for v in concat.inner] == [5, 16]
    assert _divisions_of(concat_old.inner[0].name, concat_old)
    assert not _divisions_of(concat.inner[1].name, concat)
    assert scrambled is scrambled_old
    compare(ir_graph)
