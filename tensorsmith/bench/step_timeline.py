"""Where one step leaves the GPU idle, and what the host was doing meanwhile (bench/gpu.py --timeline).

Device time per kind of kernel (kernel_profile.py) says how long the kernels take; the step's wall
time can still be longer, when the GPU waits for the host: a synchronization, or launches slower
than the kernels they queue. This profiles one step with CPU and CUDA activities, finds the idle
stretches between kernels, and names the innermost host call that covers each one with the calls
around it. The profiler slows the host, so first an unprofiled step says how far the host runs
ahead of the GPU at the end of each phase (forward, backward, optimizer).
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Gap:
    start: float  # microseconds, profiler clock
    end: float
    before: str  # the kernel that ran last before the gap
    after: str  # the kernel that ran first after it

    @property
    def us(self) -> float:
        return self.end - self.start


def idle_gaps(kernels: list[tuple[float, float, str]], min_us: float = 10.0) -> tuple[float, float, list[Gap]]:
    """(window, busy, gaps): the span from the first kernel's start to the last one's end, the time
    at least one kernel ran in it, and the idle stretches of at least `min_us` between kernels,
    longest first. `kernels` are (start, end, name), in any order, overlapping or not."""
    if not kernels:
        return 0.0, 0.0, []
    ordered = sorted(kernels)
    busy, gaps = 0.0, []
    run_start, run_end, last = ordered[0][0], ordered[0][1], ordered[0][2]
    for start, end, name in ordered[1:]:
        if start > run_end:
            busy += run_end - run_start
            if start - run_end >= min_us:
                gaps.append(Gap(run_end, start, last, name))
            run_start = start
        if end >= run_end:
            run_end, last = end, name
    busy += run_end - run_start
    return run_end - ordered[0][0], busy, sorted(gaps, key=lambda g: -g.us)


def host_cause(cpu_events, gap: Gap, depth: int = 7) -> str:
    """The innermost host event covering most of the gap, then the frames around it (innermost
    first): what the host was busy with while the GPU had nothing queued. Without one, the host
    events that overlap the gap longest."""
    def overlap(e) -> float:
        return min(e.time_range.end, gap.end) - max(e.time_range.start, gap.start)

    covering = [e for e in cpu_events if overlap(e) >= 0.8 * gap.us]
    if not covering:  # the host went through several calls: the longest parts of the gap
        parts = sorted((e for e in cpu_events if overlap(e) > 0), key=overlap, reverse=True)[:4]
        return "; ".join(f"{e.name[-50:]} {overlap(e):.0f} us" for e in parts) or "(no host event in it)"
    event = min(covering, key=lambda e: e.time_range.end - e.time_range.start)
    chain = []
    while event is not None and len(chain) < depth:
        chain.append(event.name[-70:])
        event = event.cpu_parent
    return " < ".join(chain)


def lead_in(cpu_events, parent, first_kernel: float, top: int = 6) -> list[tuple[object, float]]:
    """What the host ran inside `parent` (the host event around the step, or one of its calls)
    before the GPU's first kernel: parent's own calls in that stretch, with the microseconds of each
    inside it, longest first. A synchronized step pays this stretch with an idle GPU."""
    def inside(e) -> float:
        return min(e.time_range.end, first_kernel) - e.time_range.start

    parts = [(e, inside(e)) for e in cpu_events if e.cpu_parent is parent and inside(e) > 0]
    return sorted(parts, key=lambda p: -p[1])[:top]


def _print_lead_in(cpu_events, step, first_kernel: float, label: str) -> None:
    """The stretch before the first kernel, by the step's calls, and the longest call by its own."""
    calls = lead_in(cpu_events, step, first_kernel)
    print(f"   {label}: the first kernel starts {(first_kernel - step.time_range.start) / 1e3:.2f} ms "
          "into the profiled step; before it: " +
          ", ".join(f"{e.name[-50:]} {us / 1e3:.2f} ms" for e, us in calls))
    if calls:
        inner = lead_in(cpu_events, calls[0][0], first_kernel)
        print(f"      in {calls[0][0].name[-50:]}: " +
              (", ".join(f"{e.name[-50:]} {us / 1e3:.2f} ms" for e, us in inner) or "nothing profiled"))


_COMMUNICATION = re.compile(r"nccl", re.IGNORECASE)


