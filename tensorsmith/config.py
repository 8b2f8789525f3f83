"""Every knob in one place, each read from its environment variable at import and settable here."""
from __future__ import annotations

import os


def _int_env(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


# 0 silent; 1 one line per compiled graph; 2 stage times and per-call decisions; 3 the IR and the
# schedule; 4 the generated source (the levels are listed in log.py).
debug: int = _int_env("TENSORSMITH_DEBUG", 0)

# A directory to write every stage of every graph to (dump.py), or None.
dump_dir: str | None = os.environ.get("TENSORSMITH_DUMP") or None

# A graph with symbolic sizes (Dynamo marks a dimension dynamic once it changed) is compiled once
# for all its sizes where every stage of its backend takes symbolic sizes (`symbolic_sizes`; the
# C++ and Triton backends and the interpreter). Otherwise it is compiled for a
# concrete shape only when that shape comes again: on its `specialize_after`-th call. Until then,
# and for new shapes once `max_specializations` shapes are compiled, the call runs the graph
# through ATen as captured (exact, eager speed), so shapes that change on every call (a growing
# KV cache in generation) never wait for a compile each (compile/specialize.py).
symbolic_sizes: bool = os.environ.get("TENSORSMITH_SYMBOLIC_SIZES", "1") != "0"
specialize_after: int = _int_env("TENSORSMITH_SPECIALIZE_AFTER", 2)
max_specializations: int = _int_env("TENSORSMITH_MAX_SPECIALIZATIONS", 16)

# What a training step may hold between its forward and its backward: the graph's inputs (weights,
# data), the weights' gradients and the activations the forward saves. Where the partition with the
# cheapest recomputation would save more, the forward saves less and the backward recomputes more
# (compile/memory_budget.py). Bytes ("12e9", "12GB", "512MiB"), or a fraction of the device's
# memory ("0.5"); unset: no budget.
memory_budget: str | None = os.environ.get("TENSORSMITH_MEMORY_BUDGET") or None

# Verify the graph after import and after every pass (cheap; catches a bad pass where it happens).
verify_each_stage: bool = os.environ.get("TENSORSMITH_VERIFY", "1") != "0"

# Raise on an internal compiler error instead of running that graph eagerly and reporting it.
strict: bool = os.environ.get("TENSORSMITH_STRICT", "0") == "1"

# Attention written out by hand (matmul, scale, mask, softmax, matmul) is rewritten into one fused
# attention op, and scaled_dot_product_attention stays one op: the backward recomputes attention
# instead of keeping the sequence x sequence probabilities (frontend/attention.py). Off: both are
# traced as their math and compiled as ordinary ops.
fuse_attention: bool = os.environ.get("TENSORSMITH_FUSE_ATTENTION", "1") != "0"

# Attention fused under CUDA autocast too (our Triton kernels in autocast's dtype; bench.gpu's
# bf16 parity row checks it against eager's autocast). `0` leaves SDPA under CUDA autocast to
# PyTorch. On the CPU it is fused regardless.
fuse_attention_cuda_autocast: bool = os.environ.get("TENSORSMITH_FUSE_ATTENTION_CUDA_AUTOCAST", "1") == "1"

# Hand-written attention is rewritten only where its score tensor (batch x heads x L x S) takes at
# least this many MiB. 0 = always: since the CPU runs our own C++ flash kernel (not PyTorch's),
# fusing is no slower even at small sizes.
fuse_attention_min_mb: float = float(os.environ.get("TENSORSMITH_FUSE_ATTENTION_MIN_MB", "0"))

# A language model's last projection followed by its cross-entropy loss is rewritten into one op
# computed over chunks of rows, so the N x V logits' log-softmax and gradient are never whole in
# memory, nor the logits themselves unless the model also uses them (frontend/linear_cross_entropy.py).
# Off: both compile as ordinary ops.
fuse_linear_cross_entropy: bool = os.environ.get("TENSORSMITH_FUSE_LINEAR_CROSS_ENTROPY", "1") != "0"

# The loss is rewritten only where its logits (N x V, as the loss reads them) take at least this
# many MiB, or under a memory budget: below it, what the chunks save is negligible and their extra
# steps cost more than they save. 0 = always.
fuse_linear_cross_entropy_min_mb: float = float(
    os.environ.get("TENSORSMITH_FUSE_LINEAR_CROSS_ENTROPY_MIN_MB", "32"))

# Where compiled artifacts are cached (per user; created 0700). A fresh directory means a cold start.
cache_dir: str = os.environ.get("TENSORSMITH_CACHE_DIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tensorsmith")

# A file to append monitoring events to, one JSON object per line (compiles, cache hits, recompiles,
# fallbacks, incidents); `tensorsmith report FILE` summarizes it. None: no events.
events_path: str | None = os.environ.get("TENSORSMITH_EVENTS") or None

# With events on, also one event per call of a compiled graph, with its wall time.
events_runs: bool = os.environ.get("TENSORSMITH_EVENTS_RUNS", "0") == "1"

# How graphs run: "cpp" (the default: generated code, C++ kernels on the CPU and Triton kernels on
# CUDA), "triton" (Triton kernels on CUDA and on the CPU, where they need TRITON_INTERPRET=1: how
# the tests check the Triton backend without a GPU) or "interpreter" (the reference interpreter).
executor: str = os.environ.get("TENSORSMITH_EXECUTOR", "cpp")

# float16/bfloat16 values (autocast) computed in generated Triton kernels, rounded at every op as
# eager rounds them; elsewhere they run op by op through PyTorch (the C++ backend always does).
# True ("1", the default): every graph; False ("0"): none; "inference": all but training graphs.
half_kernels: bool | str = {"1": True, "all": True, "0": False, "off": False, "inference": "inference"}.get(
    os.environ.get("TENSORSMITH_HALF_KERNELS", "1"), True)

# Threads compiling Triton kernels in the background while tracing goes on (0: each kernel compiles
# at its first launch instead).
compile_threads: int = _int_env("TENSORSMITH_COMPILE_THREADS", min(8, os.cpu_count() or 1))

# Raise IndexOutOfRange when a Triton kernel read an index (embedding id, gather index) out of range.
# Checking waits for the graph to finish (one synchronization per call of a graph with such reads);
# off, an out-of-range index still never reads outside a buffer, but reads element 0 silently.
check_indices: bool = os.environ.get("TENSORSMITH_CHECK_INDICES", "1") != "0"
# A training forward or backward on CUDA reads its check at the end of the next compiled call (the
# forward's is read by its backward), so the GPU is never idle waiting for it (runtime/index_checks.py);
# on, every graph reads its own.
sync_index_checks: bool = os.environ.get("TENSORSMITH_SYNC_INDEX_CHECKS", "0") == "1"

# Numeric guards: "off", "warn" or "raise". On, generated kernels also report NaN/Inf in what they
# store and library steps (matmul, fallbacks) check their results; a non-finite value made from
# finite inputs is reported at the op that made it (runtime/numerics.py), and forward inputs must
# be finite. Read when a graph is compiled: set it before the model's first call.
check_numerics: str = os.environ.get("TENSORSMITH_CHECK_NUMERICS", "off").strip().lower() or "off"

# On CUDA, a compiled graph is replayed as a CUDA graph after two ordinary calls (a graph with
# symbolic sizes: per value of its sizes, `cuda_graph_buckets`): one graph launch per call instead of one
# Python-dispatched launch per kernel (runtime/cuda_graphs/). Never for graphs with random ops or
# CPU tensor arguments, and a call runs the ordinary way while an output of the last replay is still
# referenced (replays rewrite the same output memory). Off: every call runs the ordinary way.
cuda_graphs: bool = os.environ.get("TENSORSMITH_CUDA_GRAPHS", "1") != "0"

# After a graph's first call, its generated kernels (and attention's) are launched through their
# compiled launchers instead of Triton's JIT dispatch, whose per-launch host time is the step's
# where a graph is not replayed as a CUDA graph (codegen/triton/launch.py). Read at each launch.
direct_launch: bool = os.environ.get("TENSORSMITH_DIRECT_LAUNCH", "1") != "0"

# A graph several places call in turn within a step (one graph for twelve identical blocks under
# FSDP2 or a per-block compile) gets one CUDA-graph capture per call site, each with its own memory,
# so that every call site replays (runtime/cuda_graphs/call_sites.py). Off ("0"): one capture per
# graph.
cuda_graph_call_sites: bool = os.environ.get("TENSORSMITH_CUDA_GRAPH_SITES", "1") != "0"

# A graph with symbolic sizes is captured once per value of its sizes that comes again, keeping at
# most this many captures (each with its own memory pool) per graph, the least recently used
# dropped (runtime/cuda_graphs/size_buckets.py).
cuda_graph_buckets: int = _int_env("TENSORSMITH_CUDA_GRAPH_BUCKETS", 8)

# Live alarms (monitor/): every compiled graph's calls are timed, and once per step (a call of a
# forward or inference graph) or window of steps, checked for a recompile storm, shape churn, a
# drifting step time and growing memory; numerics incidents become alarms too. Each warns once
# (AlarmWarning) and goes to the events. Read when a graph is compiled.
alarms: bool = os.environ.get("TENSORSMITH_ALARMS", "1") != "0"
# recompile_storm: a Dynamo frame compiled more than N times, or a dynamic graph compiled for more
# than N shapes that ran fewer than 2 calls each on average. 6: train/eval, grad mode and a dynamic
# batch make at most 4-5 compiles of a frame, and Dynamo stops compiling one at its
# recompile_limit (8 compiles): N >= 8 would never fire.
alarm_recompiles: int = _int_env("TENSORSMITH_ALARM_RECOMPILES", 6)
# Steps in a window of the step detectors; the first window is warm-up (compiles, allocator caches,
# optimizer state). 20: a window's median ignores up to 9 slow steps (a checkpoint, an evaluation).
alarm_window: int = _int_env("TENSORSMITH_ALARM_WINDOW", 20)
# step_drift: a window's median step time above this multiple of the fastest window's median after
# warm-up (and 0.5 ms more a step). 1.5: far above run-to-run noise (a few %), and a slow-down
# worth a look.
alarm_drift: float = float(os.environ.get("TENSORSMITH_ALARM_DRIFT", "1.5"))
# memory_growth: memory (CUDA allocated, else the resident set) grew by more than this many MiB
# over consecutive windows, in each of which at least 80% of the steps grew it. 64: more than
# allocator caches move after warm-up; a slow leak fires once its growth adds up to it.
alarm_memory_mib: float = float(os.environ.get("TENSORSMITH_ALARM_MEMORY_MIB", "64"))
