"""`tensorsmith.explain(model, *inputs)`: what Dynamo and tensorsmith did with a model, in words.

Lists graph breaks (with their reasons and source lines) and, for every graph tensorsmith compiled,
the ops that fell back to ATen with counts and source lines.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from . import records as compatibility


@dataclass
class Explanation:
    graph_count: int
    graph_breaks: list[tuple[str, str]]  # (reason, user source line)
    records: list[compatibility.GraphRecord]

    @property
    def fallbacks(self):
        """(ATen op, source line, reason) -> count."""
        return compatibility.fallback_summary(self.records)

    def __str__(self) -> str:
        lines = [f"tensorsmith explain: {self.graph_count} Dynamo graph(s), "
                 f"{len(self.graph_breaks)} graph break(s)"]
        for reason, where in self.graph_breaks:
            lines.append(f"  break at {where}: {reason}")
        lines.append(compatibility.format_records(self.records))
        return "\n".join(lines)


def _frame_text(frame) -> str:
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}"


def explain(model, *inputs, backward: bool | None = None) -> Explanation:
    """Compile `model` with tensorsmith on `inputs`, run it (and its backward when the output needs
    gradients, unless `backward` says otherwise), and report graph breaks and fallbacks."""
    torch._dynamo.reset()
    dynamo = torch._dynamo.explain(model)(*inputs)
    breaks = [(b.reason, _frame_text(b.user_stack[-1]) if b.user_stack else "<unknown>")
              for b in dynamo.break_reasons]
    torch._dynamo.reset()
    start = len(compatibility.RECORDS)
    compiled = torch.compile(model, backend="tensorsmith")
    out = compiled(*inputs)
    tensors = [t for t in (out if isinstance(out, (tuple, list)) else [out])
               if isinstance(t, torch.Tensor) and t.requires_grad]
    if tensors and backward is not False:
        sum(t.float().sum() for t in tensors).backward()
    return Explanation(dynamo.graph_count, breaks, compatibility.RECORDS[start:])
