"""What Dynamo did while a run went on: its graph breaks (read from its `graph_breaks` log, which
names the user's source line and the reason) and its frame compiles (its compilation metrics:
recompiles with the guard that failed, compile time)."""
from __future__ import annotations

import linecache
import logging
import re
from dataclasses import dataclass

import torch
import torch._dynamo.utils as dynamo_utils


@dataclass(frozen=True)
class GraphBreak:
    file: str
    line: int
    reason: str
    hint: str | None

    @property
    def where(self) -> str:
        code = linecache.getline(self.file, self.line).strip()
        return f"{self.file}:{self.line}" + (f" `{code}`" if code else "")


def _reason(text: str, record: logging.LogRecord) -> str:
    """The first line that says why, past Dynamo's preamble ("Encountered graph break when
    attempting to trace CALL ...")."""
    block = text.split("Graph Break Reason: ", 1)
    if len(block) == 2:
        lines = block[1].split("User code traceback:")[0].splitlines()
        lines = [ln.strip() for ln in lines if ln.strip()]
        specific = [ln for ln in lines if not ln.startswith("Encountered graph break")]
        if specific or lines:
            return (specific or lines)[0]
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        return (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text.strip().splitlines()[0]


def _parse(record: logging.LogRecord) -> GraphBreak | None:
    text = record.getMessage()
    at = re.search(r"in user code at (.+?):(\d+)", text)
    file, line = (at[1], at[2]) if at else (re.findall(r'File "(.+?)", line (\d+)', text) or
                                              [(None, None)])[-1]
    if file is None:
        return None
    hint = re.search(r"Hint: (.+)", text)
    return GraphBreak(file, int(line), _reason(text, record), hint[1].strip() if hint else None)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


class DynamoWatch:
    """A context: Dynamo's graph-break log lines and frame compiles from its start to its end."""

    def __init__(self):
        self._handler = _Collect()
        self._saved: list[tuple[logging.Logger, int, bool]] = []
        self._before: list = []  # held, so that no later metrics object reuses an id in it

    def __enter__(self):
        self._before = list(dynamo_utils.get_compilation_metrics())
        names = torch._logging._internal.log_registry.get_artifact_log_qnames()
        for name in sorted(n for n in names if n.endswith(".__graph_breaks")):
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.propagate))
            if not logger.isEnabledFor(logging.DEBUG):  # not asked for (TORCH_LOGS): not printed
                logger.propagate = False
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self._handler)
        return self

    def __exit__(self, *exc):
        for logger, level, propagate in self._saved:
            logger.removeHandler(self._handler)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()

    def graph_breaks(self) -> dict[GraphBreak, int]:
        """Each graph break (source line, reason) with how many times Dynamo met it."""
        found: dict[GraphBreak, int] = {}
        for record in self._handler.records:
            graph_break = _parse(record)
            if graph_break is not None:
                found[graph_break] = found.get(graph_break, 0) + 1
        return found

    def compiles(self) -> list:
        """Dynamo's compilation metrics of the frames compiled meanwhile (its last 64 at most)."""
        before = {id(m) for m in self._before}
        return [m for m in dynamo_utils.get_compilation_metrics() if id(m) not in before]
