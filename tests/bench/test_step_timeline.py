"""The idle-gap arithmetic of bench/step_timeline.py, against a brute-force count on a fine grid."""
import random
from types import SimpleNamespace

from tensorsmith.bench.step_timeline import Gap, communication_overlap, host_cause, idle_gaps, lead_in


def _random_kernels(rng, n):
    kernels, t = [], 0.0
    for i in range(n):
        t += rng.choice([0.0, 1.0, 3.0, 25.0, 120.0]) - rng.choice([0.0, 0.0, 2.0])  # some overlap
        length = rng.choice([1.0, 4.0, 30.0])
        kernels.append((t, t + length, f"k{i}"))
        t += length
    rng.shuffle(kernels)
    return kernels


def test_idle_gaps_match_a_grid_count():
    rng = random.Random()
    for _ in range(20):
        kernels = _random_kernels(rng, rng.randint(1, 30))
        window, busy, gaps = idle_gaps(kernels, min_us=10.0)
        lo, hi = min(k[0] for k in kernels), max(k[1] for k in kernels)
        ticks = [lo + 0.5 + i for i in range(int(hi - lo))]  # unit-wide cells; all times are integers
        covered = sum(any(s <= t < e for s, e, _ in kernels) for t in ticks)
        assert window == hi - lo
        assert busy == covered
        idle_cells = [t for t in ticks if not any(s <= t < e for s, e, _ in kernels)]
        assert sum(g.us for g in gaps) <= len(idle_cells)
        for g in gaps:
            assert g.us >= 10.0
            assert not any(s < g.end and e > g.start for s, e, _ in kernels)  # nothing runs inside
            assert any(e == g.start and n == g.before for s, e, n in kernels)
            assert any(s == g.end and n == g.after for s, e, n in kernels)
        assert [g.us for g in gaps] == sorted((g.us for g in gaps), reverse=True)


def test_communication_overlap_matches_a_grid_count():
    rng = random.Random()
    assert communication_overlap(_random_kernels(rng, 5)) is None  # no NCCL kernel
    for _ in range(30):
        kernels = [(s, e, f"ncclKernel_AllReduce_{n}" if rng.random() < 0.4 else n)
                   for s, e, n in _random_kernels(rng, rng.randint(1, 30))]
        comm = [k for k in kernels if k[2].startswith("nccl")]
        if not comm:
            continue
        other = [k for k in kernels if not k[2].startswith("nccl")]
        lo, hi = min(k[0] for k in kernels), max(k[1] for k in kernels)
        ticks = [lo + 0.5 + i for i in range(int(hi - lo))]

        def runs(group, t):
            return any(s <= t < e for s, e, _ in group)

        found = communication_overlap(kernels)
        assert found["kernels"] == len(comm)
        assert found["running"] == sum(runs(comm, t) for t in ticks)
        assert found["exposed"] == sum(runs(comm, t) and not runs(other, t) for t in ticks)
        last_compute = max((e for _, e, _ in other), default=min(s for s, _, _ in comm))
        assert found["tail"] == max(0.0, max(e for _, e, _ in comm) - last_compute)


def test_host_cause_names_the_innermost_covering_event_and_its_frames():
    def event(name, start, end, parent=None):
        return SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end), cpu_parent=parent)

    step = event("gpu.py(10): step", 0, 1000)
    settle = event("index_checks.py(50): resolve", 100, 900, step)
    sync = event("cudaEventSynchronize", 110, 890, settle)
    launch = event("cudaLaunchKernel", 895, 899, step)
    gap = Gap(120, 880, "a", "b")
    assert host_cause([step, settle, sync, launch], gap) == \
        "cudaEventSynchronize < index_checks.py(50): resolve < gpu.py(10): step"
    assert host_cause([launch], gap) == "(no host event in it)"
    first, second = event("aten::item", 100, 400), event("Optimizer.step", 420, 900)
    assert host_cause([first, second, launch], gap) == "Optimizer.step 460 us; aten::item 280 us"


def test_lead_in_lists_the_outermost_host_calls_before_the_first_kernel():
    def event(name, start, end, parent=None):
        return SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end), cpu_parent=parent)

    step = event("bench step", 100, 5000)
    zero = event("Optimizer.zero_grad", 110, 300, step)
    inner = event("aten::zero_", 120, 200, zero)  # inside zero_grad: not counted again
    forward = event("CompiledFunction", 320, 2000, step)
    later = event("Optimizer.step", 3000, 4000, step)  # after the first kernel
    before = event("setup", 0, 90)  # before the step
    parts = lead_in([step, zero, inner, forward, later, before], step, first_kernel=900)
    assert [(e.name, us) for e, us in parts] == [("CompiledFunction", 580), ("Optimizer.zero_grad", 190)]
    assert [(e.name, us) for e, us in lead_in([zero, inner], zero, 900)] == [("aten::zero_", 80)]
