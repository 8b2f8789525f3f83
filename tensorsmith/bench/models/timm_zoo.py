"""timm image classifiers built with random weights by `timm.create_model(pretrained=False)`:
ResNet-50, EfficientNet-B0, MobileNetV3-Large, RegNetY-800MF, ConvNeXt-T, Swin-T and ViT-B/16, the
convolutional, depthwise/squeeze-excite and (windowed) attention vision models that people compile.

"real" is each one's published geometry (224px, 1000 classes, batch 32). "tiny" keeps the model's
own blocks but shrinks it, through create_model's keyword arguments or the family's smallest
registered variant, to < 2M parameters on 32x32 images (64x64 for the BatchNorm CNNs), 10
classes, batch 2 (CPU and CI).

Randomness is off, for comparison with eager (and the float64 reference): drop_rate,
drop_path_rate (stochastic depth) and attention/projection dropout are 0. BatchNorm stays in
training mode in a training step. timm's forward takes only `x`, so the labels of the
cross-entropy loss are closed over by `loss`, not passed to the model. So that every weight has a
gradient to compare in the first step, ResNet and RegNet don't zero their blocks' last BatchNorm
scale, and the tiny ConvNeXt starts layer scale at 1.

Importing this module lets torchvision import beside a CPU-only torch whose ops it cannot load
(`torchvision_without_ops`): timm needs torchvision, and so does transformers once installed.
"""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..torchvision_stubs import torchvision_without_ops
from ..workload import Workload, to_device

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Every source of randomness in a forward pass, off (Swin's default drop_path_rate is 0.1).
NO_DROPOUT = dict(drop_rate=0.0, drop_path_rate=0.0)
NO_ATTN_DROPOUT = dict(NO_DROPOUT, attn_drop_rate=0.0, proj_drop_rate=0.0)
NO_VIT_DROPOUT = dict(NO_ATTN_DROPOUT, pos_drop_rate=0.0, patch_drop_rate=0.0)

# The tiny BatchNorm CNNs see 64px: at 32px their last stage is 1x1, where BatchNorm normalizes
# the 2 values of a batch per channel and float32 gradients stray ~1e-2 from float64 (1e-4 here).
BATCHNORM_SIDE = 64

def import_timm():
    """`import timm`, after `torchvision_without_ops` (bench/torchvision_stubs.py)."""
    torchvision_without_ops()
    import timm
    return timm


def _classifier(size: str, device, real: str, tiny: str, tiny_kwargs: dict, tiny_summary: str,
                no_dropout: dict = NO_DROPOUT, kwargs: dict | None = None,
                tiny_side: int = 32) -> Workload:
    """A timm classifier on seeded images, trained on cross-entropy against seeded labels;
    `kwargs` go to both sizes, `tiny_kwargs` to the tiny one."""
    timm = import_timm()
    kwargs = dict(no_dropout, **(kwargs or {}))
    if size == "tiny":
        name, side, classes, batch = tiny, tiny_side, 10, 2
        kwargs.update(tiny_kwargs)
        summary = f"timm {tiny_summary}, {side}px, {classes} classes, batch {batch}"
    else:
        name, side, classes, batch = real, 224, 1000, 32
        summary = f"timm {real}, {side}px, {classes} classes, batch {batch}"
    model = timm.create_model(name, pretrained=False, num_classes=classes, **kwargs)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, side, side, generator=gen)
    labels = torch.randint(0, classes, (batch,), generator=gen).to(device)
    inputs = to_device({"x": x}, device)

    def loss(logits):
        return F.cross_entropy(logits, labels)

    return Workload(model.to(device), inputs, dict(inputs), summary, loss=loss, batch=batch)


def timm_resnet(size: str, device) -> Workload:
    # timm zero-initializes each block's last BatchNorm scale (RegNet's too), which leaves the
    # first step's gradients of the block's other weights exactly 0, nothing to compare: not here.
    return _classifier(size, device, "resnet50", "resnet50",
                       dict(layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16),
                       "resnet50 blocks (Bottleneck) 1-1-1-1, widths 16-128",
                       kwargs=dict(zero_init_last=False), tiny_side=BATCHNORM_SIDE)


def timm_efficientnet(size: str, device) -> Workload:
    # efficientnet_b0 fixes its width/depth multipliers; tinynet_e is the same EfficientNet
    # (MBConv, squeeze-excite, SiLU) at width 0.51, depth 0.6.
    return _classifier(size, device, "efficientnet_b0", "tinynet_e", {},
                       "tinynet_e (EfficientNet at width 0.51, depth 0.6)",
                       tiny_side=BATCHNORM_SIDE)


def timm_mobilenetv3(size: str, device) -> Workload:
    # The large variant fixes its width; the small one at width 0.5 has the same blocks
    # (inverted residuals, hard-swish, hard-sigmoid squeeze-excite).
    return _classifier(size, device, "mobilenetv3_large_100", "mobilenetv3_small_050", {},
                       "mobilenetv3_small_050", tiny_side=BATCHNORM_SIDE)


def timm_regnet(size: str, device) -> Workload:
    # RegNet's keyword arguments overlay its RegNetCfg: 6 RegNetY blocks (squeeze-excite) in
    # 4 stages (1-1-3-1) of widths 16-128.
    return _classifier(size, device, "regnety_008", "regnety_008",
                       dict(depth=6, w0=16, wa=16.0, wm=2.0, group_size=8),
                       "RegNetY, depth 6, widths 16-128", kwargs=dict(zero_init_last=False),
                       tiny_side=BATCHNORM_SIDE)


def timm_convnext(size: str, device) -> Workload:
    # Tiny starts layer scale at 1, not 1e-6, so the loss depends on the blocks' weights enough
    # for a comparison with eager to see them.
    return _classifier(size, device, "convnext_tiny", "convnext_tiny",
                       dict(depths=(1, 1, 2, 1), dims=(16, 32, 64, 128), ls_init_value=1.0),
                       "ConvNeXt, depths 1-1-2-1, dims 16-128, layer scale init 1")


def timm_swin(size: str, device) -> Workload:
    # Patch 2 and window 4 on 32px leave 16x16 then 8x8 tokens, so both stages shift windows.
    return _classifier(size, device, "swin_tiny_patch4_window7_224",
                       "swin_tiny_patch4_window7_224",
                       dict(img_size=32, patch_size=2, window_size=4, embed_dim=32, depths=(2, 2),
                            num_heads=(2, 4)),
                       "Swin (patch 2, window 4, dim 32, depths 2-2, heads 2-4)",
                       no_dropout=NO_ATTN_DROPOUT)


def timm_vit(size: str, device) -> Workload:
    return _classifier(size, device, "vit_base_patch16_224", "vit_base_patch16_224",
                       dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2),
                       "ViT (patch 8, dim 32, depth 2, heads 2)", no_dropout=NO_VIT_DROPOUT)


def _entry(name: str, timm_model: str, build) -> dict:
    return dict(name=name, family="timm", description=f"timm {timm_model} (real: 224px, batch 32)",
                build=build, requires=("timm",))


ZOO_ENTRIES = [
    _entry("timm_resnet", "resnet50", timm_resnet),
    _entry("timm_efficientnet", "efficientnet_b0", timm_efficientnet),
    _entry("timm_mobilenetv3", "mobilenetv3_large_100", timm_mobilenetv3),
    _entry("timm_regnet", "regnety_008", timm_regnet),
    _entry("timm_convnext", "convnext_tiny", timm_convnext),
    _entry("timm_swin", "swin_tiny_patch4_window7_224", timm_swin),
    _entry("timm_vit", "vit_base_patch16_224", timm_vit),
]
