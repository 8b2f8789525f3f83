"""`python -m tensorsmith.bench.source_digests`: digests of the generated kernel sources.

A refactor that should change no generated code shows it: run this before and after, on the same
machine, and compare the printed digests. It compiles the codegen test cases (the cases of
tests/codegen, through pytest) and the nanoGPT default model (a training step and inference, tiny
on the CPU, GPT-2-small geometry on a GPU), keeping every module source the C++ and Triton emitters
return, and prints their digests per group (sorted: the order graphs compile in may differ).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pathlib
import pkgutil
import subprocess
import sys
import tempfile

_KEEP = "TENSORSMITH_KEEP_SOURCES"
_MODEL = r"""
import sys, torch
from tensorsmith.bench import source_digests, zoo
source_digests.keep_sources()
import tensorsmith
device, size, precision = sys.argv[1:4]
work = zoo.build("nanogpt", size, device)
with torch.autocast("cuda", torch.bfloat16, enabled=precision == "bf16"):
    work.loss(torch.compile(work.model, backend="tensorsmith")(**work.train_inputs)).backward()
    with torch.no_grad():
        torch.compile(work.model, backend="tensorsmith")(**work.infer_inputs)
"""

def keep_sources() -> None:
    """Wrap both emitters' `emit_module`, wherever a module holds it by name, so that each source
    they return is also written to the folder in $TENSORSMITH_KEEP_SOURCES."""
    from ..codegen.cpp import emit as cpp_emit
    from ..codegen.triton import emit as triton_emit
    import tensorsmith

    for info in pkgutil.walk_packages(tensorsmith.__path__, "tensorsmith."):
        if not info.name.startswith(("tensorsmith.bench", "tensorsmith.data")):
            importlib.import_module(info.name)  # each compiler module that binds an emitter
    folder = pathlib.Path(os.environ[_KEEP])
    for emit, suffix in ((cpp_emit.emit_module, "cpp"), (triton_emit.emit_module, "py")):
        def keeping(*args, _emit=emit, _suffix=suffix, **kwargs):
            source = _emit(*args, **kwargs)
            digest = hashlib.sha256(source.encode()).hexdigest()
            (folder / f"{digest}.{_suffix}").write_text(source)
            return source
        for module in list(sys.modules.values()):
            if getattr(module, "emit_module", None) is emit:
                module.emit_module = keeping


def pytest_configure(config) -> None:
    """As a pytest plugin (`-p tensorsmith.bench.source_digests`): keep the sources of the run."""
    keep_sources()


def _digests(folder: pathlib.Path) -> list[str]:
    return sorted(p.stem[:16] for p in folder.iterdir())


def _run(argv: list[str], keep: pathlib.Path, **env) -> None:
    keep.mkdir(parents=True)
    env = {**os.environ, _KEEP: str(keep), **env}
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def collect(device: str, work: pathlib.Path) -> dict[str, list[str]]:
    """Digests per group: the codegen test cases, and the default model per executor/precision."""
    groups = {}
    if device == "cpu":
        _run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider",
              "-p", "tensorsmith.bench.source_digests", "--hypothesis-seed=0", "tests/codegen"], work / "cases", TRITON_INTERPRET="1")
        groups["codegen test cases"] = _digests(work / "cases")
        runs = [("cpp", "tiny", "fp32", {}),
                ("triton", "tiny", "fp32", {"TENSORSMITH_EXECUTOR": "triton", "TRITON_INTERPRET": "1"})]
    else:
        runs = [("triton", "real", "fp32", {}), ("triton", "real", "bf16", {})]
    for executor, size, precision, env in runs:
        name = f"nanogpt {size} {executor} {precision}"
        folder = work / name.replace(" ", "_")
        _run([sys.executable, "-c", _MODEL, device, size, precision], folder, **env)
        groups[name] = _digests(folder)
    return groups


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the digests to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        groups = collect(args.device, pathlib.Path(work))
    for name, digests in groups.items():
        whole = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:16]
        print(f"{name:34s} {len(digests):4d} sources  {whole}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(groups, indent=1))


if __name__ == "__main__":
    main()
