"""Text form of a schedule and its kernels (kernel IR), for TENSORSMITH_DUMP and TENSORSMITH_DEBUG=3.

    schedule @forward: 3 buffers, 2 steps
      params buf0, buf1
      buf0: f32[8,16]@cpu
      ...
      kernel k3f2a outer [x0<8] reads buf0 writes buf2
        r0 = sum over [r1<16] of exp(buf0[16*x0 + r1]) : f32
        store buf2[x0] = log(r0)
      library buf3 = dot(buf2, buf1 via transpose)
      return buf3

Read-only: one line per buffer, step and stage, index expressions in loop variables (`x` outer,
`r` inner), so two schedules can be compared with a diff. It does not parse back.
"""
from __future__ import annotations

from .index import Affine, FloorDiv, Indirect, Mod, Var
from .kernel import Const, IndexValue, Kernel, Load, Local, Op, Reduce, Store
from .schedule import KernelStep, LibraryStep, Schedule


def format_index(index: Affine) -> str:
    parts = [_term(atom, coef) for atom, coef in index.terms]
    if index.const or not parts:
        parts.append(str(index.const))
    return " + ".join(parts).replace("+ -", "- ")


def _term(atom, coef: int) -> str:
    text = _atom(atom)
    return text if coef == 1 else f"{coef}*{text}"


def _atom(atom) -> str:
    if isinstance(atom, Var):
        return atom.name
    if isinstance(atom, FloorDiv):
        return f"({format_index(atom.arg)})//{atom.divisor}"
    if isinstance(atom, Mod):
        return f"({format_index(atom.arg)})%{atom.divisor}"
    if isinstance(atom, Indirect):
        return f"index({format_expr(atom.value)} < {atom.extent})"
    return repr(atom)


def format_expr(expr) -> str:
    """A value expression: loads as `buf[index]`, ops as calls, locals by name."""
    if isinstance(expr, Load):
        return f"{expr.buffer}[{format_index(expr.index)}]"
    if isinstance(expr, Const):
        return repr(expr.value)
    if isinstance(expr, IndexValue):
        return f"iota({format_index(expr.index)})"
    if isinstance(expr, Local):
        return expr.name
    if isinstance(expr, Op):
        name = f"{expr.name}.{expr.dir}" if expr.dir else expr.name
        if expr.name == "convert":
            name = f"convert.{expr.dtype.name}"
        return f"{name}({', '.join(format_expr(a) for a in expr.args)})"
    return repr(expr)


def _loops(variables: list[Var]) -> str:
    return "[" + ", ".join(f"{v.name}<{v.extent}" for v in variables) + "]"


def print_kernel(kernel: Kernel) -> str:
    """One kernel: its parallel outer loops, what it reads and writes, then a line per stage."""
    lanes = " lanes" if kernel.lanes else ""
    lines = [f"kernel {kernel.name} outer {_loops(kernel.outer)}{lanes} reads "
             f"{', '.join(kernel.inputs) or '-'} writes {', '.join(kernel.outputs) or '-'}"]
    for stage in kernel.stages:
        if isinstance(stage, Reduce):
            lines.append(f"  {stage.name} = {stage.kind} over {_loops(stage.inner)} of "
                         f"{format_expr(stage.value)} : {stage.dtype.name}")
        elif isinstance(stage, Store):
            over = f" over {_loops(stage.inner)}" if stage.inner else ""
            lines.append(f"  store {stage.buffer}[{format_index(stage.index)}]{over} = "
                         f"{format_expr(stage.value)}")
        else:
            lines.append(f"  {stage!r}")
    return "\n".join(lines)


def _library(step: LibraryStep) -> str:
    node = step.node
    op = f"{node.op} {node.attrs['target']}" if node.op == "fallback" else node.op
    views = step.views or [[]] * len(step.inputs)
    args = [name + (" via " + ", ".join(v.op for v in chain) if chain else "")
            for name, chain in zip(step.inputs, views)]
    source = f"  # {node.source}" if node.source else ""
    return f"library {step.output} = {op}({', '.join(args)}){source}"


def print_schedule(schedule: Schedule) -> str:
    """The whole schedule: buffers with their types, then each step in order, then the outputs."""
    lines = [f"schedule @{schedule.graph.name}: {len(schedule.buffers)} buffers, "
             f"{len(schedule.steps)} steps",
             f"  params {', '.join(schedule.params) or '-'}"]
    lines += [f"  {name}: {buffer.type}" + (" constant" if name in schedule.constants else "")
              for name, buffer in schedule.buffers.items()]
    for step in schedule.steps:
        if isinstance(step, KernelStep):
            lines += ["  " + line for line in print_kernel(step.kernel).splitlines()]
        else:
            lines.append("  " + _library(step))
    outputs = [name + (" via " + ", ".join(v.op for v in schedule.output_views[i])
                       if schedule.output_views.get(i) else "")
               for i, name in enumerate(schedule.outputs)]
    lines.append(f"  return {', '.join(outputs)}")
    return "\n".join(lines) + "\n"