def _merged(intervals) -> list[tuple[float, float]]:
    """The union of (start, end) intervals, as sorted disjoint intervals."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _uncovered(intervals, cover) -> float:
    """How long the union of `intervals` runs outside the union of `cover`."""
    cover, total, i = _merged(cover), 0.0, 0
    for start, end in _merged(intervals):
        while i < len(cover) and cover[i][1] <= start:
            i += 1
        at, j = start, i
        while j < len(cover) and cover[j][0] < end:
            total += max(0.0, min(cover[j][0], end) - at)
            at = max(at, cover[j][1])
            j += 1
        total += max(0.0, end - at)
    return total


def communication_overlap(kernels: list[tuple[float, float, str]]) -> dict[str, float] | None:
    """How much of a step's communication (NCCL kernels) the computation hides: the time some
    NCCL kernel runs, the part of it when nothing else runs (exposed), and how long after the last
    computing kernel the last NCCL kernel ends (the tail). Microseconds; None without NCCL kernels.
    An NCCL kernel's time includes waiting for the other ranks to reach the same collective."""
    communicating = [(s, e) for s, e, name in kernels if _COMMUNICATION.search(name)]
    if not communicating:
        return None
    computing = [(s, e) for s, e, name in kernels if not _COMMUNICATION.search(name)]
    last_compute = max((e for _, e in computing), default=min(s for s, _ in communicating))
    return {"kernels": len(communicating),
            "running": _uncovered(communicating, []),
            "exposed": _uncovered(communicating, computing),
            "tail": max(0.0, max(e for _, e in communicating) - last_compute)}


def print_host_lead(step, label: str) -> None:
    """How far the host is ahead of the GPU at the end of each phase of one unprofiled step (the
    profiler slows the host down, and so makes a step look more host-bound than it is).
    `step(mark)` calls mark(phase) after each phase (bench/train_step.py's steps do). A phase whose end the host reached later than
    the GPU did left the GPU waiting for it."""
    marks = []

    def mark(phase: str) -> None:
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        marks.append((phase, time.perf_counter(), event))

    torch.cuda.synchronize()
    mark("start")
    step(mark)
    torch.cuda.synchronize()
    _, began, start = marks[0]
    print(f"   {label}: " + ", ".join(
        f"{phase} ends at host {(at - began) * 1e3:.1f} ms / GPU {start.elapsed_time(event):.1f} ms"
        for phase, at, event in marks[1:]))


def print_step_timeline(step, label: str, top: int = 12, min_us: float = 10.0) -> dict[str, float]:
    """Profile one call of `step` and print how long the GPU sat idle in it, and the `top` longest
    idle stretches with their host cause. Returns window, busy and idle milliseconds."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    print_host_lead(step, label)  # ends synchronized
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with torch.profiler.record_function("bench step"):
            step()
        torch.cuda.synchronize()
    events = prof.events()
    kernels = [(e.time_range.start, e.time_range.end, e.name) for e in events
               if e.device_type == DeviceType.CUDA and e.time_range.end > e.time_range.start]
    cpu = [e for e in events if e.device_type == DeviceType.CPU]
    window, busy, gaps = idle_gaps(kernels, min_us)
    idle = window - busy
    print(f"   {label}: step window {window / 1e3:.2f} ms, GPU busy {busy / 1e3:.2f} ms, idle {idle / 1e3:.2f} ms "
          f"({len(gaps)} gaps of >= {min_us:.0f} us holding {sum(g.us for g in gaps) / 1e3:.2f} ms)")
    overlap = communication_overlap(kernels)
    if overlap is not None:
        print(f"   {label}: communication: {overlap['kernels']} NCCL kernels running {overlap['running'] / 1e3:.2f} ms, "
              f"{overlap['exposed'] / 1e3:.2f} ms of it exposed (nothing else running), the last ending "
              f"{overlap['tail'] / 1e3:.2f} ms after the last computing kernel")
    marked = [e for e in cpu if e.name == "bench step"]
    if marked and kernels:
        _print_lead_in(cpu, marked[0], min(k[0] for k in kernels), label)
    causes = {gap: host_cause(cpu, gap) for gap in gaps}
    for gap in gaps[:top]:
        print(f"   {gap.us:8.0f} us idle  after {gap.before[:40]!r} before {gap.after[:40]!r}\n"
              f"              host: {causes[gap]}")
    by_cause: dict[str, list[float]] = {}
    for gap, cause in causes.items():  # the innermost two host events name a cause
        by_cause.setdefault(" < ".join(cause.split(" < ")[:2]), []).append(gap.us)
    for cause, stretches in sorted(by_cause.items(), key=lambda kv: -sum(kv[1]))[:top]:
        print(f"   {sum(stretches) / 1e3:7.2f} ms in {len(stretches):4d} gaps while the host was in {cause}")
    return {"window_ms": window / 1e3, "busy_ms": busy / 1e3, "idle_ms": idle / 1e3}
