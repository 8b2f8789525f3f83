"""`diffusers` models besides the UNet (models/unet.py): the SD VAE (AutoencoderKL), DiT, the SD3
and Flux MM-DiT transformers and a ControlNet, from configs with random weights (never a
download), on seeded latents, timesteps, labels and text states. They bring what the UNet lacks:
a convolutional autoencoder at full image resolution, adaLN-Zero and joint (text + image)
attention with rotary or learned positions, and a multi-output conditioning network.

"real" keeps the published channel widths and input sizes (SD-1.5, DiT-XL/2, SD3-medium,
Flux.1-dev); the large transformers keep fewer of their layers so a compile stays short on a GPU,
and each summary says how many. "tiny" is < 2M parameters on 8x8 or 16x16 latents, batch 2.

Randomness is off, for comparison with eager (and the float64 reference): every dropout is 0
and DiT's class-label dropout (classifier-free guidance training) is disabled; the VAE uses the
posterior's mode, not a sample. Losses close over their seeded targets (as unet.py does).
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..workload import Workload, to_device
from ..torchvision_stubs import torchvision_without_ops

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torchvision_without_ops()  # diffusers imports transformers, which imports torchvision: see there


def _deterministic(model: nn.Module) -> nn.Module:
    """Every dropout off: nn.Dropout layers and label dropout (LabelEmbedding.dropout_prob)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        if isinstance(getattr(module, "dropout_prob", None), float):
            module.dropout_prob = 0.0
    return model


def _sample(output) -> torch.Tensor:
    """The `.sample` of a diffusers output, or the first element of its tuple form."""
    return output.sample if hasattr(output, "sample") else output[0]


def _regression(target: torch.Tensor):
    """A loss: the MSE of the model's sample against a seeded target."""
    def loss(output):
        sample = _sample(output)
        return F.mse_loss(sample, target.to(sample.dtype))
    return loss


