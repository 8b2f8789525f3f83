"""The torch.compile backend "tensorsmith": Dynamo graph -> AOTAutograd -> tensorsmith graphs.

AOTAutograd traces the forward and backward (functionalized, decomposed with our table, partitioned
with rematerialization of cheap ops, and of more under a memory budget: memory_budget.py); each
resulting graph is compiled by `compile_fx_graph`.
"""
from __future__ import annotations

import contextlib
import functools

import torch
from torch._dynamo.backends.common import aot_autograd
from torch._functorch.aot_autograd import make_boxed_func

from .. import config
from ..frontend.attention import rewrite_attention
from ..frontend.decompositions import decomposition_table
from ..frontend.linear_cross_entropy import rewrite_linear_cross_entropy
from ..log import log
from ..records import new_record
from ..runtime import lifetime
from .driver import compile_fx_graph
from .fallback import fall_back, internal_error
from .frozen_heap import old_objects_set_aside
from .memory_budget import partition


def _compiler(kind: str):
    def compile_graph(gm, example_inputs):
        return make_boxed_func(compile_fx_graph(gm, example_inputs, kind))
    return compile_graph


@functools.lru_cache(maxsize=2)
def _aot_backend(fuse_attention: bool):
    return aot_autograd(fw_compiler=_compiler("forward"), bw_compiler=_compiler("backward"),
                        inference_compiler=_compiler("inference"),
                        decompositions=decomposition_table(fuse_attention),
                        partition_fn=partition)


def _tracing_context(fused: bool, on_cuda: bool):
    """Which kernels scaled_dot_product_attention may trace to. Without attention fusion, its math.
    With it, a fused kernel whose results are all tensors (CUDA's flash and cuDNN kernels also
    return integers, which a library step cannot hand on; memory-efficient attention is used there)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    if not fused:
        return sdpa_kernel([SDPBackend.MATH])
    if on_cuda:
        return sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
    return contextlib.nullcontext()


def tensorsmith_backend(gm: torch.fx.GraphModule, example_inputs, **kwargs):
    """Entry point for `torch.compile(model, backend="tensorsmith")`. An exception in our attention
    rewrite or in AOTAutograd's tracing with our decompositions runs the Dynamo graph as captured
    (reported and warned), except the ones Dynamo turns into a graph break or a restart itself.
    `torch.compile(mode=...)` is Inductor's setting: tensorsmith takes none (it replays CUDA graphs
    by default, as "reduce-overhead" asks), so a mode is logged and dropped, not handed on."""
    mode = kwargs.pop("mode", None)
    if mode not in (None, "default"):
        log(1, f"torch.compile(mode={mode!r}) is Inductor's setting; tensorsmith ignores it "
               f"(CUDA graphs are on unless TENSORSMITH_CUDA_GRAPHS=0)")
    try:
        with old_objects_set_aside():
            return _compile(gm, example_inputs, **kwargs)
    except _dynamo_handles():
        raise
    except Exception as e:  # noqa: BLE001 - never the user's crash; TENSORSMITH_STRICT=1 re-raises
        if config.strict:
            raise
        return fall_back(gm, new_record("dynamo"), f"internal error before import, {internal_error(e)}")


@functools.cache
def _dynamo_handles() -> tuple:
    """Exceptions Dynamo expects from a backend and handles (a graph break at a data-dependent op,
    a restart of its analysis, a skipped frame)."""
    from torch._dynamo import exc
    names = ("TensorifyScalarRestartAnalysis", "ShortenTraceback", "SkipFrame", "RestartAnalysis")
    return tuple(getattr(exc, n) for n in names if hasattr(exc, n)) + \
        tuple(getattr(exc, "exceptions_allowed_to_be_fallback", ()))


def _compile(gm: torch.fx.GraphModule, example_inputs, **kwargs):
    lifetime.own(example_inputs)
    on_cuda = any(isinstance(x, torch.Tensor) and x.is_cuda for x in example_inputs)
    cuda_autocast = on_cuda and torch.is_autocast_enabled("cuda")
    fused = config.fuse_attention and (config.fuse_attention_cuda_autocast or not cuda_autocast)
    if fused:
        gm = rewrite_attention(gm, example_inputs)
    if config.fuse_linear_cross_entropy:
        gm = rewrite_linear_cross_entropy(gm, example_inputs)
    # Under CUDA autocast the scaled_dot_product_attention calls left to PyTorch trace to its math:
    # the memory-efficient kernel's bfloat16 results came back wrong through our CUDA runtime.
    pytorch_kernels = fused and not cuda_autocast
    with _tracing_context(pytorch_kernels, on_cuda):
        return _aot_backend(fused)(gm, example_inputs, **kwargs)


def register() -> None:
    """Register under "tensorsmith", unless Dynamo has found the package's entry point: then it
    registers the name itself when it loads it (which imports this package: registering here too
    would make its own registration fail as a duplicate)."""
    from torch._dynamo.backends.registry import _BACKENDS, _COMPILER_FNS, register_backend

    if "tensorsmith" not in _COMPILER_FNS and _BACKENDS.get("tensorsmith") is None:
        register_backend(name="tensorsmith")(tensorsmith_backend)
