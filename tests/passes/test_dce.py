"""Dead code elimination: IR text in, IR text out; and differentially, on random graphs, against the
interpreter (same outputs on the same fresh random inputs before and after)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from ir.ir_builders import assert_same_tensors, random_graphs, random_inputs, text
from tensorsmith.ir import interpret, parse_graph, print_graph, verify
from tensorsmith.passes import dce



def run_dce(ir: str) -> tuple[str, bool]:
    graph = parse_graph(text(ir))
    verify(graph)
    changed = dce.run(graph)
    verify(graph)
    return print_graph(graph), changed


CASES = {
    "dead_leaf": ("""
        graph @main(%x: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = sin(%x) : f32[4]@cpu
          %2 = neg(%0) : f32[4]@cpu loc("model.py:3")
          return %2
        }
    """, """
        graph @main(%x: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = neg(%0) : f32[4]@cpu loc("model.py:3")
          return %1
        }
    """),
    "dead_chain_feeding_only_dead_nodes": ("""
        graph @main(%x: f32[4]@cpu, %y: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = mul(%0, %y) : f32[4]@cpu
          %2 = reduce(%1) {kind="sum", dims=[0]} : f32[]@cpu
          %3 = add(%x, %y) : f32[4]@cpu
          return %3
        }
    """, """
        graph @main(%x: f32[4]@cpu, %y: f32[4]@cpu) {
          %0 = add(%x, %y) : f32[4]@cpu
          return %0
        }
    """),
    "live_diamond_kept_dead_branch_dropped": ("""
        graph @main(%x: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = sin(%0) : f32[4]@cpu
          %2 = cos(%0) : f32[4]@cpu
          %3 = tanh(%0) : f32[4]@cpu
          %4 = add(%1, %2) : f32[4]@cpu
          return %4, %0, %4
        }
    """, """
        graph @main(%x: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = sin(%0) : f32[4]@cpu
          %2 = cos(%0) : f32[4]@cpu
          %3 = add(%1, %2) : f32[4]@cpu
          return %3, %0, %3
        }
    """),
    "unused_random_dropped_used_random_kept": ("""
        graph @main(%x: f32[4]@cpu) {
          %0 = random() {dist="normal", shape=[4], dtype=f32, device="cpu"} : f32[4]@cpu
          %1 = random() {dist="uniform", shape=[4], dtype=f32, device="cpu"} : f32[4]@cpu
          %2 = add(%x, %1) : f32[4]@cpu
          return %2
        }
    """, """
        graph @main(%x: f32[4]@cpu) {
          %0 = random() {dist="uniform", shape=[4], dtype=f32, device="cpu"} : f32[4]@cpu
          %1 = add(%x, %0) : f32[4]@cpu
          return %1
        }
    """),
    "tuple_fallback_kept_through_get_unused_get_dropped": ("""
        graph @main(%x: f32[2,3]@cpu) {
          %0 = fallback(%x) {target="aten.sort.default", args=[$0], kwargs={}} : (f32[2,3]@cpu, i64[2,3]@cpu)
          %1 = get(%0) {index=0} : f32[2,3]@cpu
          %2 = get(%0) {index=1} : i64[2,3]@cpu
          %3 = fallback(%x) {target="aten.sort.default", args=[$0], kwargs={}} : (f32[2,3]@cpu, i64[2,3]@cpu)
          %4 = get(%3) {index=1} : i64[2,3]@cpu
          return %2
        }
    """, """
        graph @main(%x: f32[2,3]@cpu) {
          %0 = fallback(%x) {target="aten.sort.default", args=[$0], kwargs={}} : (f32[2,3]@cpu, i64[2,3]@cpu)
          %1 = get(%0) {index=1} : i64[2,3]@cpu
          return %1
        }
    """),
    "unused_params_stay": ("""
        graph @main(%x: f32[4]@cpu, %unused: i64[2]@cpu) {
          %0 = neg(%unused) : i64[2]@cpu
          %1 = iota() {shape=[4], dim=0, dtype=f32, device="cpu"} : f32[4]@cpu
          %2 = constant() {value=2.0, shape=[4], dtype=f32, device="cpu"} : f32[4]@cpu
          %3 = mul(%1, %2) : f32[4]@cpu
          return %x
        }
    """, """
        graph @main(%x: f32[4]@cpu, %unused: i64[2]@cpu) {
          return %x
        }
    """),
    "no_outputs_everything_dead": ("""
        graph @main(%x: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = neg(%0) : f32[4]@cpu
          return
        }
    """, """
        graph @main(%x: f32[4]@cpu) {
          return
        }
    """),
    "node_used_twice_by_one_user": ("""
        graph @main(%x: f32[4]@cpu) {
          %0 = abs(%x) : f32[4]@cpu
          %1 = exp(%x) : f32[4]@cpu
          %2 = mul(%1, %1) : f32[4]@cpu
          %3 = fallback(%2, %1) {target="aten.cat.default", args=[[$0, $1]], kwargs={}} : f32[8]@cpu
          return %3
        }
    """, """
        graph @main(%x: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = mul(%0, %0) : f32[4]@cpu
          %2 = fallback(%1, %0) {target="aten.cat.default", args=[[$0, $1]], kwargs={}} : f32[8]@cpu
          return %2
        }
    """),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dce_text(name):
    before, after = CASES[name]
    out, changed = run_dce(before)
    assert out == text(after)
    assert changed
    again, changed_again = run_dce(out)
    assert again == out and not changed_again  # idempotent: nothing left to remove


def test_nothing_dead_is_unchanged():
    ir = """
        graph @main(%x: f32[4]@cpu, %y: f32[4]@cpu) {
          %0 = exp(%x) : f32[4]@cpu
          %1 = add(%0, %y) : f32[4]@cpu loc("m.py:2")
          %2 = compare(%1, %x) {dir="GT"} : bool[4]@cpu
          %3 = select(%2, %1, %x) : f32[4]@cpu
          return %3, %0
        }
    """
    out, changed = run_dce(ir)
    assert out == text(ir) and not changed


def test_dce_keeps_node_objects_and_order():
    graph = parse_graph(text(CASES["live_diamond_kept_dead_branch_dropped"][0]))
    nodes = list(graph.nodes)
    dce.run(graph)
    assert graph.nodes == [nodes[0], nodes[1], nodes[2], nodes[4]]
    assert graph.outputs == [nodes[4], nodes[0], nodes[4]]


@pytest.mark.parametrize("name", sorted(n for n in CASES if "random" not in n))  # random outputs vary
def test_dce_text_cases_interpret_identically(name):
    graph = parse_graph(text(CASES[name][0]))
    inputs = random_inputs(graph)
    expected = interpret(graph, inputs)
    dce.run(graph)
    assert_same_tensors(interpret(graph, inputs), expected)


def _live(graph):
    live, stack = set(), list(graph.outputs)
    while stack:
        node = stack.pop()
        if node not in live:
            live.add(node)
            stack.extend(node.inputs)
    return live


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=random_graphs(max_nodes=12))
def test_dce_on_random_graphs_is_exact(graph):
    verify(graph)
    params, outputs, live = list(graph.params), list(graph.outputs), _live(graph)
    expected_nodes, count = [n for n in graph.nodes if n in live], len(graph.nodes)
    inputs = random_inputs(graph)
    before = interpret(graph, [x.clone() for x in inputs])

    changed = dce.run(graph)

    verify(graph)
    assert changed == (len(expected_nodes) < count)
    assert graph.nodes == expected_nodes  # every live node kept, in order; every dead one dropped
    assert graph.params == params and graph.outputs == outputs
    assert_same_tensors(interpret(graph, [x.clone() for x in inputs]), before)
    assert not dce.run(graph)


def test_dce_on_printed_random_graph_text_matches_in_memory_dce():
    """DCE commutes with the text form: parse(print(g)) then DCE prints like DCE of g."""
    graph = parse_graph(text("""
        graph @main(%x: f32[3,4]@cpu) {
          %0 = transpose(%x) {perm=[1, 0]} : f32[4,3]@cpu
          %1 = reduce(%0) {kind="max", dims=[1]} : f32[4]@cpu
          %2 = reshape(%x) {shape=[12]} : f32[12]@cpu
          %3 = broadcast_in_dim(%1) {shape=[3, 4], dims=[1]} : f32[3,4]@cpu
          %4 = sub(%x, %3) : f32[3,4]@cpu
          return %4
        }
    """))
    reparsed = parse_graph(print_graph(graph))
    dce.run(graph)
    dce.run(reparsed)
    assert print_graph(graph) == print_graph(reparsed)
    assert "reshape" not in print_graph(graph) and "%3 = sub(%x, %2)" in print_graph(graph)
