"""Shared checks for pass tests: IR text in, IR text out, and the same numbers before and after."""
from __future__ import annotations

import copy

from ir.ir_builders import assert_same_tensors, random_inputs, text

from tensorsmith.ir import interpret, parse_graph, print_graph, verify


def check_rewrite(run, before: str, after: str):
    """`run` turns `before` into exactly `after`, and both compute the same on fresh random inputs."""
    graph = parse_graph(text(before))
    verify(graph)
    original = copy.deepcopy(graph)
    changed = run(graph)
    verify(graph)
    assert print_graph(graph) == text(after)
    assert changed == (text(before) != text(after))
    check_same_numbers(original, graph)


def check_same_numbers(original, rewritten):
    inputs = random_inputs(original)
    assert_same_tensors(interpret(rewritten, inputs), interpret(original, inputs))


def differential(run, graph):
    """On any graph: the pass keeps it valid and computing the same outputs."""
    verify(graph)
    original = copy.deepcopy(graph)
    run(graph)
    verify(graph)
    check_same_numbers(original, graph)
