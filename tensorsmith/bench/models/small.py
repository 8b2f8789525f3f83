"""Small models for tests and the coverage report: an MLP, a UNet-style conv block, tiny nanoGPT,
and tiny Hugging Face models built from configs with random weights (no downloads)."""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from tensorsmith.bench.models.nanogpt import GPTConfig, NanoGPT, make_batch


class MLP(nn.Module):
    def __init__(self, width=32, hidden=64, classes=10):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.Tanh(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)


class ConvBlock(nn.Module):
    """A diffusion-UNet-style residual block: GroupNorm, SiLU, conv, timestep embedding, skip."""

    def __init__(self, channels=8, out_channels=16, groups=4, time_dim=12):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, channels)
        self.conv1 = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.time = nn.Linear(time_dim, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x, t):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(t))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


TINY_GPT = GPTConfig(vocab=64, width=32, layers=2, heads=2, seq=16)


def tiny_nanogpt():
    return NanoGPT(TINY_GPT), make_batch(TINY_GPT, 2)


def hf_causal_lm(kind: str):
    import transformers

    if kind == "gpt2":
        config = transformers.GPT2Config(vocab_size=96, n_positions=32, n_embd=32, n_layer=2,
                                         n_head=2, attn_pdrop=0.0, embd_pdrop=0.0, resid_pdrop=0.0)
        model = transformers.GPT2LMHeadModel(config)
    elif kind == "qwen2":  # Llama's layout with biases on q, k and v
        config = transformers.Qwen2Config(vocab_size=96, hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4,
                                          num_key_value_heads=2, max_position_embeddings=32)
        model = transformers.Qwen2ForCausalLM(config)
    else:
        config = transformers.LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=4,
                                          num_key_value_heads=2, max_position_embeddings=32)
        model = transformers.LlamaForCausalLM(config)
    return model


def hf_encoder():
    import transformers

    config = transformers.BertConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=32, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    return transformers.BertModel(config, add_pooling_layer=True)
