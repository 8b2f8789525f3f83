"""Which graphs and calls may be captured as a CUDA graph, and how a refusal is reported.

Eligibility, decided once per graph after its first (verifying) call; the reason for a refusal goes
to the log (level 1) and to `record.cuda_graph` ("not: <why>"; "replayed" after its first replay):
config.cuda_graphs on; the graph runs its generated code (not the interpreter after a failed
compile); device CUDA and Triton not interpreted; no random op (the IR's `random`, or a fallback
whose ATen op draws random numbers: rand*, *dropout*, bernoulli*, normal, ... , attention with a
dropout that is not a literal 0): a replay would repeat the captured draw; no CPU tensor argument
(the host scalars of attention's RNG state): its value would be baked in. And, measured on the 2nd
call (and the 3rd, if the 2nd found it GPU-bound): not GPU-bound (launching took at least
HOST_BOUND_SHARE of the GPU time the call ran): where the GPU hides the launches already, replay
gains little and its pool costs memory; and at capture, copying the arguments that moved costs at
most COPY_SHARE_MAX of that launch time.
"""
from __future__ import annotations

import torch

from ... import config
from ...codegen.triton.build import interpreting
from ...log import log

# A graph whose launches took less than this share of its GPU time in its timed call is not
# captured: the GPU hides its launches already, so replay saves little, and each graph's pool keeps
# its own peak of matmul results (pools are not shared between graphs), on top of the others'.
HOST_BOUND_SHARE = 0.3
# Calls timed for that rule; a graph is GPU-bound when each of them was. Under DDP a backward
# bucket's graph shares the GPU with the previous bucket's all-reduce, so one call's share varies.
TIMED_CALLS = 2
# Copying arguments into static buffers is GPU work each replay adds: refused when it would take
# more than this share of the launch time replay saves (at COPY_BYTES_PER_MS, read + write, a
# conservative H100 figure).
COPY_SHARE_MAX = 0.1
COPY_BYTES_PER_MS = 2.5e9

# ATen ops (the middle part of "aten.<name>.<overload>", underscores stripped) that draw random
# numbers, besides any name with one of _RANDOM_WORDS in it.
_RANDOM_WORDS = ("rand", "dropout", "bernoulli")
_RANDOM_OPS = frozenset({"normal", "uniform", "exponential", "multinomial", "poisson", "geometric",
                         "cauchy", "log_normal", "rrelu", "rrelu_with_noise", "standard_gamma",
                         "sample_dirichlet", "binomial", "fused_dropout"})


# -- decided once per graph ----------------------------------------------------------------------
def random_node(graph):
    """The first node of `graph` that draws random numbers (or may), or None."""
    for node in graph.nodes:
        if node.op == "random":
            return node
        if node.op == "fallback" and _random_fallback(node):
            return node
    return None


def _random_fallback(node) -> bool:
    target = str(node.attrs.get("target", ""))
    parts = target.split(".")
    name = (parts[1] if len(parts) >= 3 else target).lower()
    if any(w in name for w in _RANDOM_WORDS) or name.strip("_").removesuffix("_functional") in _RANDOM_OPS:
        return True
    if "attention" in name:
        rate = _argument(node, target, "dropout_p")
        return rate is not _ABSENT and rate != 0  # unknown (a tensor, unreadable): random
    return False


_ABSENT = object()


def _argument(node, target: str, name: str):
    """The literal value of argument `name` of a fallback node, _ABSENT if its op has no such
    argument, None if it cannot be read."""
    if name in node.attrs.get("kwargs", {}):
        return node.attrs["kwargs"][name]
    try:
        from ...ir.aten import resolve_target
        schema = resolve_target(target)._schema
    except Exception:  # noqa: BLE001 - an op we cannot look up: assume the worst
        return None
    for i, argument in enumerate(schema.arguments):
        if argument.name == name:
            args = node.attrs.get("args", [])
            if i < len(args):
                return args[i]
            return argument.default_value if argument.has_default_value() else None
    return _ABSENT


def refusal(schedule, device: torch.device, interpreted: bool | None = None) -> str | None:
    """Why a graph with this schedule on `device` is never replayed as a CUDA graph, or None."""
    if not config.cuda_graphs:
        return "off (config.cuda_graphs, TENSORSMITH_CUDA_GRAPHS=0)"
    node = random_node(schedule.graph)
    if node is not None:
        what = node.attrs.get("target") if node.op == "fallback" else f"random {node.attrs.get('dist')}"
        return f"random op {what}{f' at {node.source}' if node.source else ''} (a replay repeats its draw)"
    if device.type != "cuda":
        return f"device is {device.type}"
    if interpreting() if interpreted is None else interpreted:
        return "Triton is interpreted (TRITON_INTERPRET=1)"
    return None


def argument_refusal(tensors) -> str | None:
    """Why these arguments cannot be captured (a CPU tensor: a host scalar whose value would be
    baked into the graph), or None."""
    for i, t in enumerate(tensors):
        if not isinstance(t, torch.Tensor):
            return f"argument {i} is a {type(t).__name__}"
        if t.device.type == "cpu":
            return f"argument {i} is a CPU tensor (a host scalar: its value would be captured)"
    return None


# -- measured on the timed calls and at capture --------------------------------------------------
def launch_share(launch_ms: float, gpu_ms: float) -> float:
    """How much of a call's GPU time its launches took (HOST_BOUND_SHARE's measure)."""
    return launch_ms / max(gpu_ms, 1e-3)


def launch_bound(share: float) -> bool:
    """Whether a timed call whose launches took `share` of its GPU time makes the graph eligible."""
    return share >= HOST_BOUND_SHARE


def gpu_bound_refusal(timed: int, launch_ms: float, gpu_ms: float) -> str | None:
    """Why the graph is not captured once `timed` calls were timed and none was launch-bound, the
    most launch-bound of them having launched in `launch_ms` and run `gpu_ms` on the GPU; None while
    fewer than TIMED_CALLS were."""
    if timed < TIMED_CALLS:
        return None
    most = launch_share(launch_ms, gpu_ms)
    return (f"GPU-bound: launching took at most {most:.0%} of the GPU time in "
            f"{timed} timed calls (replay would save little and keep its outputs' memory)")


def copy_refusal(moved: list[torch.Tensor], launch_ms: float | None) -> str | None:
    """A reason when copying these arguments each replay would cost more GPU time than
    COPY_SHARE_MAX of the launch time `launch_ms` replay saves (None when it would not, and off
    CUDA, where nothing was timed: `launch_ms` None)."""
    if launch_ms is None:
        return None
    nbytes = sum(t.numel() * t.element_size() for t in moved)
    copy_ms = 2 * nbytes / COPY_BYTES_PER_MS
    if copy_ms <= COPY_SHARE_MAX * launch_ms:
        return None
    return (f"copying {len(moved)} moved arguments ({nbytes / 2**20:.0f} MiB) each replay would take "
            f"about {copy_ms:.1f} ms, against {launch_ms:.1f} ms of launches it saves")


# -- reporting a refusal -------------------------------------------------------------------------
def graph_name(owner) -> str:
    """How logs name a TritonGraph: its record's id, else its IR graph's name."""
    return getattr(owner.record, "graph_id", owner.schedule.graph.name)


def refuse(owner, reason: str) -> None:
    """Record and log (level 1) why `owner` is not, or no longer, replayed as a CUDA graph."""
    record = owner.record
    if record is not None:
        record.cuda_graph = f"not: {reason}"
    log(1, f"{graph_name(owner)}: no CUDA graph: {reason}")
