"""The model zoo: a name -> builder registry. Every entry builds a Workload from a config with
random weights (seeded, no downloads) at a named size: "tiny" for CPU and CI, "real" for a GPU
(nanoGPT also has "default", the embedded `make bench` model).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Callable

import torch

from .torchvision_stubs import torchvision_without_ops
from .workload import Workload, to_device

torchvision_without_ops()  # before any builder imports transformers, diffusers or timm


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    build: Callable[[str, object], Workload]  # (size, device) -> Workload
    sizes: tuple[str, ...] = ("tiny", "real")
    requires: tuple[str, ...] = ()  # importable packages it needs
    family: str = "other"  # what `tensorsmith zoo --family` and the CI subset group by
    # A relative tolerance above the run's, where the float64 reference itself runs an
    # ill-conditioned part in float32 (the builder says why); None: the run's.
    tolerance: float | None = None

    def missing(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]


ZOO: dict[str, Entry] = {}

# One small model of each family: what CI sweeps (tests/bench/test_zoo_sweep.py).
CI_SUBSET = ("llama", "mixtral", "bert", "t5", "vit", "clip", "mamba", "timm_resnet", "unet")


def register(entry: Entry) -> Entry:
    ZOO[entry.name] = entry
    return entry


def families() -> set[str]:
    return {e.family for e in ZOO.values()}


def subset() -> list[str]:
    """CI's sweep (`tensorsmith zoo --subset`): one small model of each family, tiny sizes."""
    return [name for name in CI_SUBSET if name in ZOO]


def resolve_size(entry: Entry, size: str, device: str) -> str:
    """"auto" is "real" on a GPU and "tiny" elsewhere; a size an entry lacks falls back to tiny."""
    if size == "auto":
        size = "real" if device.startswith("cuda") else "tiny"
    return size if size in entry.sizes else "tiny"


def build(name: str, size: str, device) -> Workload:
    """Seeded, so every process (and every backend) starts from the same weights and inputs."""
    torch.manual_seed(0)
    return ZOO[name].build(size, device)


def _nanogpt(size: str, device) -> Workload:
    from .models.nanogpt import GPTConfig, NanoGPT, make_batch
    from .models.small import TINY_GPT

    cfg, batch = {"tiny": (TINY_GPT, 2), "default": (GPTConfig(), 8),
                  "real": (GPTConfig(vocab=50304, width=768, layers=12, heads=12, seq=1024), 8)}[size]
    idx, targets = make_batch(cfg, batch, torch.Generator().manual_seed(0))
    return Workload(NanoGPT(cfg).to(device), to_device({"idx": idx, "targets": targets}, device),
                    to_device({"idx": idx}, device),
                    f"nanoGPT {cfg.layers}x{cfg.width}, vocab {cfg.vocab}, seq {cfg.seq}, "
                    f"batch {batch}", batch=batch)


def _resnet(size: str, device) -> Workload:
    from .models.resnet import ResNet

    if size == "tiny":
        widths, blocks, side, classes, batch = (8, 16), (1, 1), 32, 10, 4
    else:
        widths, blocks, side, classes, batch = (64, 128, 256, 512), (2, 2, 2, 2), 224, 1000, 32
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, side, side, generator=gen)
    labels = torch.randint(0, classes, (batch,), generator=gen)
    return Workload(ResNet(widths, blocks, classes).to(device),
                    to_device({"x": x, "labels": labels}, device), to_device({"x": x}, device),
                    f"ResNet widths {widths} blocks {blocks}, {side}px, batch {batch}", batch=batch)


def _hf(name: str):
    def build(size, device):
        from .models import hf
        return getattr(hf, name)(size, device)
    return build


def _unet(size, device):
    from .models.unet import unet
    return unet(size, device)


register(Entry("nanogpt", "the embedded nanoGPT-style causal LM (the `make bench` default)",
               _nanogpt, sizes=("tiny", "default", "real"), family="decoder"))
register(Entry("gpt2", "transformers GPT2LMHeadModel (real: GPT-2 small, seq 1024)", _hf("gpt2"),
               requires=("transformers",), family="decoder"))
register(Entry("llama", "transformers LlamaForCausalLM (real: 24x1024, GQA, seq 1024)",
               _hf("llama"), requires=("transformers",), family="decoder"))
register(Entry("bert", "transformers BertForMaskedLM encoder (real: BERT-base, seq 512)",
               _hf("bert"), requires=("transformers",), family="encoder"))
register(Entry("t5", "transformers T5ForConditionalGeneration encoder-decoder (real: T5-small)",
               _hf("t5"), requires=("transformers",), family="encoder-decoder"))
register(Entry("vit", "transformers ViTForImageClassification (real: ViT-B/16, 224px)", _hf("vit"),
               requires=("transformers",), family="vision"))
register(Entry("unet", "diffusers UNet2DConditionModel with cross-attention (real: SD-1.x geometry)",
               _unet, requires=("diffusers",), family="diffusers"))
register(Entry("resnet", "a plain ResNet-style CNN with BatchNorm (real: ResNet-18, 224px)", _resnet,
               family="vision"))


def _register_listed(module: str, requires: tuple[str, ...]) -> None:
    """The entries a module of models/ lists in its ZOO_ENTRIES (dicts of Entry's fields)."""
    listed = importlib.import_module(f".models.{module}", __package__).ZOO_ENTRIES
    for fields in listed:
        register(Entry(**{"requires": requires, **fields}))


_register_listed("hf_zoo", ("transformers",))
_register_listed("timm_zoo", ("timm",))
_register_listed("diffusers_zoo", ("diffusers",))
