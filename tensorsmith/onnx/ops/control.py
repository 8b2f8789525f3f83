"""Control-flow ONNX ops: If, Loop, Scan. Their bodies are subgraphs run by the interpreter.

A traced run unrolls them: a condition or trip count must be a constant (else `DataDependent`
runs the model eagerly, where it can be read), and a Scan's length is its input's static shape.
"""
from __future__ import annotations

import torch

from ...errors import OnnxUnsupportedError
from .registry import UNROLLED_ITERATIONS, DataDependent, ints, op, scalar, scope


def _like_sources(value: torch.Tensor, *sources) -> torch.Tensor:
    """`value`, marked constant when all `sources` are (so subgraphs may read it)."""
    current = scope()
    if all(map(current.is_constant, sources)):
        current.mark_constant(value)
    return value


def _stack(values: list, axis: int) -> torch.Tensor:
    return _like_sources(torch.stack(values, axis), *values)


@op("If")
def if_(node, cond):
    """The outputs of the branch `cond` picks."""
    branch = node.attr("then_branch" if scalar(cond, "If's condition") else "else_branch")
    return tuple(scope().run_subgraph(branch, {}, scope().env))


@op("Loop")
def loop(node, trip_count, cond, *carried):
    """Runs the body while the iteration number is below `trip_count` and the condition holds;
    returns the final loop-carried values, then each scan output stacked along a new axis 0."""
    body, outer, current = node.attr("body"), scope().env, scope()
    device = next((t.device for t in (trip_count, cond, *carried) if t is not None),
                  torch.device("cpu"))
    limit = scalar(trip_count, "Loop's trip count")
    if cond is None:
        cond = torch.tensor(True, device=device)
        current.mark_constant(cond)
    keep, state, scans, i, n_state = cond, list(carried), [], 0, len(carried)

    def step(i, keep, state):
        count = torch.tensor(i, dtype=torch.int64, device=device)
        current.mark_constant(count)
        bound = dict(zip(body.inputs, [count, keep, *state]))
        return current.run_subgraph(body, bound, outer)

    while (limit is None or i < limit) and scalar(keep, "Loop's condition"):
        if current.tracing and i >= UNROLLED_ITERATIONS:
            raise DataDependent(f"{node.where()}: more than {UNROLLED_ITERATIONS} iterations are "
                                "not unrolled into a traced graph")
        results = step(i, keep, state)
        keep, state = results[0], results[1:1 + n_state]
        scans.append(results[1 + n_state:])
        i += 1
    n_scan = len(body.outputs) - 1 - n_state
    if not scans and n_scan:
        # No iteration ran: one run of the body gives the scan outputs' shapes and dtypes.
        probe = step(0, keep, state)[1 + n_state:]
        return (*state, *(torch.empty((0, *t.shape), dtype=t.dtype, device=t.device)
                          for t in probe))
    return (*state, *(_stack(list(values), 0) for values in zip(*scans)))


@op("Scan")
def scan(node, *args):
    body, n_scan = node.attr("body"), node.attr("num_scan_inputs")
    if node.opset < 9:
        return _scan_batched(node, args[0], args[1:-n_scan], args[-n_scan:])
    states, xs = args[:-n_scan], args[-n_scan:]
    n_out = len(body.outputs) - len(states)
    return _scan(body, states, xs, node.attr("scan_input_axes", [0] * n_scan),
                 node.attr("scan_input_directions", [0] * n_scan),
                 node.attr("scan_output_axes", [0] * n_out),
                 node.attr("scan_output_directions", [0] * n_out))


def _scan(body, states, xs, in_axes, in_directions, out_axes, out_directions) -> tuple:
    """Runs the body once per slice of the scan inputs (along `in_axes`, backwards where a
    direction is 1); returns the final states, then the scan outputs stacked along `out_axes`
    (prepended where a direction is 1)."""
    outer, run = scope().env, scope().run_subgraph
    in_axes = [a % x.dim() for a, x in zip(in_axes, xs)]
    length = xs[0].shape[in_axes[0]]
    states, outputs = list(states), []
    for t in range(length):
        slices = [_like_sources(x.select(a, length - 1 - t if d else t), x)
                  for x, a, d in zip(xs, in_axes, in_directions)]
        results = run(body, dict(zip(body.inputs, [*states, *slices])), outer)
        states = results[:len(states)]
        outputs.append(results[len(states):])
    if not outputs and len(body.outputs) > len(states):
        raise OnnxUnsupportedError("a Scan over no slices has no shape for its scan outputs")
    stacked = [_stack(list(values)[::-1] if d else list(values), a % (values[0].dim() + 1))
               for values, a, d in zip(zip(*outputs), out_axes, out_directions)]
    return (*states, *stacked)


def _scan_batched(node, sequence_lens, states, xs) -> tuple:
    """Scan before opset 9: axis 0 of every input and output is a batch, scanned along axis 1."""
    length = xs[0].shape[1]
    if sequence_lens is not None and any(n != length for n in ints(sequence_lens)):
        raise OnnxUnsupportedError(f"{node.where()}: sequence_lens shorter than the sequence "
                                   "are not supported")
    n_scan = len(xs)
    directions = node.attr("directions", [0] * n_scan)
    n_out = len(node.attr("body").outputs) - len(states)
    per_batch = [_scan(node.attr("body"), [s[b] for s in states], [x[b] for x in xs],
                       [0] * n_scan, directions, [0] * n_out, [0] * n_out)
                 for b in range(xs[0].shape[0])]
    return tuple(_stack(list(values), 0) for values in zip(*per_batch))
