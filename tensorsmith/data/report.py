"""The result of a data check: findings, a readable text form and a JSON form."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from .thresholds import EXIT_FAILED, EXIT_PASSED, Thresholds


@dataclass
class Finding:
    check: str  # exact_duplicates, near_duplicates, image_near_duplicates, leakage, nan, inf, constant, empty
    status: str  # "pass", "warn" or "fail"
    message: str
    split: str | None = None  # "train" or "eval" for checks within one split
    column: str | None = None
    count: int = 0
    fraction: float | None = None
    examples: list = field(default_factory=list)  # a few dicts to show
    indices: list = field(default_factory=list)  # all offending eval (or split) sample indices


@dataclass
class Report:
    train_size: int
    eval_size: int
    columns: dict  # name -> kind
    key: list
    label: str | None
    thresholds: Thresholds
    findings: list[Finding] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)  # stage -> wall seconds

    @property
    def passed(self) -> bool:
        return all(f.status != "fail" for f in self.findings)

    @property
    def exit_code(self) -> int:
        return EXIT_PASSED if self.passed else EXIT_FAILED

    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def to_dict(self) -> dict:
        out = asdict(self)
        out["passed"] = self.passed
        return out

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def __str__(self) -> str:
        columns = ", ".join(f"{n} ({k})" for n, k in self.columns.items())
        total = sum(self.seconds.values())
        header = (f"tensorsmith data check: train {self.train_size} samples, eval {self.eval_size} "
                  f"samples; columns: {columns}; key: {', '.join(self.key) or '-'}; "
                  f"label: {self.label or '-'} ({total:.1f} s)")
        lines = [header]
        for f in sorted(self.findings, key=lambda f: ("fail", "warn", "pass").index(f.status)):
            where = " ".join(x for x in (f.split, f.column) if x)
            lines.append(f"  {f.status.upper():4}  {f.check}{f' [{where}]' if where else ''}: {f.message}")
            for example in f.examples[:3]:
                lines.append("          e.g. " + ", ".join(f"{k}={v!r}" for k, v in example.items()))
        lines.append("passed" if self.passed else
                     f"FAILED: {len(self.failures())} check(s) crossed a threshold")
        return "\n".join(lines)