class VAE(nn.Module):
    """AutoencoderKL in its two uses: `sample` (images) -> reconstruction through encoder and
    decoder (the posterior's mode), as it is trained; `latents` -> decoded images, the VAE's
    part of text-to-image inference."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, sample: torch.Tensor | None = None, latents: torch.Tensor | None = None):
        if latents is not None:
            return self.vae.decode(latents).sample
        return self.vae(sample, sample_posterior=False).sample


def vae(size: str, device) -> Workload:
    from diffusers import AutoencoderKL

    if size == "tiny":  # 32px images <-> 16x16 latents
        config, side, latent_side, batch = dict(block_out_channels=(16, 32), layers_per_block=1,
                                                norm_num_groups=8), 32, 16, 2
    else:  # Stable Diffusion 1.x VAE (83M): trained on 256px crops, decodes 64x64 latents (512px)
        config, side, latent_side, batch = dict(block_out_channels=(128, 256, 512, 512),
                                                layers_per_block=2, norm_num_groups=32), 256, 64, 4
    depth = len(config["block_out_channels"])
    model = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=side,
                          down_block_types=("DownEncoderBlock2D",) * depth,
                          up_block_types=("UpDecoderBlock2D",) * depth, **config)
    model = _deterministic(VAE(model))
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, side, side, generator=gen) * 2 - 1
    latents = torch.randn(batch, 4, latent_side, latent_side, generator=gen)
    train, infer = to_device({"sample": images}, device), to_device({"latents": latents}, device)
    target = train["sample"]

    def loss(output):
        return F.mse_loss(output, target.to(output.dtype))

    return Workload(model.to(device), train, infer,
                    f"AutoencoderKL {config['block_out_channels']}, "
                    f"{config['layers_per_block']} layers/block: train = reconstruction MSE of "
                    f"{side}px images, infer = decode of {latent_side}x{latent_side} latents "
                    f"({latent_side * 2 ** (depth - 1)}px), batch {batch}", loss=loss, batch=batch)


def dit(size: str, device) -> Workload:
    from diffusers import DiTTransformer2DModel

    if size == "tiny":
        config, layers_of, batch = dict(num_layers=2, num_attention_heads=2, attention_head_dim=16,
                                        sample_size=8), "", 2
    else:  # DiT-XL/2 width (1152 = 16 x 72) at 256px (32x32 latents), 12 of its 28 layers
        config, layers_of, batch = dict(num_layers=12, num_attention_heads=16,
                                        attention_head_dim=72, sample_size=32), " of 28", 8
    # Learned sigma: 8 output channels, noise prediction in the first 4.
    model = _deterministic(DiTTransformer2DModel(in_channels=4, out_channels=8, patch_size=2,
                                                 num_embeds_ada_norm=1000, **config))
    gen = torch.Generator().manual_seed(0)
    side = config["sample_size"]
    inputs = to_device({"hidden_states": torch.randn(batch, 4, side, side, generator=gen),
                        "timestep": torch.randint(0, 1000, (batch,), generator=gen),
                        "class_labels": torch.randint(0, 1000, (batch,), generator=gen)}, device)
    # The noise, and for the variance half (DiT trains it by a VLB term) a seeded target, so
    # that every weight has a gradient.
    target = torch.randn(batch, 8, side, side, generator=gen).to(device)
    width = config["num_attention_heads"] * config["attention_head_dim"]
    return Workload(model.to(device), inputs, dict(inputs),
                    f"DiT {config['num_layers']}{layers_of} layers x {width}, patch 2, "
                    f"{side}x{side} latents, 1000 classes, batch {batch}",
                    loss=_regression(target), batch=batch)


def sd3(size: str, device) -> Workload:
    from diffusers import SD3Transformer2DModel

    if size == "tiny":
        config, text, layers_of, batch = dict(
            num_layers=2, num_attention_heads=4, attention_head_dim=8, in_channels=4,
            out_channels=4, joint_attention_dim=32, caption_projection_dim=32,
            pooled_projection_dim=16, sample_size=16, pos_embed_max_size=16), 8, "", 2
    else:  # SD3-medium width (1536 = 24 x 64) at 1024px (128x128 latents), 6 of its 24 layers;
        # text: 77 CLIP + 256 T5 tokens of 4096, pooled CLIP 2048
        config, text, layers_of, batch = dict(
            num_layers=6, num_attention_heads=24, attention_head_dim=64, in_channels=16,
            out_channels=16, joint_attention_dim=4096, caption_projection_dim=1536,
            pooled_projection_dim=2048, sample_size=128, pos_embed_max_size=192), 333, " of 24", 2
    model = _deterministic(SD3Transformer2DModel(patch_size=2, **config))
    gen = torch.Generator().manual_seed(0)
    side, channels = config["sample_size"], config["in_channels"]
    inputs = to_device({
        "hidden_states": torch.randn(batch, channels, side, side, generator=gen),
        "encoder_hidden_states": torch.randn(batch, text, config["joint_attention_dim"],
                                             generator=gen),
        "pooled_projections": torch.randn(batch, config["pooled_projection_dim"], generator=gen),
        "timestep": torch.randint(0, 1000, (batch,), generator=gen)}, device)
    target = torch.randn(batch, channels, side, side, generator=gen).to(device)  # flow target
    width = config["num_attention_heads"] * config["attention_head_dim"]
    return Workload(model.to(device), inputs, dict(inputs),
                    f"SD3 MM-DiT {config['num_layers']}{layers_of} layers x {width}, "
                    f"{side}x{side}x{channels} latents, {text} text tokens, batch {batch}",
                    loss=_regression(target), batch=batch)


def flux(size: str, device) -> Workload:
    from diffusers import FluxTransformer2DModel

    if size == "tiny":
        config, text, side, layers_of, batch = dict(
            num_layers=1, num_single_layers=2, num_attention_heads=2, attention_head_dim=16,
            in_channels=16, joint_attention_dim=32, pooled_projection_dim=16,
            axes_dims_rope=(4, 6, 6)), 8, 16, ("", ""), 2
    else:  # Flux.1-dev width (3072 = 24 x 128) at 1024px (128x128x16 latents packed 2x2 into
        # 4096 tokens), 2 of its 19 double-stream and 4 of its 38 single-stream blocks;
        # text: 512 T5 tokens of 4096, pooled CLIP 768
        config, text, side, layers_of, batch = dict(
            num_layers=2, num_single_layers=4, num_attention_heads=24, attention_head_dim=128,
            in_channels=64, joint_attention_dim=4096, pooled_projection_dim=768,
            axes_dims_rope=(16, 56, 56)), 512, 128, (" of 19", " of 38"), 1
    # The rotary axes split a head's dimension; guidance_embeds: Flux.1-dev's distilled guidance.
    model = _deterministic(FluxTransformer2DModel(patch_size=1, guidance_embeds=True, **config))
    gen = torch.Generator().manual_seed(0)
    channels = config["in_channels"]  # 2x2 patches of (channels // 4)-channel latents
    rows = cols = side // 2
    img_ids = torch.zeros(rows, cols, 3)
    img_ids[..., 1] = torch.arange(rows)[:, None]
    img_ids[..., 2] = torch.arange(cols)[None, :]
    inputs = to_device({
        "hidden_states": torch.randn(batch, rows * cols, channels, generator=gen),
        "encoder_hidden_states": torch.randn(batch, text, config["joint_attention_dim"],
                                             generator=gen),
        "pooled_projections": torch.randn(batch, config["pooled_projection_dim"], generator=gen),
        "timestep": torch.rand(batch, generator=gen),  # Flux takes t in [0, 1]
        "img_ids": img_ids.reshape(rows * cols, 3),
        "txt_ids": torch.zeros(text, 3),
        "guidance": torch.full((batch,), 3.5)}, device)
    target = torch.randn(batch, rows * cols, channels, generator=gen).to(device)  # flow target
    width = config["num_attention_heads"] * config["attention_head_dim"]
    return Workload(model.to(device), inputs, dict(inputs),
                    f"Flux MM-DiT {config['num_layers']}{layers_of[0]} double + "
                    f"{config['num_single_layers']}{layers_of[1]} single blocks x {width}, "
                    f"{rows * cols} image + {text} text tokens, guidance-distilled, batch {batch}",
                    loss=_regression(target), batch=batch)


def controlnet(size: str, device) -> Workload:
    from diffusers import ControlNetModel

    if size == "tiny":
        config, side, text, batch = dict(
            block_out_channels=(32, 64), layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), cross_attention_dim=32,
            attention_head_dim=8, norm_num_groups=8,
            conditioning_embedding_out_channels=(8, 8, 16, 16)), 16, 8, 2
    else:  # SD-1.x ControlNet (361M): 64x64 latents, a 512px condition image, 77 text tokens
        config, side, text, batch = dict(
            block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
            attention_head_dim=8), 64, 77, 2
    model = ControlNetModel(in_channels=4, conditioning_channels=3, **config)
    # ControlNet starts its output convolutions (and its condition encoder's last) at zero, so
    # that training begins at the UNet's behaviour: every output would be 0 and every other
    # gradient too. They get PyTorch's default initialization instead.
    for module in (*model.controlnet_down_blocks, model.controlnet_mid_block,
                   model.controlnet_cond_embedding.conv_out):
        module.reset_parameters()
    model = _deterministic(model)
    gen = torch.Generator().manual_seed(0)
    image = side * 8  # the condition image is at pixel resolution: 3 stride-2 convs to latents
    inputs = to_device({
        "sample": torch.randn(batch, 4, side, side, generator=gen),
        "timestep": torch.randint(0, 1000, (batch,), generator=gen),
        "encoder_hidden_states": torch.randn(batch, text, config["cross_attention_dim"],
                                             generator=gen),
        "controlnet_cond": torch.rand(batch, 3, image, image, generator=gen)}, device)

    def loss(output):
        """The mean square of every residual it hands the UNet (down blocks and mid block)."""
        if hasattr(output, "down_block_res_samples"):
            residuals = (*output.down_block_res_samples, output.mid_block_res_sample)
        else:
            residuals = (*output[0], output[1])
        return sum(r.pow(2).mean() for r in residuals)

    return Workload(model.to(device), inputs, dict(inputs),
                    f"ControlNet {config['block_out_channels']}, {side}x{side} latents, "
                    f"{image}px condition, {text} text tokens, batch {batch}", loss=loss,
                    batch=batch)


ZOO_ENTRIES = [
    dict(name="vae", family="diffusers",
         description="diffusers AutoencoderKL (real: SD-1.x VAE; train 256px reconstruction, "
                     "infer 64x64-latent decode)", build=vae, requires=("diffusers",)),
    dict(name="dit", family="diffusers",
         description="diffusers DiTTransformer2DModel (real: DiT-XL/2 width, 12 of 28 layers, "
                     "256px)", build=dit, requires=("diffusers",)),
    dict(name="sd3", family="diffusers",
         description="diffusers SD3Transformer2DModel (real: SD3-medium width, 6 of 24 layers, "
                     "1024px)", build=sd3, requires=("diffusers",)),
    dict(name="flux", family="diffusers",
         description="diffusers FluxTransformer2DModel (real: Flux.1-dev width, 2+4 of 19+38 "
                     "blocks, 1024px)", build=flux, requires=("diffusers",),
         # The guidance embedding takes sin(1000 g f) in float32 even in the float64 reference
         # (diffusers casts to float32), where one ulp of the argument moves it by 1e-4: eager
         # agrees with that reference exactly, Inductor and tensorsmith differ from both by 1e-4.
         tolerance=3e-4),
    dict(name="controlnet", family="diffusers",
         description="diffusers ControlNetModel (real: SD-1.x ControlNet, 512px condition)",
         build=controlnet, requires=("diffusers",)),
]
