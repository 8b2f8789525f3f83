"""The PyTorch call a library step makes, and the views of the outputs a graph returns, built once
for the generated wrappers (compiled.py on the CPU, cuda.py on CUDA), which call them on every run.

A step runs on every call of a graph, so what depends only on the node (its views, its ATen
arguments, which product routine its operand types take) is decided here once: the call itself
then costs about what the PyTorch op does.
"""
from __future__ import annotations

import dataclasses

import torch

from ..codegen.schedule import LibraryStep, Schedule
from ..errors import ExecutionError
from ..ir.interpret import Interpreter
from ..ir.sizes import is_symbolic
from ..kernels import attention_op
from . import cpu_matmul
from .in_place import IN_PLACE
from .matmul_orientation import matmul
from .numerics import NumericsGuard, all_finite


def library_call(step: LibraryStep, numerics: NumericsGuard | None = None, sizes: dict | None = None,
                 in_place: bool = False):
    """The PyTorch call for a library step: inputs seen through their views, a contiguous result
    that owns its memory, and errors that name the op and the model's source line. With numeric
    guards, a result that is not all finite goes to the guard. Matrix products run in the
    orientation measured faster (matmul_orientation.py). `sizes` (a dict the caller fills on each
    call) gives the values of symbolic sizes in the node's attributes and views. `in_place`: the
    step writes its first input and returns it (in_place.py)."""
    interpreter = Interpreter()
    if sizes is not None:
        interpreter.sizes = sizes
    node = step.node
    op = node.attrs["target"] if node.op == "fallback" else node.op
    viewed = [(i, interpreter.bind_views(chain)) for i, chain in enumerate(step.views) if chain]
    # A product's result is fresh memory (cuBLAS's, or the transposed orientation's copy); any other
    # op's may be a view of an input, which is checked on each call.
    fresh = node.op in ("dot", "addmm")
    compute = _computation(node, interpreter, in_place)

    def call(*args):
        try:
            inputs = args
            if viewed:
                inputs = list(args)
                for i, view in viewed:
                    inputs[i] = view(args[i])
            result = compute(*inputs)
        except ExecutionError:
            raise
        except Exception as e:
            raise ExecutionError(str(e).splitlines()[0] if str(e) else type(e).__name__, op,
                                 node.source) from e
        if numerics is not None and not all_finite(result):
            numerics.library(node, inputs, result)
        if not isinstance(result, torch.Tensor):
            return result  # a fallback's tuple, read by `get` steps
        if in_place:
            return result  # the parameter itself, written
        if fresh:
            return result.contiguous()
        # A view of an arena buffer would change when the arena is reused: copy it out.
        shared = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        if result.numel() and result.untyped_storage().data_ptr() in shared:
            return result.clone()
        return result.contiguous()
    return call


def views_bound_once(step: LibraryStep, index: int, fixed: dict[str, torch.Tensor]):
    """`step` with the views of its inputs in `fixed` (arena buffers of a graph with static sizes:
    the same tensor at the same place on every call) applied once, here: such a view is the same
    tensor on every call too, so the wrapper passes it ready-made and the call applies no view for
    it. Returns the step to bind, the wrapper's argument names, and the views to put in its
    namespace under those names. A chain that would copy (a reshape no view can express) stays
    per call."""
    names, views, bound = list(step.inputs), list(step.views) + [[]] * (len(step.inputs) - len(step.views)), {}
    for j, (name, chain) in enumerate(zip(step.inputs, views)):
        if not chain or name not in fixed:
            continue
        view = Interpreter().bind_views(chain)(fixed[name])
        if view.untyped_storage().data_ptr() != fixed[name].untyped_storage().data_ptr():
            continue
        names[j] = f"lib{index}_in{j}"
        bound[names[j]], views[j] = view, []
    return (dataclasses.replace(step, views=views) if bound else step), names, bound


def _computation(node, interpreter: Interpreter, in_place: bool = False):
    """`f(*inputs)` computing a library step's node: products to the routine their operand types
    take, attention to its computation (not through the dispatcher, attention_op.DIRECT), an
    in-place step through its op's in-place form, anything else through the interpreter's rule for
    its op."""
    if node.op in ("dot", "addmm") and not in_place:
        return _product(node)
    if node.op != "fallback":
        return lambda *inputs: interpreter.eval(node, list(inputs))
    table = IN_PLACE if in_place else attention_op.DIRECT
    fallback = interpreter.bind_fallback(node, table.get(node.attrs["target"]))
    return lambda *inputs: fallback(list(inputs))


def _product(node):
    """The routine for a product node: where its static operand types rule out both measured
    choices (a CPU product below cpu_matmul's size, or not float32), PyTorch's own; else the
    routine that chooses on each call's operands (matmul_orientation, cpu_matmul)."""
    *bias, a, b = [i.type for i in node.inputs]
    direct = a.device == "cpu" and not is_symbolic([a.shape, b.shape]) and not cpu_matmul.worth(a, b)
    if node.op == "dot":
        return torch.matmul if direct else matmul
    return torch.addmm if direct else cpu_matmul.addmm


def returned(schedule: Schedule, namespace: dict, sizes: dict) -> list[str]:
    """The wrapper's expressions for the graph's outputs: output i seen through its views calls
    `out_view{i}`, bound here into `namespace` (symbolic sizes read from `sizes` on each call)."""
    result = []
    for i, name in enumerate(schedule.outputs):
        if i in schedule.output_views:
            views = Interpreter()
            views.sizes = sizes
            namespace[f"out_view{i}"] = views.bind_views(schedule.output_views[i])
            name = f"out_view{i}({name})"
        result.append(name)
    return result
