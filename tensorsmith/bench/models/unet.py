"""The `diffusers` UNet2DConditionModel (ResNet blocks, self- and cross-attention transformer
blocks, timestep embedding), from a config with random weights; trained on the noise-prediction
MSE loss as in Stable Diffusion."""
from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from ..workload import Workload, to_device

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def unet(size: str, device) -> Workload:
    from diffusers import UNet2DConditionModel

    if size == "tiny":
        config, batch, text = dict(sample_size=16, block_out_channels=(32, 64), layers_per_block=1,
                                   down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                   up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                   cross_attention_dim=32, attention_head_dim=8,
                                   norm_num_groups=8), 2, 8
    else:  # Stable Diffusion 1.x geometry (860M), 64x64 latents, 77 text tokens
        config, batch, text = dict(sample_size=64, block_out_channels=(320, 640, 1280, 1280),
                                   layers_per_block=2, cross_attention_dim=768,
                                   attention_head_dim=8), 2, 77
    model = UNet2DConditionModel(in_channels=4, out_channels=4, **config)
    gen = torch.Generator().manual_seed(0)
    side = config["sample_size"]
    inputs = {"sample": torch.randn(batch, 4, side, side, generator=gen),
              "timestep": torch.randint(0, 1000, (batch,), generator=gen),
              "encoder_hidden_states": torch.randn(batch, text, config["cross_attention_dim"],
                                                   generator=gen)}
    inputs = to_device(inputs, device)
    noise = torch.randn(batch, 4, side, side, generator=gen).to(device)

    def loss(output):
        sample = output.sample if hasattr(output, "sample") else output[0]
        return F.mse_loss(sample, noise.to(sample.dtype))

    return Workload(model.to(device), inputs, dict(inputs),
                    f"UNet2DCondition {config['block_out_channels']}, {side}x{side} latents, "
                    f"batch {batch}", loss=loss, batch=batch)
