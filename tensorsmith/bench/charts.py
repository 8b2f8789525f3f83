"""PNG charts: speed-up over eager per model with its confidence interval, and compile time.
matplotlib is optional (the `bench` extra); without it no chart is drawn and the run says so."""
from __future__ import annotations

import os

from .results import Row


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plain_log_ticks(ax) -> None:
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    low, high = ax.get_ylim()
    ax.yaxis.set_minor_formatter(FormatStrFormatter("%g" if high / low < 10 else ""))
    ax.tick_params(axis="y", which="minor", labelsize=7)


def _grouped(rows: list[Row], value):
    """{backend: [(label, value, err_low, err_high)]} over the (model, mode) labels in order."""
    labels = list(dict.fromkeys(f"{r.model}\n{r.mode}" for r in rows))
    series = {}
    for r in rows:
        point = value(r)
        if point is not None:
            series.setdefault(r.backend, {})[f"{r.model}\n{r.mode}"] = point
    return labels, series


def _bars(ax, labels, series, ylabel, title, log=False):
    width = 0.8 / max(1, len(series))
    for i, (backend, points) in enumerate(series.items()):
        xs, ys, lo, hi = [], [], [], []
        for j, label in enumerate(labels):
            if label in points:
                v, l, h = points[label]
                xs.append(j + (i - (len(series) - 1) / 2) * width)
                ys.append(v)
                lo.append(max(0.0, v - (l if l is not None else v)))
                hi.append(max(0.0, (h if h is not None else v) - v))
        errors = [lo, hi] if any(lo) or any(hi) else None
        ax.bar(xs, ys, width, yerr=errors, capsize=3, label=backend)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    if series:
        ax.legend(fontsize=8)


def speedup_chart(rows: list[Row], path: str, title: str = "") -> str:
    """Bars with their intervals on a log scale; a row that did not run cleanly is named by its
    status where its bar would be, so a failure cannot pass for a missing bar."""
    plt = _pyplot()
    compiled = [r for r in rows if r.backend != "eager" and r.status not in ("unknown_model",)]
    labels, series = _grouped([r for r in compiled if r.speedup and r.status == "ok"],
                              lambda r: (r.speedup["value"], r.speedup.get("low"),
                                         r.speedup.get("high")))
    labels = list(dict.fromkeys(f"{r.model}\n{r.mode}" for r in compiled))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4.5))
    _bars(ax, labels, series, "speed-up over eager (higher is faster)",
          title or "Speed-up over eager, 95% bootstrap interval", log=True)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    backends_ = list(dict.fromkeys(r.backend for r in compiled))
    width = 0.8 / max(1, len(series))
    for r in compiled:
        if r.status != "ok":
            i = backends_.index(r.backend) if r.backend in series else len(series) - 1
            x = labels.index(f"{r.model}\n{r.mode}") + (i - (len(series) - 1) / 2) * width
            ax.text(x, 1.0, f"{r.backend}: {r.status}", rotation=90, ha="center", va="bottom",
                    fontsize=7, color="firebrick")
    _plain_log_ticks(ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def compile_chart(rows: list[Row], path: str, title: str = "") -> str:
    plt = _pyplot()
    labels = list(dict.fromkeys(f"{r.model}\n{r.mode}" for r in rows if r.backend != "eager"))
    series = {}
    for r in rows:
        for kind in ("cold", "warm"):
            v = r.compile.get(f"{kind}_s")
            if r.backend != "eager" and v is not None:
                series.setdefault(f"{r.backend} {kind}", {})[f"{r.model}\n{r.mode}"] = (v, None, None)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(labels) + 2), 4))
    _bars(ax, labels, series, "seconds", title or "Compile latency (cold: empty caches)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(rows: list[Row], out_dir: str, where: str = "") -> list[str]:
    """`where`: the machine in a few words, for the titles."""
    suffix = f" - {where}" if where else ""
    return [speedup_chart(rows, os.path.join(out_dir, "speedup.png"),
                          f"Speed-up over eager, 95% bootstrap interval{suffix}"),
            compile_chart(rows, os.path.join(out_dir, "compile.png"),
                          f"Compile latency (cold: empty caches; warm: filled){suffix}")]
