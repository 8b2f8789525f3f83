"""A worker process that compiles Triton kernels into Triton's on-disk cache (workers.py starts it).

Compiling in threads of the compiling process serializes on the GIL: GPT-2 small's first step
waited ~11 s for its kernels on the H100 machine. Here each kernel is compiled in a process of its
own, for the GPU target the parent names, without touching the GPU (no CUDA context), and the parent
then loads it from the cache as its first launch would.

Run as a script (`python compile_worker.py`), not as a module of the package: importing the package
imports torch and Dynamo, seconds a worker needs only for the kernels that live in the package.

Protocol: on stdin, length-prefixed pickles of jobs (module name, module file, kernel name,
specialization data as Triton's jit_cache_hook serializes it, target); on the original stdout, one
length-prefixed pickle per job: None when compiled, else the error's text. Anything the compiler
prints goes to stderr.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pickle
import struct
import sys
import traceback

_HEADER = struct.Struct("<Q")


def read_message(stream):
    """One length-prefixed pickle from `stream`, or None at its end."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    return pickle.loads(stream.read(_HEADER.unpack(header)[0]))


def write_message(stream, message) -> None:
    data = pickle.dumps(message)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _module(name: str, path: str | None):
    """The kernel's module: already imported, importable by name, or loaded from its file under the
    same name (generated modules: Triton resolves a kernel's globals through its module)."""
    if name in sys.modules:
        return sys.modules[name]
    if path is None:
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def _constant(value):
    """A constexpr as the JIT passed it, from its JSON form (dtypes by name, wrapped constexprs)."""
    import triton.language as tl

    if isinstance(value, str) and tl.dtype.is_dtype(value):
        return tl.dtype(value)
    if isinstance(value, dict) and "constexpr" in value:
        return tl.constexpr(_as_tuples(value["constexpr"]))
    return _as_tuples(value)


def compile_kernel(module_name: str, module_path: str | None, kernel_name: str, specialization: str,
                   target: dict) -> None:
    """Compile one kernel for `target` into Triton's cache, from the data the JIT's cache hook was
    given for it, so that the parent's own compile of it finds it there."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile, make_backend

    kernel = getattr(_module(module_name, module_path), kernel_name)
    data = json.loads(specialization)
    constants = {tuple(k): _constant(v) for k, v in zip(data["constant_keys"], data["constant_vals"])}
    attrs = {tuple(k): v for k, v in zip(data["attrs_keys"], data["attrs_vals"])}
    signature = {k: _as_tuples(v) for k, v in data["signature"].items()}
    gpu = GPUTarget(**target)
    options = make_backend(gpu).parse_options({k: _as_tuples(v) for k, v in data["options"].items()})
    compile(ASTSource(kernel, signature, constants, attrs), target=gpu, options=options.__dict__)


def serve(jobs, results) -> None:
    while (job := read_message(jobs)) is not None:
        try:
            compile_kernel(*job)
            write_message(results, None)
        except Exception as e:  # noqa: BLE001 - reported to the parent, which compiles it itself
            write_message(results, f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}")


def main() -> None:
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # this directory's modules (build.py, emit.py) must not shadow others
    results = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # prints from the compiler go to stderr
    serve(sys.stdin.buffer, results)


if __name__ == "__main__":
    main()
