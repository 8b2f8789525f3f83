"""Real models as ONNX files: ResNet-50 (timm), BERT-base and GPT-2 (transformers), built from
their libraries' configs with random weights and exported with `torch.onnx.export`.

`export(name, size, folder)` writes `folder/NAME-SIZE.onnx` (plus its external data) once and
returns the path and example inputs. "tiny" sizes keep the models' structure at a fraction of
their widths and depths, for tests.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .torchvision_stubs import torchvision_without_ops


@dataclass
class Exported:
    path: str
    inputs: dict[str, np.ndarray]


def _resnet50(size: str):
    torchvision_without_ops()
    import timm
    model = timm.create_model("resnet50", pretrained=False) if size == "real" else \
        timm.models.resnet.ResNet(timm.models.resnet.Bottleneck, [1, 1, 1, 1], num_classes=10)
    side = 224 if size == "real" else 64
    image = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    return model, {"pixel_values": image}


def _bert(size: str):
    torchvision_without_ops()
    import transformers
    config = transformers.BertConfig() if size == "real" else transformers.BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        vocab_size=1000)
    model = _LastHidden(transformers.BertModel(config))
    length = 128 if size == "real" else 16
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 1000, (1, length), generator=generator)
    return model, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def _gpt2(size: str):
    torchvision_without_ops()
    import transformers
    config = transformers.GPT2Config(use_cache=False) if size == "real" else transformers.GPT2Config(
        n_layer=2, n_embd=64, n_head=4, vocab_size=1000, n_positions=128, use_cache=False)
    model = _LastHidden(transformers.GPT2LMHeadModel(config))
    length = 128 if size == "real" else 16
    ids = torch.randint(0, 1000, (1, length), generator=torch.Generator().manual_seed(0))
    return model, {"input_ids": ids}


class _LastHidden(torch.nn.Module):
    """A transformers model returning its first output as a tensor (what the exporter takes)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask=None):
        kwargs = {} if attention_mask is None else {"attention_mask": attention_mask}
        return self.model(input_ids, use_cache=False, return_dict=False, **kwargs)[0]


MODELS: dict[str, Callable] = {"resnet50": _resnet50, "bert-base": _bert, "gpt2": _gpt2}


def export(name: str, size: str, folder: str) -> Exported:
    """The model `name` at `size` ("real" or "tiny") as an ONNX file in `folder` (reused if
    there), with example inputs."""
    torch.manual_seed(0)
    model, inputs = MODELS[name](size)
    path = os.path.join(folder, f"{name}-{size}.onnx")
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        with warnings.catch_warnings(), torch.no_grad(), open(os.devnull, "w") as quiet, \
                contextlib.redirect_stdout(quiet):
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), tuple(inputs.values()), path, dynamo=True,
                              input_names=list(inputs), output_names=["output"], verbose=False)
    return Exported(path, {k: v.numpy() for k, v in inputs.items()})
