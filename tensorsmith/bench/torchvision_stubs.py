"""A CUDA build of torchvision beside a CPU build of torch (what pip installs for timm on the CPU
machines: PyPI's torchvision wheels are CUDA builds) fails at `import torchvision`, and with it
every `transformers` and `diffusers` import. `torchvision_without_ops` lets it import there."""
from __future__ import annotations

import sys

import torch

_torchvision_stubs = None  # the Library that defines them must stay alive, or they go away


def torchvision_without_ops() -> bool:
    """Let torchvision import where its compiled ops cannot load beside this torch; True if so.

    PyPI's torchvision wheels are CUDA builds: beside a CPU-only torch their `_C` extension does
    not load (it links libtorch_cuda.so), and `import torchvision` then dies registering a fake
    kernel for `torchvision::nms`, an op only `_C` defines ("operator torchvision::nms does not
    exist"). That breaks not only timm (which imports torchvision at import) but every
    `transformers` model class, since transformers imports torchvision whenever it is installed.
    Where torch is a CPU build and `_C` fails to load, this defines the two schemas
    (nms, qnms) that the import registers kernels for; nothing calls them (timm and transformers
    use torchvision's Python layers and transforms). It must run before anything imports
    torchvision, so it is called early (tests/conftest.py; bench/zoo.py at import), not only
    before `import timm`. A no-op with a CUDA torch, without torchvision, once torchvision has
    imported, or once done.
    """
    global _torchvision_stubs
    import importlib.util
    from pathlib import Path

    if (_torchvision_stubs is not None or torch.version.cuda is not None
            or "torchvision" in sys.modules):
        return False
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return False
    lib = next(Path(spec.submodule_search_locations[0]).glob("_C.*"), None)
    if lib is None:
        return False
    try:
        torch.ops.load_library(str(lib))  # torchvision's own import would load it the same way
        return False
    except Exception:  # noqa: BLE001 (OSError, or torch's own error, by version)
        pass
    _torchvision_stubs = torch.library.Library("torchvision", "FRAGMENT")
    _torchvision_stubs.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _torchvision_stubs.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    return True
