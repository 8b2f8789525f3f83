"""The compatibility report: graph breaks and fallbacks with counts and source lines."""
from __future__ import annotations

import torch

import tensorsmith


class WithBreakAndFallback(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)

    def forward(self, x):
        y = torch.cumsum(self.fc(x), dim=1)  # cumsum has no lowering: a fallback
        print("host side effect")  # a graph break
        return torch.relu(y).sum(dim=1)


def test_explain_lists_graph_breaks_and_fallbacks_with_source_lines():
    explanation = tensorsmith.explain(WithBreakAndFallback(), torch.randn(3, 6))
    text = str(explanation)
    assert explanation.graph_count == 2
    assert len(explanation.graph_breaks) == 1
    reason, where = explanation.graph_breaks[0]
    assert "print" in reason.lower() or "builtin" in reason.lower(), reason
    assert "test_explain.py" in where
    counts = {target: n for (target, _, _), n in explanation.fallbacks.items()}
    assert counts.get("aten.cumsum.default", 0) >= 1
    sources = [source for (target, source, _) in explanation.fallbacks if target == "aten.cumsum.default"]
    assert any("torch.cumsum(self.fc(x), dim=1)" in (s or "") for s in sources), sources
    assert "aten.cumsum.default x" in text and "graph break" in text
    kinds = {r.kind for r in explanation.records}
    assert {"forward", "backward"} <= kinds  # the backward was compiled and reported too


def test_explain_of_a_clean_model_reports_no_fallbacks():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh())
    explanation = tensorsmith.explain(model, torch.randn(2, 4))
    assert explanation.graph_breaks == []
    assert not explanation.fallbacks
    assert "0 fallback(s)" in str(explanation)
