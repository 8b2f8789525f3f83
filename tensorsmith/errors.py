"""Every error tensorsmith raises to a user, in one place.

Each names what went wrong, the IR node or argument involved, and the user's source line when known.
"""
from __future__ import annotations


class TensorsmithError(Exception):
    """Base of all tensorsmith errors."""


class TypeInferenceError(TensorsmithError):
    """An op was applied to operands or attributes its shape rule does not accept."""


class VerifyError(TensorsmithError):
    """A graph is malformed; the message names the node and its source line."""

    def __init__(self, message: str, node=None, node_text: str | None = None):
        self.node = node
        where = ""
        if node_text:
            where += f"\n  at node: {node_text}"
        source = getattr(node, "source", None)
        if source:
            where += f"\n  from model source: {source}"
        super().__init__(message + where)


class ParseError(TensorsmithError):
    """IR text that does not parse; the message gives the line and column."""

    def __init__(self, message: str, line: int, column: int, text: str):
        super().__init__(f"line {line}, column {column}: {message}\n  {text}\n  {' ' * (column - 1)}^")


class InputError(TensorsmithError, TypeError):
    """A compiled callable was called with an argument unlike the one it was compiled for."""


class ExecutionError(TensorsmithError, RuntimeError):
    """An op failed while a compiled graph ran; the message names the op and the source line."""

    def __init__(self, message: str, op: str, source: str | None):
        where = f" at {source}" if source else ""
        super().__init__(f"{op} failed{where}: {message}")


class NumericsError(ExecutionError):
    """A compiled graph made NaN or Inf from finite values (`config.check_numerics = "raise"`); the
    message names the op, forward or backward graph, the value's shape and the model's source line."""

    def __init__(self, message: str, op: str, source: str | None, kind: str | None = None,
                 shape: list | None = None):
        self.op, self.source, self.kind, self.shape = op, source, kind, shape
        super().__init__(message, op, source)


class IndexOutOfRange(ExecutionError, IndexError):
    """A kernel read an index (take/gather/embedding) outside its dimension, as eager would reject."""


class CacheError(TensorsmithError):
    """The cache directory is not safe to load code from."""


class BuildError(TensorsmithError):
    """The system compiler rejected generated code (a compiler bug: the source is kept)."""


class FlashKernelError(TensorsmithError):
    """The C++ attention kernel could not run (inputs it does not take, or out of memory)."""


class FallbackWarning(UserWarning):
    """A graph runs through ATen as traced, without tensorsmith's kernels (slower, same numbers);
    given once per kind of reason, so that a user does not lose the speed without being told."""


class AlarmWarning(UserWarning):
    """A live alarm (monitor/): a recompile storm, shape churn, a drifting step time, growing
    memory or a numerics incident, with its effect and fix; given once per kind and graph."""


class MemoryBudgetWarning(ResourceWarning):
    """A training step that cannot fit config.memory_budget even recomputing all it can."""


class NumericsWarning(RuntimeWarning):
    """The warning `config.check_numerics = "warn"` gives, once per op and source line."""


class UnsupportedError(TensorsmithError):
    """The importer cannot express something in the IR; the caller falls back to ATen."""


class GraphUnsupportedError(UnsupportedError):
    """Not even a fallback node would be exact (the op depends on eager memory layout): the whole
    graph runs through ATen as traced."""


class OnnxModelError(TensorsmithError, ValueError):
    """An ONNX model file that is malformed or unsafe to load: a broken protobuf, external data
    outside the model's folder, an absurd shape or size. Names the file and what is wrong."""


class OnnxUnsupportedError(UnsupportedError):
    """An ONNX node tensorsmith cannot run: names the op type, the node's name and why."""


def is_triton_compile_error(e: BaseException) -> bool:
    """Whether `e` came from Triton compiling a kernel (not from running one): where code we
    generated or wrote meets a Triton that rejects it, the caller runs something slower instead."""
    module = type(e).__module__ or ""
    return module.startswith("triton") or "CompilationError" in type(e).__name__
