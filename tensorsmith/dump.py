"""`TENSORSMITH_DUMP=dir` (config.dump_dir): every stage of every graph's compile as a text file.

One graph's files are numbered in the order its stages ran: `g003_forward.00_import.tsir`, one
`.tsir` per pass (IR text that parses back), `.NN_schedule.txt` (kernel IR and library calls over
buffers), `.NN_kernels.cpp` or `.NN_kernels.py` (the generated source). A shape specialization
of a graph writes its stages again, numbered on.
"""
from __future__ import annotations

import os
from typing import Callable

from . import config


class StageDump:
    """Numbers and writes the stages of one graph's compile; does nothing unless dumping is on.
    `text` is a callable so that nothing is printed when it is off."""

    def __init__(self, graph_id: str):
        self.graph_id, self.count = graph_id, 0

    def __call__(self, stage: str, text: Callable[[], str], suffix: str = "txt") -> None:
        if not config.dump_dir:
            return
        os.makedirs(config.dump_dir, exist_ok=True)
        name = f"{self.graph_id}.{self.count:02d}_{stage}.{suffix}"
        self.count += 1
        with open(os.path.join(config.dump_dir, name), "w") as f:
            f.write(text())
