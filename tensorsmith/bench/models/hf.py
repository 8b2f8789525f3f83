"""Real model code from `transformers`, built from configs with random weights (no downloads).

Each builder takes a size ("tiny": seconds on a CPU, for CI; "real": the published geometry, for a
GPU) and a device, and returns a Workload. Dropout is 0 so compiled and eager runs are comparable.
"""
from __future__ import annotations

import os

import torch

from ..workload import Workload, to_device

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # configs only: nothing is ever downloaded


def _quiet(transformers) -> None:
    """Configs built from scratch make transformers log advice on every build; keep reports clean."""
    transformers.logging.set_verbosity_error()


def _ids(vocab: int, batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))


def _lm(model, vocab, batch, seq, device, summary) -> Workload:
    ids = _ids(vocab, batch, seq)
    train = to_device({"input_ids": ids, "labels": ids}, device)
    infer = to_device({"input_ids": ids}, device)
    return Workload(model.to(device), train, infer, summary, batch=batch)


def gpt2(size: str, device) -> Workload:
    import transformers

    _quiet(transformers)
    if size == "tiny":
        geometry, batch, seq = dict(vocab_size=96, n_positions=32, n_embd=32, n_layer=2, n_head=2,
                                    bos_token_id=0, eos_token_id=0), 2, 16
    else:  # GPT-2 small (124M)
        geometry, batch, seq = dict(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12,
                                    n_head=12), 8, 1024
    config = transformers.GPT2Config(**geometry, attn_pdrop=0.0, embd_pdrop=0.0, resid_pdrop=0.0,
                                     use_cache=False)
    return _lm(transformers.GPT2LMHeadModel(config), config.vocab_size, batch, seq, device,
               f"GPT-2 {config.n_layer}x{config.n_embd}, seq {seq}, batch {batch}")


def llama(size: str, device) -> Workload:
    import transformers

    _quiet(transformers)
    if size == "tiny":
        geometry, batch, seq = dict(vocab_size=96, hidden_size=32, intermediate_size=64,
                                    num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2, max_position_embeddings=32), 2, 16
    else:  # a Llama-architecture 350M (GQA, RoPE, SwiGLU, RMSNorm)
        geometry, batch, seq = dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816,
                                    num_hidden_layers=24, num_attention_heads=16,
                                    num_key_value_heads=4, max_position_embeddings=2048), 4, 1024
    config = transformers.LlamaConfig(**geometry, use_cache=False)
    return _lm(transformers.LlamaForCausalLM(config), config.vocab_size, batch, seq, device,
               f"Llama {config.num_hidden_layers}x{config.hidden_size}, seq {seq}, batch {batch}")


def bert(size: str, device) -> Workload:
    import transformers

    _quiet(transformers)
    if size == "tiny":
        geometry, batch, seq = dict(vocab_size=96, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64,
                                    max_position_embeddings=32), 2, 16
    else:  # BERT-base
        geometry, batch, seq = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                                    num_attention_heads=12, intermediate_size=3072,
                                    max_position_embeddings=512), 8, 512
    config = transformers.BertConfig(**geometry, hidden_dropout_prob=0.0,
                                     attention_probs_dropout_prob=0.0)
    return _lm(transformers.BertForMaskedLM(config), config.vocab_size, batch, seq, device,
               f"BERT {config.num_hidden_layers}x{config.hidden_size}, seq {seq}, batch {batch}")


def t5(size: str, device) -> Workload:
    import transformers

    _quiet(transformers)
    if size == "tiny":
        geometry, batch, seq, target = dict(vocab_size=96, d_model=32, d_kv=16, d_ff=64,
                                            num_layers=2, num_decoder_layers=2, num_heads=2), 2, 16, 8
    else:  # T5-small
        geometry, batch, seq, target = dict(vocab_size=32128, d_model=512, d_kv=64, d_ff=2048,
                                            num_layers=6, num_decoder_layers=6, num_heads=8), 8, 512, 128
    config = transformers.T5Config(**geometry, dropout_rate=0.0, decoder_start_token_id=0,
                                   pad_token_id=0, use_cache=False)
    model = transformers.T5ForConditionalGeneration(config)
    ids, labels = _ids(config.vocab_size, batch, seq, 0), _ids(config.vocab_size, batch, target, 1)
    decoder_ids = torch.cat([torch.zeros(batch, 1, dtype=labels.dtype), labels[:, :-1]], dim=1)
    train = to_device({"input_ids": ids, "labels": labels}, device)
    infer = to_device({"input_ids": ids, "decoder_input_ids": decoder_ids}, device)
    return Workload(model.to(device), train, infer,
                    f"T5 {config.num_layers}+{config.num_decoder_layers}x{config.d_model}, "
                    f"seq {seq}->{target}, batch {batch}", batch=batch)


def vit(size: str, device) -> Workload:
    import transformers

    _quiet(transformers)
    if size == "tiny":
        geometry, batch = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                               num_attention_heads=2, intermediate_size=64, num_labels=10), 2
    else:  # ViT-B/16 at 224
        geometry, batch = dict(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12,
                               num_attention_heads=12, intermediate_size=3072, num_labels=1000), 32
    config = transformers.ViTConfig(**geometry, hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0)
    model = transformers.ViTForImageClassification(config)
    gen = torch.Generator().manual_seed(0)
    pixels = torch.randn(batch, 3, config.image_size, config.image_size, generator=gen)
    labels = torch.randint(0, config.num_labels, (batch,), generator=gen)
    train = to_device({"pixel_values": pixels, "labels": labels}, device)
    infer = to_device({"pixel_values": pixels}, device)
    return Workload(model.to(device), train, infer,
                    f"ViT {config.num_hidden_layers}x{config.hidden_size}, "
                    f"{config.image_size}px/{config.patch_size}, batch {batch}", batch=batch)
