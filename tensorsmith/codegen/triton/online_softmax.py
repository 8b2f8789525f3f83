"""One pass instead of two for a looped row max followed by the sum of exp(x - max).

Softmax, log-softmax and cross-entropy reduce a row to its max m, then sum exp(x - m). Looped over a
row too long to keep in registers (cross-entropy over a 50k vocabulary), that is two loops, each
reading the whole row. The online form (Milakov and Gimelshein, "Online normalizer calculation for
softmax") keeps, per lane, the running max and a sum scaled to it, and rescales the sum whenever the
max grows: the sum joins the max's loop and the row is read once.

This module only finds such pairs among a kernel's loop groups (emit.py's `_groups`); emit.py
writes the code. The sum's value must be exactly exp(v - m) with v the max's own value, so both see
the same elements. The result is the same sum in another order, with the special values eager gives:
a NaN or an infinite max makes the sum NaN, as exp(x - m) does elementwise.
"""
from __future__ import annotations

from dataclasses import replace

from ..kernel import Load, Local, Op, Reduce, Store


def is_online_sum(b, a: Reduce) -> bool:
    """Whether stage `b` sums exp(v - a) over the elements `a` took the max v of."""
    if not (isinstance(b, Reduce) and b.kind == "sum" and a.kind == "max" and a.dtype.is_float
            and b.inner == a.inner):
        return False
    exp = b.value
    if not (isinstance(exp, Op) and exp.name == "exp" and len(exp.args) == 1):
        return False
    sub = exp.args[0]
    return (isinstance(sub, Op) and sub.name == "sub" and sub.args[0] == a.value
            and isinstance(sub.args[1], Local) and sub.args[1].name == a.name)


def running_value(b: Reduce, running: Local):
    """The sum's value against the running max `running` instead of the row's final max."""
    exp = b.value
    sub = exp.args[0]
    return replace(exp, args=(replace(sub, args=(sub.args[0], running)),))


def _loads(expr, found: set) -> set:
    if isinstance(expr, Load):
        found.add(expr.buffer)
    elif isinstance(expr, Op):
        for arg in expr.args:
            _loads(arg, found)
    return found


def pair_online_sums(groups: list[list]) -> dict[str, Reduce]:
    """Moves, in place, each sum of exp(v - max) into the loop group of its max; returns
    {sum's name: its max}. Not where a store between the two writes a buffer the max reads."""
    pairs: dict[str, Reduce] = {}
    for i, group in enumerate(groups):
        for a in [s for s in group if isinstance(s, Reduce) and s.kind == "max" and s.inner]:
            read = _loads(a.value, set())
            for later in groups[i + 1:]:
                b = next((s for s in later if is_online_sum(s, a) and s.name not in pairs), None)
                if b is not None:
                    later.remove(b)
                    group.insert(group.index(a) + 1, b)
                    pairs[b.name] = a
                    break
                if any(isinstance(s, Store) and s.buffer in read for s in later):
                    break
    groups[:] = [g for g in groups if g]
    return pairs
