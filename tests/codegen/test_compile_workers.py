"""Triton kernels compiled in worker processes (codegen/triton/workers.py, compile_worker.py): a
worker compiles a kernel for an H100's target, without a GPU, into Triton's on-disk cache, from the
data Triton's JIT hands its cache hook; compiling the same kernel here is then a cache hit."""
from __future__ import annotations

import os
import textwrap

import pytest

KERNELS = textwrap.dedent('''\
    import triton
    import triton.language as tl


    @triton.jit
    def scaled_add(x, y, out, n, alpha, BLOCK: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        keep = i < n
        tl.store(out + i, tl.load(x + i, mask=keep) * alpha + tl.load(y + i, mask=keep), mask=keep)
''')


@pytest.fixture
def kernels_module(tmp_path, monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path / "triton-cache"))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    path = tmp_path / "kernels.py"
    path.write_text(KERNELS)
    from tensorsmith.codegen.triton.compile_worker import _module

    return _module("tensorsmith_triton_test_workers", str(path)), str(path)


def _job(module, path, block: int):
    """What the JIT's cache hook would be handed for scaled_add on an H100 (serialized by Triton)."""
    import inspect

    from triton.backends.compiler import GPUTarget
    from triton.compiler import make_backend
    from triton.runtime.jit import serialize_specialization_data

    target = GPUTarget("cuda", 90, 32)
    signature = {"x": "*fp32", "y": "*fp32", "out": "*fp32", "n": "i32", "alpha": "fp32", "BLOCK": "constexpr"}
    options = make_backend(target).parse_options({"num_warps": 4})
    args = ("scaled_add", signature, {(5,): block}, {}, options, "key")
    if "target" in inspect.signature(serialize_specialization_data).parameters:
        args += (target,)
    data = serialize_specialization_data(*args)
    return (module.__name__, path, "scaled_add", data, dict(target.__dict__)), (signature, options, target)


def _cached_files(root) -> set[str]:
    return {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}


def test_a_worker_compiles_into_the_cache_that_compiling_here_then_hits(kernels_module, tmp_path):
    from triton.compiler import ASTSource
    from triton.compiler import compile as triton_compile

    from tensorsmith.codegen.triton.workers import WorkerPool

    module, path = kernels_module
    block = 64 * (1 + os.getpid() % 4)  # fresh per run: nothing cached before
    job, (signature, options, target) = _job(module, path, block)
    workers = WorkerPool(1)
    try:
        assert workers.submit(job).result(timeout=300) is None
        cached = _cached_files(tmp_path / "triton-cache")
        assert any(f.endswith(".cubin") for f in cached)
        here = triton_compile(ASTSource(module.scaled_add, signature, {(5,): block}, {}), target=target,
                              options=options.__dict__)
        assert _cached_files(tmp_path / "triton-cache") == cached  # a hit: nothing compiled here
        assert "scaled_add" in here.asm["ptx"]

        bad = (job[0], job[1], "no_such_kernel", *job[3:])
        assert "no_such_kernel" in workers.submit(bad).result(timeout=60)  # reported, not fatal
        assert workers.submit(job).result(timeout=60) is None  # the worker goes on
    finally:
        workers.close()
    assert all(w.process.poll() is not None for w in workers.workers)  # closed with its input
