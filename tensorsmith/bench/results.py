"""One result row per (model, mode, backend), with a status, so that a model or backend that fails
becomes a row in the table instead of an aborted run."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch

OK = "ok"
FAIL_TO_RUN = "fail_to_run"  # raised while compiling or running
FAIL_ACCURACY = "fail_accuracy"  # ran, but outputs or gradients are off the float64 reference
OOM = "oom"  # ran out of memory (torch.OutOfMemoryError, MemoryError, allocator messages)
UNKNOWN_MODEL = "unknown_model"
UNKNOWN_BACKEND = "unknown_backend"
UNAVAILABLE = "unavailable"  # a package the model needs is not installed
STATUSES = (OK, FAIL_TO_RUN, FAIL_ACCURACY, OOM, UNKNOWN_MODEL, UNKNOWN_BACKEND, UNAVAILABLE)


@dataclass
class Row:
    model: str
    mode: str  # "train" or "infer"
    backend: str
    status: str = OK
    error: str | None = None
    size: str | None = None
    summary: str | None = None  # the model's geometry and batch in words
    samples_s: list = field(default_factory=list)  # step times of the interleaved rounds
    median_s: float | None = None
    speedup: dict | None = None  # eager median / this median, with a bootstrap interval
    first_call_s: float | None = None  # in the benchmark process (compile included)
    compile: dict = field(default_factory=dict)  # cold_s, warm_s, ... from subprocess probes
    memory: dict = field(default_factory=dict)  # peak_bytes, kind ("rss" or "cuda"), ...
    accuracy: dict = field(default_factory=dict)  # max_rel_error, tolerance, passed, reference
    graphs: int | None = None  # graphs Dynamo handed the backend on the first call
    graph_breaks: int | None = None
    recompiles: int | None = None
    fallback_ops: int | None = None  # tensorsmith: ATen ops run as fallbacks
    fallback_graphs: int | None = None  # tensorsmith: graphs run whole through ATen
    fallbacks: list = field(default_factory=list)  # tensorsmith: "op x2 at file:line: why", ...
    precision: str = "fp32"  # "bf16": under bfloat16 autocast
    notes: list = field(default_factory=list)

    def fail(self, status: str, error) -> None:
        self.status, self.error = status, short_error(error)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Row":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def short_error(error, limit: int = 300) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "inner_exception", None) or exc.__cause__ or exc.__context__


_OOM_TEXT = ("out of memory", "can't allocate memory", "cannot allocate memory")


def classify(exc: BaseException) -> str:
    """`oom` if any exception in the chain (Dynamo wraps backend errors) is an out-of-memory one."""
    for e in _chain(exc):
        if isinstance(e, (torch.OutOfMemoryError, MemoryError)):
            return OOM
        if any(t in str(e).lower() for t in _OOM_TEXT):
            return OOM
    return FAIL_TO_RUN
