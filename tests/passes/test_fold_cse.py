from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from ir.ir_builders import random_graphs
from pass_cases import check_rewrite, differential

from tensorsmith.passes import cse, dce, fold


def run_fold(graph):
    changed = fold.run(graph)
    dce.run(graph)
    return changed


def run_cse(graph):
    changed = cse.run(graph)
    dce.run(graph)
    return changed


FOLD = {
    "scalar_math_and_broadcast": ("""
        graph @f(%x: f32[2,3]@cpu) {
          %0 = constant() {value=2.0, shape=[], dtype=f32, device="cpu"} : f32[]@cpu
          %1 = sqrt(%0) : f32[]@cpu
          %2 = broadcast_in_dim(%1) {shape=[2,3], dims=[]} : f32[2,3]@cpu
          %3 = mul(%x, %2) : f32[2,3]@cpu
          return %3
        }
    """, """
        graph @f(%x: f32[2,3]@cpu) {
          %0 = constant() {value=1.4142135381698608, shape=[2, 3], dtype=f32, device="cpu"} : f32[2,3]@cpu
          %1 = mul(%x, %0) : f32[2,3]@cpu
          return %1
        }
    """),
    "integer_division_by_zero_is_not_folded": ("""
        graph @f(%x: i64[2]@cpu) {
          %0 = constant() {value=1, shape=[2], dtype=i64, device="cpu"} : i64[2]@cpu
          %1 = constant() {value=0, shape=[2], dtype=i64, device="cpu"} : i64[2]@cpu
          %2 = div(%0, %1) : i64[2]@cpu
          %3 = add(%x, %2) : i64[2]@cpu
          return %3
        }
    """, None),
}


@pytest.mark.parametrize("name", FOLD)
def test_fold(name):
    before, after = FOLD[name]
    if after is None:  # unchanged; not checked numerically (it raises, as eager does)
        from ir.ir_builders import text
        from tensorsmith.ir import parse_graph, print_graph
        graph = parse_graph(text(before))
        assert not fold.run(graph) and print_graph(graph) == text(before)
        return
    check_rewrite(run_fold, before, after)


def test_cse_merges_equal_nodes_but_not_random_draws():
    check_rewrite(run_cse, """
        graph @f(%x: f32[3]@cpu) {
          %0 = exp(%x) : f32[3]@cpu
          %1 = exp(%x) : f32[3]@cpu
          %2 = reduce(%0) {kind="sum", dims=[0]} : f32[]@cpu
          %3 = reduce(%1) {dims=[0], kind="sum"} : f32[]@cpu
          %4 = add(%2, %3) : f32[]@cpu
          return %4
        }
    """, """
        graph @f(%x: f32[3]@cpu) {
          %0 = exp(%x) : f32[3]@cpu
          %1 = reduce(%0) {kind="sum", dims=[0]} : f32[]@cpu
          %2 = add(%1, %1) : f32[]@cpu
          return %2
        }
    """)
    from ir.ir_builders import text
    from tensorsmith.ir import parse_graph, print_graph
    draws = text("""
        graph @f() {
          %0 = random() {dist="uniform", shape=[3], dtype=f32, device="cpu"} : f32[3]@cpu
          %1 = random() {dist="uniform", shape=[3], dtype=f32, device="cpu"} : f32[3]@cpu
          %2 = sub(%0, %1) : f32[3]@cpu
          return %2
        }
    """)
    graph = parse_graph(draws)
    assert not cse.run(graph) and print_graph(graph) == draws


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(max_nodes=10))
def test_random_graphs_keep_their_values(graph):
    differential(run_fold, graph)
    differential(run_cse, graph)
