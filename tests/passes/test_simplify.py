from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from ir.ir_builders import random_graphs
from pass_cases import check_rewrite, differential

from tensorsmith.passes import dce, simplify


def run(graph):
    changed = simplify.run(graph)
    dce.run(graph)
    return changed


CASES = {
    "mul_by_one_and_sub_zero": ("""
        graph @f(%x: f32[3]@cpu) {
          %0 = constant() {value=1.0, shape=[3], dtype=f32, device="cpu"} : f32[3]@cpu
          %1 = mul(%x, %0) : f32[3]@cpu
          %2 = constant() {value=0.0, shape=[3], dtype=f32, device="cpu"} : f32[3]@cpu
          %3 = sub(%1, %2) : f32[3]@cpu
          %4 = exp(%3) : f32[3]@cpu
          return %4
        }
    """, """
        graph @f(%x: f32[3]@cpu) {
          %0 = exp(%x) : f32[3]@cpu
          return %0
        }
    """),
    "float_add_zero_is_kept": ("""
        graph @f(%x: f32[3]@cpu) {
          %0 = constant() {value=0.0, shape=[3], dtype=f32, device="cpu"} : f32[3]@cpu
          %1 = add(%x, %0) : f32[3]@cpu
          return %1
        }
    """, """
        graph @f(%x: f32[3]@cpu) {
          %0 = constant() {value=0.0, shape=[3], dtype=f32, device="cpu"} : f32[3]@cpu
          %1 = add(%x, %0) : f32[3]@cpu
          return %1
        }
    """),
    "double_transpose_and_reshape": ("""
        graph @f(%x: f32[2,3,4]@cpu) {
          %0 = transpose(%x) {perm=[2,0,1]} : f32[4,2,3]@cpu
          %1 = transpose(%0) {perm=[1,2,0]} : f32[2,3,4]@cpu
          %2 = reshape(%1) {shape=[6,4]} : f32[6,4]@cpu
          %3 = reshape(%2) {shape=[24]} : f32[24]@cpu
          return %3
        }
    """, """
        graph @f(%x: f32[2,3,4]@cpu) {
          %0 = reshape(%x) {shape=[24]} : f32[24]@cpu
          return %0
        }
    """),
    "round_trip_converts": ("""
        graph @f(%x: f32[5]@cpu, %i: i32[5]@cpu) {
          %0 = convert(%x) {dtype=f64} : f64[5]@cpu
          %1 = convert(%0) {dtype=f32} : f32[5]@cpu
          %2 = convert(%x) {dtype=i32} : i32[5]@cpu
          %3 = convert(%2) {dtype=f32} : f32[5]@cpu
          %4 = convert(%i) {dtype=i64} : i64[5]@cpu
          %5 = convert(%4) {dtype=i32} : i32[5]@cpu
          return %1, %3, %5
        }
    """, """
        graph @f(%x: f32[5]@cpu, %i: i32[5]@cpu) {
          %0 = convert(%x) {dtype=i32} : i32[5]@cpu
          %1 = convert(%0) {dtype=f32} : f32[5]@cpu
          return %x, %1, %i
        }
    """),
    "neg_neg_and_select_same": ("""
        graph @f(%x: f32[4]@cpu, %y: f32[4]@cpu) {
          %0 = neg(%x) : f32[4]@cpu
          %1 = neg(%0) : f32[4]@cpu
          %2 = compare(%x, %y) {dir="LT"} : bool[4]@cpu
          %3 = select(%2, %1, %1) : f32[4]@cpu
          return %3
        }
    """, """
        graph @f(%x: f32[4]@cpu, %y: f32[4]@cpu) {
          return %x
        }
    """),
}


@pytest.mark.parametrize("name", CASES)
def test_rewrites(name):
    check_rewrite(run, *CASES[name])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(random_graphs(max_nodes=10))
def test_random_graphs_keep_their_values(graph):
    differential(run, graph)
