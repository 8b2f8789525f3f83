"""`tensorsmith report EVENTS.jsonl`: what the compiler did over a run, from its event file.

Counts of each event, compile time (tensorsmith's own and the background C++ builds), cache hit
rate, the slowest graphs, recompiles with their reasons, fallbacks (ATen ops by op and source
line; whole graphs with the reason), incidents, live alarms (by kind, each with its effect and
fix), and graph run times when they were recorded.
`--json` prints the summary as JSON; `--prometheus FILE` writes it in Prometheus' text format
(for node_exporter's textfile collector). Exit status: 0, or 2 when the file cannot be read.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter, defaultdict


def read_events(path: str) -> tuple[list[dict], int]:
    """The events of a file, and how many lines were not JSON objects (a torn last line, say)."""
    events, malformed = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                malformed += 1
                continue
            if isinstance(event, dict) and "event" in event:
                events.append(event)
            else:
                malformed += 1
    return events, malformed


def summarize(events: list[dict], top: int = 5) -> dict:
    counts = Counter(e["event"] for e in events)
    of = defaultdict(list)
    for e in events:
        of[e["event"]].append(e)
    processes = {e.get("pid") for e in events}
    label = (lambda e: e.get("graph")) if len(processes) <= 1 else (lambda e: f"{e.get('pid')}:{e.get('graph')}")
    graphs: dict[str, dict] = {}
    for e in of["compile"]:
        g = graphs.setdefault(label(e), {"graph": label(e), "kind": e.get("kind"), "compiles": 0,
                                         "compile_s": 0.0, "build_s": 0.0, "nodes": 0, "kernels": 0})
        g["compiles"] += 1
        g["compile_s"] += e.get("compile_s") or 0.0
        g["nodes"] = max(g["nodes"], e.get("nodes") or 0)
        g["kernels"] = max(g["kernels"], e.get("kernels") or 0)
    for e in of["cache"]:
        if label(e) in graphs:
            graphs[label(e)]["build_s"] += e.get("build_s") or 0.0
    slowest = sorted(graphs.values(), key=lambda g: -(g["compile_s"] + g["build_s"]))[:top]
    hits = sum(1 for e in of["cache"] if e.get("hit"))
    op_fallbacks = Counter()
    for e in of["fallback"]:
        if e.get("scope") == "op":
            op_fallbacks[(e.get("op"), e.get("source"))] += e.get("count", 1)
    runs = defaultdict(list)
    for e in of["run"]:
        runs[label(e)].append(e.get("seconds") or 0.0)
    times = [e["time"] for e in events if "time" in e]
    return {
        "events": len(events),
        "processes": len(of["session"]) or len(processes),
        "first": min(times) if times else None,
        "last": max(times) if times else None,
        "counts": dict(counts),
        "compiles": {"count": len(of["compile"]),
                     "by_kind": dict(Counter(e.get("kind") for e in of["compile"])),
                     "compile_s": round(sum(e.get("compile_s") or 0.0 for e in of["compile"]), 6),
                     "build_s": round(sum(e.get("build_s") or 0.0 for e in of["cache"] if not e.get("hit")), 6),
                     "slowest": slowest},
        "cache": {"hits": hits, "misses": len(of["cache"]) - hits},
        "recompiles": {"count": len(of["recompile"]),
                       "by_reason": dict(Counter(e.get("reason") for e in of["recompile"])),
                       "by_graph": dict(Counter(label(e) for e in of["recompile"]))},
        "fallbacks": {"ops": [{"op": op, "source": source, "count": n}
                              for (op, source), n in op_fallbacks.most_common()],
                      "graphs": [{"graph": label(e), "reason": e.get("reason")}
                                 for e in of["fallback"] if e.get("scope") == "graph"]},
        "incidents": {"count": len(of["incident"]),
                      "by_kind": dict(Counter(e.get("kind") for e in of["incident"])),
                      "first": of["incident"][:top]},
        "alarms": {"count": len(of["alarm"]),
                   "by_kind": dict(Counter(e.get("kind") for e in of["alarm"])),
                   "list": [{"kind": e.get("kind"), "graph": label(e) if e.get("graph") else "",
                             **{k: e.get(k) for k in ("what", "effect", "fix")}} for e in of["alarm"]]},
        "runs": {g: {"calls": len(s), "total_s": round(sum(s), 6),
                     "median_ms": round(statistics.median(s) * 1e3, 3),
                     "max_ms": round(max(s) * 1e3, 3)} for g, s in runs.items()},
    }


def format_summary(s: dict, path: str) -> str:
    c = s["compiles"]
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(c["by_kind"].items())) or "none"
    cache = s["cache"]
    looked_up = cache["hits"] + cache["misses"]
    lines = [f"{path}: {s['events']} events from {s['processes']} process(es), {s['first']} to {s['last']}",
             (f"compiles: {c['count']} ({kinds}); tensorsmith time {c['compile_s']:.3f} s, "
              f"C++ builds {c['build_s']:.3f} s (in the background)"),
             f"cache: {cache['hits']} hit(s), {cache['misses']} miss(es)"
             + (f" ({cache['hits'] / looked_up:.0%} hit rate)" if looked_up else "")]
    if c["slowest"]:
        lines.append("slowest graphs (compile + build):")
        for g in c["slowest"]:
            lines.append(f"  {g['graph']}: {g['compile_s'] + g['build_s']:.3f} s ({g['compiles']} "
                         f"compile(s), {g['nodes']} nodes, {g['kernels']} kernels)")
    r = s["recompiles"]
    lines.append(f"recompiles: {r['count']}" + "".join(
        f"\n  {n} x {reason}" for reason, n in r["by_reason"].items()) + "".join(
        f"\n  {graph}: {n}" for graph, n in sorted(r["by_graph"].items())))
    f = s["fallbacks"]
    lines.append(f"fallbacks: {sum(x['count'] for x in f['ops'])} ATen op(s), {len(f['graphs'])} whole graph(s)")
    for x in f["ops"]:
        lines.append(f"  {x['op']} x{x['count']} at {x['source'] or '<unknown source>'}")
    for x in f["graphs"]:
        lines.append(f"  {x['graph']} ran whole through ATen: {x['reason']}")
    i = s["incidents"]
    lines.append(f"incidents: {i['count']}" + "".join(f"\n  {n} x {k}" for k, n in i["by_kind"].items()))
    for e in i["first"]:
        detail = ", ".join(f"{k}={v}" for k, v in e.items() if k not in ("time", "event", "pid", "kind"))
        lines.append(f"  {e.get('time')} {e.get('kind')}: {detail}")
    lines += _alarm_lines(s["alarms"])
    if s["runs"]:
        lines.append("graph runs:")
        for g, r in sorted(s["runs"].items()):
            lines.append(f"  {g}: {r['calls']} call(s), median {r['median_ms']:.3f} ms, max {r['max_ms']:.3f} ms")
    return "\n".join(lines)


def _alarm_lines(a: dict) -> list[str]:
    lines = [f"alarms: {a['count']}" + "".join(f"\n  {n} x {k}" for k, n in a["by_kind"].items())]
    for x in a["list"]:
        where = f" ({x['graph']})" if x["graph"] else ""
        lines.append(f"  {x['kind']}{where}: {x['what']}\n    effect: {x['effect']}\n    fix: {x['fix']}")
    return lines


def prometheus(s: dict) -> str:
    """The summary's counters in Prometheus' text exposition format."""
    rows = [("compiles_total", "Graphs compiled (specializations included).",
             [(f'{{kind="{k}"}}', n) for k, n in s["compiles"]["by_kind"].items()] or [("", 0)]),
            ("compile_seconds_total", "tensorsmith's own compile time.", [("", s["compiles"]["compile_s"])]),
            ("build_seconds_total", "C++ build time of cache misses.", [("", s["compiles"]["build_s"])]),
            ("cache_hits_total", "Modules taken from the compile cache.", [("", s["cache"]["hits"])]),
            ("cache_misses_total", "Modules built.", [("", s["cache"]["misses"])]),
            ("recompiles_total", "Graphs compiled again.", [("", s["recompiles"]["count"])]),
            ("fallbacks_total", "ATen op fallbacks and whole-graph fallbacks.",
             [('{scope="op"}', sum(x["count"] for x in s["fallbacks"]["ops"])),
              ('{scope="graph"}', len(s["fallbacks"]["graphs"]))]),
            ("incidents_total", "Numeric and input incidents.",
             [(f'{{kind="{k}"}}', n) for k, n in s["incidents"]["by_kind"].items()] or [("", 0)]),
            ("alarms_total", "Live alarms (monitor/), by kind.",
             [(f'{{kind="{k}"}}', n) for k, n in s["alarms"]["by_kind"].items()] or [("", 0)])]
    out = []
    for name, help_text, samples in rows:
        out += [f"# HELP tensorsmith_{name} {help_text}", f"# TYPE tensorsmith_{name} counter"]
        out += [f"tensorsmith_{name}{labels} {value}" for labels, value in samples]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tensorsmith report", description=__doc__.split("\n\n")[0])
    p.add_argument("path", help="an event file (TENSORSMITH_EVENTS=path)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--prometheus", metavar="FILE", help="also write the counters in Prometheus' text format")
    p.add_argument("--top", type=int, default=5, help="slowest graphs and incidents to list (default 5)")
    args = p.parse_args(argv)
    try:
        events, malformed = read_events(args.path)
    except OSError as e:
        print(f"tensorsmith report: {e}", file=sys.stderr)
        return 2
    summary = summarize(events, args.top)
    summary["malformed_lines"] = malformed
    print(json.dumps(summary, indent=1, default=str) if args.json else format_summary(summary, args.path))
    if malformed and not args.json:
        print(f"({malformed} line(s) were not events and were skipped)")
    if args.prometheus:
        with open(args.prometheus, "w") as f:
            f.write(prometheus(summary))
    return 0
