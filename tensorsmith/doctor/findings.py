"""A finding: what is wrong, what it costs (measured where it can be) and the fix in one line; a
report lists the environment's findings first, then those of a run."""
from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES = ("error", "warning", "note")  # error: broken; warning: costs speed; note: worth a look


@dataclass
class Finding:
    check: str  # the check that found it: "threads", "graph_break", "outside_graphs", ...
    what: str
    effect: str
    fix: str
    severity: str = "warning"

    def lines(self) -> list[str]:
        return [f"  [{self.severity}] {self.check}: {self.what}",
                f"      effect: {self.effect}",
                f"      fix:    {self.fix}"]


@dataclass
class Report:
    environment: list[Finding] = field(default_factory=list)
    run: list[Finding] | None = None  # None: nothing was run
    context: list[str] = field(default_factory=list)  # what was checked, one line each
    run_summary: str = ""  # the run in one line: steps, time per step, share in compiled graphs

    @property
    def findings(self) -> list[Finding]:
        return self.environment + (self.run or [])

    def __str__(self) -> str:
        lines = ["tensorsmith doctor"] + [f"  {line}" for line in self.context]
        lines += _section("environment", self.environment)
        if self.run is not None:
            lines += _section("run" + (f" ({self.run_summary})" if self.run_summary else ""), self.run)
        if not self.findings:
            lines.append("no findings")
        return "\n".join(lines)


def _section(title: str, findings: list[Finding]) -> list[str]:
    order = sorted(findings, key=lambda f: SEVERITIES.index(f.severity))
    lines = [f"{title}: {len(findings) or 'no'} finding{'s' if len(findings) != 1 else ''}"]
    for finding in order:
        lines += finding.lines()
    return lines
