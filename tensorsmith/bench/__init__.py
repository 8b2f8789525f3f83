"""`tensorsmith bench`: benchmarks whose numbers can be trusted (see docs/BENCHMARKS.md).

zoo.py (models) -> harness.py (run) -> stats.py (intervals) -> report.py / charts.py (output)
-> gate.py (regressions); probe.py runs the subprocess measurements (compile latency, memory).
"""
