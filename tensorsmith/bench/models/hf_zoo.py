"""More `transformers` architectures for the model zoo sweep, from configs with random weights.

Each builder takes a size and a device and returns a Workload, as in `hf.py`. "tiny" is a model
about 32 wide, 2 layers deep, with a 96-token vocabulary, that trains in well under a second on a
CPU (for CI). "real" keeps the published per-layer geometry of the usual base model (width, heads,
kv heads, MLP width, vocabulary) but at most 4 layers (2 blocks a stage for Swin and ConvNeXt),
with 2-8k tokens a batch, so a GPU sweep of the whole zoo compiles in minutes; the summary says
how many of the published layers are kept.

Randomness is off so that compiled runs compare with eager ones: every dropout, drop-path,
layerdrop, router-jitter and spec-augment probability is 0, and inputs come from seeded generators.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from ..workload import Workload, to_device
from .hf import _ids, _lm, _quiet

TINY_BATCH, TINY_SEQ = 2, 16


def _transformers():
    import transformers

    _quiet(transformers)
    return transformers


def _has_model(module: str) -> bool:
    """Whether the installed transformers has models/<module>, found without importing it."""
    spec = importlib.util.find_spec("transformers")
    return spec is not None and (Path(spec.origin).parent / "models" / module).is_dir()


def _build(names, geometry, fixed):
    """(config, model) from class names in transformers: (config class, model class)."""
    transformers = _transformers()
    config = getattr(transformers, names[0])(**geometry, **fixed)
    return config, getattr(transformers, names[1])(config)


def _of(size: str, of) -> str:
    return f" (of {of})" if size == "real" else ""


def _text_lm(size, device, label, names, tiny, real, shape, of, **fixed) -> Workload:
    """A causal or masked LM with labels = input_ids (as `hf.gpt2` and `hf.bert`): tiny and real
    are geometries, shape is the real (batch, seq) and of the published layer count."""
    config, model = _build(names, tiny if size == "tiny" else real, fixed)
    batch, seq = (TINY_BATCH, TINY_SEQ) if size == "tiny" else shape
    return _lm(model, config.vocab_size, batch, seq, device,
               f"{label} {config.num_hidden_layers}x{config.hidden_size}{_of(size, of)}, "
               f"seq {seq}, batch {batch}")


# The Llama-style decoders share their config keys, so their tiny geometry too.
_TINY = dict(vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)


def _llama_like(size, device, label, names, real, shape, of, tiny=(), **fixed) -> Workload:
    return _text_lm(size, device, label, names, {**_TINY, **dict(tiny)}, real, shape, of,
                    attention_dropout=0.0, use_cache=False, **fixed)


def mistral(size: str, device) -> Workload:  # Mistral-7B
    return _llama_like(size, device, "Mistral", ("MistralConfig", "MistralForCausalLM"), dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=2,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768),
        shape=(2, 2048), of=32)


def qwen2(size: str, device) -> Workload:  # Qwen2-0.5B
    return _llama_like(size, device, "Qwen2", ("Qwen2Config", "Qwen2ForCausalLM"), dict(
        vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=4,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
        tie_word_embeddings=True), shape=(2, 1024), of=24)


def qwen3(size: str, device) -> Workload:  # Qwen3-0.6B (q/k RMSNorm, head_dim 128)
    if not _has_model("qwen3"):
        raise ImportError("this transformers has no Qwen3 (added in 4.51)")
    return _llama_like(size, device, "Qwen3", ("Qwen3Config", "Qwen3ForCausalLM"), dict(
        vocab_size=151936, hidden_size=1024, intermediate_size=3072, num_hidden_layers=4,
        num_attention_heads=16, num_key_value_heads=8, head_dim=128,
        max_position_embeddings=40960, tie_word_embeddings=True), shape=(2, 1024), of=28,
        tiny=dict(head_dim=8))


def phi3(size: str, device) -> Workload:  # Phi-3-mini-4k (fused qkv and gate_up projections)
    return _llama_like(size, device, "Phi-3", ("Phi3Config", "Phi3ForCausalLM"), dict(
        vocab_size=32064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=2,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
        pad_token_id=32000), shape=(2, 2048), of=32, tiny=dict(pad_token_id=0, eos_token_id=0),
        resid_pdrop=0.0, embd_pdrop=0.0)


def gemma2(size: str, device) -> Workload:
    """Gemma-2-2B: sliding and global attention alternate, logits are soft-capped (so attention is
    eager: transformers gives Gemma 2 no SDPA). Tiny's window is 8 tokens, so its mask matters."""
    return _llama_like(size, device, "Gemma2", ("Gemma2Config", "Gemma2ForCausalLM"), dict(
        vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=4,
        num_attention_heads=8, num_key_value_heads=4, head_dim=256, max_position_embeddings=8192,
        sliding_window=4096), shape=(2, 1024), of=26, tiny=dict(head_dim=8, sliding_window=8))


def gemma3(size: str, device) -> Workload:
    """Gemma-3-1B (text): a 512-token window in five layers of six; the 4 kept are three sliding
    and one global, so both kinds run (tiny: an 8-token window, one layer of each)."""
    kinds = ["sliding_attention"] * 3 + ["full_attention"]
    return _llama_like(size, device, "Gemma3", ("Gemma3TextConfig", "Gemma3ForCausalLM"), dict(
        vocab_size=262144, hidden_size=1152, intermediate_size=6912, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=1, head_dim=256, max_position_embeddings=32768,
        sliding_window=512, layer_types=kinds), shape=(2, 1024), of=26,
        tiny=dict(head_dim=8, sliding_window=8, layer_types=kinds[2:]))


def gpt_neox(size: str, device) -> Workload:  # Pythia-410m (parallel residual, 25% rotary)
    return _text_lm(size, device, "GPT-NeoX", ("GPTNeoXConfig", "GPTNeoXForCausalLM"), dict(
        vocab_size=96, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=64), dict(
        vocab_size=50304, hidden_size=1024, intermediate_size=4096, num_hidden_layers=4,
        num_attention_heads=16, max_position_embeddings=2048), shape=(4, 1024), of=24,
        attention_dropout=0.0, hidden_dropout=0.0, classifier_dropout=0.0, use_cache=False)


def opt(size: str, device) -> Workload:  # OPT-1.3B (learned positions, ReLU MLP)
    return _text_lm(size, device, "OPT", ("OPTConfig", "OPTForCausalLM"), dict(
        vocab_size=96, hidden_size=32, word_embed_proj_dim=32, ffn_dim=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=64), dict(
        vocab_size=50272, hidden_size=2048, word_embed_proj_dim=2048, ffn_dim=8192,
        num_hidden_layers=4, num_attention_heads=32, max_position_embeddings=2048),
        shape=(4, 1024), of=24, dropout=0.0, attention_dropout=0.0, layerdrop=0.0,
        use_cache=False)


def falcon(size: str, device) -> Workload:  # Falcon-7B (multi-query, attention || MLP)
    return _text_lm(size, device, "Falcon", ("FalconConfig", "FalconForCausalLM"), dict(
        vocab_size=96, hidden_size=32, ffn_hidden_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=64), dict(
        vocab_size=65024, hidden_size=4544, ffn_hidden_size=18176, num_hidden_layers=2,
        num_attention_heads=71, max_position_embeddings=2048), shape=(2, 2048), of=32,
        multi_query=True, parallel_attn=True, new_decoder_architecture=False, bias=False,
        hidden_dropout=0.0, attention_dropout=0.0, use_cache=False)


# Mixtures of experts run transformers' per-expert loop (experts_implementation="eager"): the
# default, grouped_mm, has no float64 kernel (so no float64 reference), and under torch.compile
# transformers swaps it for an opaque custom op, so eager and compiled would run different code.
_EXPERTS = dict(experts_implementation="eager")


def mixtral(size: str, device) -> Workload:  # Mixtral-8x7B: 8 experts, top 2 (tiny: 4, top 2)
    return _llama_like(size, device, "Mixtral", ("MixtralConfig", "MixtralForCausalLM"), dict(
        vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=1,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
        num_local_experts=8), shape=(2, 2048), of=32, tiny=dict(num_local_experts=4),
        num_experts_per_tok=2, router_jitter_noise=0.0, **_EXPERTS)


def qwen2_moe(size: str, device) -> Workload:
    """Qwen1.5-MoE-A2.7B: 60 experts 1408 wide, top 4, and a gated shared expert."""
    return _llama_like(size, device, "Qwen2-MoE", ("Qwen2MoeConfig", "Qwen2MoeForCausalLM"), dict(
        vocab_size=151936, hidden_size=2048, intermediate_size=5632, moe_intermediate_size=1408,
        shared_expert_intermediate_size=5632, num_hidden_layers=2, num_attention_heads=16,
        num_key_value_heads=16, max_position_embeddings=8192, num_experts=60,
        num_experts_per_tok=4), shape=(2, 1024), of=24, tiny=dict(
        moe_intermediate_size=16, shared_expert_intermediate_size=64, num_experts=4,
        num_experts_per_tok=2), **_EXPERTS)


def mamba(size: str, device) -> Workload:
    """Mamba-130m. Without the mamba-ssm kernels transformers runs its pure-PyTorch selective
    scan: a loop over the sequence in eager (hence the short real sequence), an associative_scan
    under torch.compile."""
    return _text_lm(size, device, "Mamba", ("MambaConfig", "MambaForCausalLM"), dict(
        vocab_size=96, hidden_size=32, state_size=8, num_hidden_layers=2), dict(
        vocab_size=50280, hidden_size=768, state_size=16, num_hidden_layers=4),
        shape=(16, 256), of=24, expand=2, conv_kernel=4, use_cache=False)


_TINY_BERT = dict(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=34)  # RoBERTa's start at 2
_BERT_BASE = dict(hidden_size=768, num_hidden_layers=4, num_attention_heads=12,
                  intermediate_size=3072, max_position_embeddings=512)
_NO_DROPOUT = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def roberta(size: str, device) -> Workload:  # roberta-base
    return _text_lm(size, device, "RoBERTa", ("RobertaConfig", "RobertaForMaskedLM"), _TINY_BERT,
                    dict(_BERT_BASE, vocab_size=50265, max_position_embeddings=514),
                    shape=(8, 512), of=12, type_vocab_size=1, classifier_dropout=0.0,
                    use_cache=False, **_NO_DROPOUT)


def deberta_v2(size: str, device) -> Workload:
    """deberta-v3-base: disentangled attention over 256 log-bucketed relative positions."""
    return _text_lm(size, device, "DeBERTa-v3", ("DebertaV2Config", "DebertaV2ForMaskedLM"),
                    dict(_TINY_BERT, position_buckets=8),
                    dict(_BERT_BASE, vocab_size=128100, position_buckets=256),
                    shape=(8, 512), of=12, relative_attention=True, max_relative_positions=-1,
                    pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm", share_att_key=True,
                    position_biased_input=False, type_vocab_size=0, layer_norm_eps=1e-7,
                    pooler_dropout=0.0, **_NO_DROPOUT)


def albert(size: str, device) -> Workload:  # albert-base-v2: every layer runs the same weights
    return _text_lm(size, device, "ALBERT", ("AlbertConfig", "AlbertForMaskedLM"),
                    dict(_TINY_BERT, embedding_size=16),
                    dict(_BERT_BASE, vocab_size=30000, embedding_size=128),
                    shape=(8, 512), of=12, classifier_dropout_prob=0.0, **_NO_DROPOUT)


def distilbert(size: str, device) -> Workload:  # distilbert-base
    return _text_lm(size, device, "DistilBERT", ("DistilBertConfig", "DistilBertForMaskedLM"),
                    dict(vocab_size=96, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                         max_position_embeddings=32),
                    dict(vocab_size=30522, dim=768, n_layers=4, n_heads=12, hidden_dim=3072,
                         max_position_embeddings=512), shape=(8, 512), of=6,
                    dropout=0.0, attention_dropout=0.0, qa_dropout=0.0, seq_classif_dropout=0.0)


def _seq2seq(size, device, label, names, tiny, real, of, source, target, **fixed) -> Workload:
    """Train on labels (the model shifts them into decoder inputs); infer on the shifted labels
    (as `hf.t5`). source(config) -> (encoder inputs, summary of them); target is the real labels'
    (batch, length), tiny's being (2, 8)."""
    config, model = _build(names, tiny if size == "tiny" else real, fixed)
    batch, length = (TINY_BATCH, 8) if size == "tiny" else target
    inputs, described = source(config, batch)
    labels = _ids(config.vocab_size, batch, length, 1)
    start = torch.full((batch, 1), config.decoder_start_token_id, dtype=labels.dtype)
    decoder_ids = torch.cat([start, labels[:, :-1]], dim=1)
    return Workload(model.to(device), to_device({**inputs, "labels": labels}, device),
                    to_device({**inputs, "decoder_input_ids": decoder_ids}, device),
                    f"{label} {config.encoder_layers}+{config.decoder_layers}x{config.d_model}"
                    f"{_of(size, of)}, {described}->{length}, batch {batch}", batch=batch)


_SEQ2SEQ_NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                           encoder_layerdrop=0.0, decoder_layerdrop=0.0, use_cache=False)


def bart(size: str, device) -> Workload:  # bart-base
    seq = TINY_SEQ if size == "tiny" else 512

    def source(config, batch):
        return {"input_ids": _ids(config.vocab_size, batch, seq, 0)}, f"seq {seq}"

    return _seq2seq(size, device, "BART", ("BartConfig", "BartForConditionalGeneration"), dict(
        vocab_size=96, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
        max_position_embeddings=32), dict(
        vocab_size=50265, d_model=768, encoder_layers=4, decoder_layers=4,
        encoder_attention_heads=12, decoder_attention_heads=12, encoder_ffn_dim=3072,
        decoder_ffn_dim=3072, max_position_embeddings=1024), "6+6", source, (8, 128),
        classifier_dropout=0.0, **_SEQ2SEQ_NO_DROPOUT)


def whisper(size: str, device) -> Workload:  # whisper-base: 80 mel bins, 30 s = 3000 frames
    def source(config, batch):  # the encoder takes exactly 2 frames per position
        frames = 2 * config.max_source_positions
        features = torch.randn(batch, config.num_mel_bins, frames,
                               generator=torch.Generator().manual_seed(0))
        return {"input_features": features}, f"{frames} frames"

    return _seq2seq(size, device, "Whisper", ("WhisperConfig", "WhisperForConditionalGeneration"),
                    dict(vocab_size=96, num_mel_bins=16, d_model=32, encoder_layers=2,
                         decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
                         encoder_ffn_dim=64, decoder_ffn_dim=64, max_source_positions=16,
                         max_target_positions=16, pad_token_id=0, bos_token_id=0, eos_token_id=0,
                         decoder_start_token_id=1),
                    dict(vocab_size=51865, num_mel_bins=80, d_model=512, encoder_layers=4,
                         decoder_layers=4, encoder_attention_heads=8, decoder_attention_heads=8,
                         encoder_ffn_dim=2048, decoder_ffn_dim=2048, max_source_positions=1500,
                         max_target_positions=448), "6+6", source, (4, 128),
                    apply_spec_augment=False, **_SEQ2SEQ_NO_DROPOUT)


def _pixels(batch: int, side: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(seed))


def _classifier(size, device, label, names, tiny, real, shape, of, **fixed) -> Workload:
    """An image classifier with labels: tiny is (geometry, side) at batch 2, real is a geometry
    with shape (batch, side). A geometry with depths names its stages' depths in the summary."""
    geometry, (batch, side) = (tiny[0], (TINY_BATCH, tiny[1])) if size == "tiny" else (real, shape)
    config, model = _build(names, geometry, fixed)
    pixels = _pixels(batch, side)
    labels = torch.randint(0, config.num_labels, (batch,),
                           generator=torch.Generator().manual_seed(1))
    depths = geometry.get("depths")
    layers = (f"depths {'-'.join(map(str, depths))}" if depths else
              f"{config.num_hidden_layers}x{config.hidden_size}")
    return Workload(model.to(device), to_device({"pixel_values": pixels, "labels": labels}, device),
                    to_device({"pixel_values": pixels}, device),
                    f"{label} {layers}{_of(size, of)}, {side}px, batch {batch}", batch=batch)


_TINY_VIT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
_VIT_BASE = dict(hidden_size=768, num_hidden_layers=4, num_attention_heads=12,
                 intermediate_size=3072)


def deit(size: str, device) -> Workload:  # DeiT-B/16 at 224px
    return _classifier(size, device, "DeiT", ("DeiTConfig", "DeiTForImageClassification"),
                       (dict(_TINY_VIT, image_size=32, patch_size=8, num_labels=10), 32),
                       dict(_VIT_BASE, image_size=224, patch_size=16, num_labels=1000),
                       shape=(32, 224), of=12, **_NO_DROPOUT)


def dinov2(size: str, device) -> Workload:
    """DINOv2-B/14: position embeddings for 518px, interpolated (bicubic) to the 224px input."""
    return _classifier(size, device, "DINOv2", ("Dinov2Config", "Dinov2ForImageClassification"),
                       (dict(_TINY_VIT, image_size=32, patch_size=4, num_labels=10), 16),
                       dict(_VIT_BASE, image_size=518, patch_size=14, num_labels=1000),
                       shape=(16, 224), of=12, drop_path_rate=0.0, **_NO_DROPOUT)


def swin(size: str, device) -> Workload:
    """Swin-T: 7x7 windows, shifted in every second block, so each stage keeps 2 blocks."""
    return _classifier(size, device, "Swin", ("SwinConfig", "SwinForImageClassification"),
                       (dict(image_size=32, patch_size=2, embed_dim=16, depths=[2, 2],
                             num_heads=[2, 4], window_size=4, num_labels=10), 32),
                       dict(image_size=224, patch_size=4, embed_dim=96, depths=[2, 2, 2, 2],
                            num_heads=[3, 6, 12, 24], window_size=7, num_labels=1000),
                       shape=(32, 224), of="2-2-6-2", drop_path_rate=0.0, **_NO_DROPOUT)


def convnext(size: str, device) -> Workload:  # ConvNeXt-T
    return _classifier(size, device, "ConvNeXt", ("ConvNextConfig",
                                                  "ConvNextForImageClassification"),
                       (dict(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], num_labels=10),
                        32),
                       dict(hidden_sizes=[96, 192, 384, 768], depths=[2, 2, 2, 2],
                            num_labels=1000), shape=(32, 224), of="3-3-9-3", drop_path_rate=0.0)


def _contrastive(size, device, label, names, tiny, real, shape, of) -> Workload:
    """A text-image model trained on its own contrastive loss (return_loss=True). tiny and real
    are (text geometry, vision geometry); real's shape is (batch, seq, side), tiny's (2, 16, 32).
    Each text ends in its EOS token, where CLIP pools."""
    text, vision = tiny if size == "tiny" else real
    batch, seq, side = (TINY_BATCH, TINY_SEQ, 32) if size == "tiny" else shape
    config, model = _build(names, {}, dict(text_config=dict(text, attention_dropout=0.0),
                                           vision_config=dict(vision, attention_dropout=0.0)))
    vocab, eos = config.text_config.vocab_size, config.text_config.eos_token_id
    ids = _ids(vocab, batch, seq)
    if eos is not None and 0 <= eos < vocab:
        ids[:, -1] = eos
    inputs = {"input_ids": ids, "pixel_values": _pixels(batch, side, 1)}
    return Workload(model.to(device), to_device({**inputs, "return_loss": True}, device),
                    to_device(inputs, device),
                    f"{label} {vision['num_hidden_layers']}x{vision['hidden_size']} vision + "
                    f"{text['num_hidden_layers']}x{text['hidden_size']} text{_of(size, of)}, "
                    f"{side}px, seq {seq}, batch {batch}", batch=batch)


_TINY_TEXT = dict(_TINY_VIT, vocab_size=96, max_position_embeddings=16, bos_token_id=94,
                  eos_token_id=95, pad_token_id=1)


def clip(size: str, device) -> Workload:  # CLIP ViT-B/32
    return _contrastive(size, device, "CLIP", ("CLIPConfig", "CLIPModel"),
                        (_TINY_TEXT, dict(_TINY_VIT, image_size=32, patch_size=8)),
                        (dict(vocab_size=49408, hidden_size=512, intermediate_size=2048,
                              num_hidden_layers=4, num_attention_heads=8,
                              max_position_embeddings=77),
                         dict(_VIT_BASE, image_size=224, patch_size=32)),
                        shape=(32, 77, 224), of=12)


def siglip(size: str, device) -> Workload:  # SigLIP-B/16 at 224px (sigmoid loss, pooling head)
    return _contrastive(size, device, "SigLIP", ("SiglipConfig", "SiglipModel"),
                        (_TINY_TEXT, dict(_TINY_VIT, image_size=32, patch_size=8)),
                        (dict(_VIT_BASE, vocab_size=32000, max_position_embeddings=64,
                              bos_token_id=None, eos_token_id=1, pad_token_id=1),
                         dict(_VIT_BASE, image_size=224, patch_size=16)),
                        shape=(16, 64, 224), of=12)


ZOO_ENTRIES = [
    dict(name="mistral", family="decoder", build=mistral,
         description="transformers MistralForCausalLM (real: Mistral-7B, 2 of 32 layers)"),
    dict(name="qwen2", family="decoder", build=qwen2,
         description="transformers Qwen2ForCausalLM (real: Qwen2-0.5B, 4 of 24 layers)"),
    *([dict(name="qwen3", family="decoder", build=qwen3,
            description="transformers Qwen3ForCausalLM (real: Qwen3-0.6B, 4 of 28 layers)")]
      if _has_model("qwen3") else []),
    dict(name="phi3", family="decoder", build=phi3,
         description="transformers Phi3ForCausalLM (real: Phi-3-mini, 2 of 32 layers)"),
    dict(name="gemma2", family="decoder", build=gemma2,
         description="transformers Gemma2ForCausalLM (real: Gemma-2-2B, 4 of 26 layers)"),
    dict(name="gemma3", family="decoder", build=gemma3,
         description="transformers Gemma3ForCausalLM (real: Gemma-3-1B, 4 of 26 layers)"),
    dict(name="gpt_neox", family="decoder", build=gpt_neox,
         description="transformers GPTNeoXForCausalLM (real: Pythia-410m, 4 of 24 layers)"),
    dict(name="opt", family="decoder", build=opt,
         description="transformers OPTForCausalLM (real: OPT-1.3B, 4 of 24 layers)"),
    dict(name="falcon", family="decoder", build=falcon,
         description="transformers FalconForCausalLM (real: Falcon-7B, 2 of 32 layers)"),
    dict(name="mixtral", family="moe", build=mixtral,
         description="transformers MixtralForCausalLM (real: Mixtral-8x7B, 1 of 32 layers)"),
    dict(name="qwen2_moe", family="moe", build=qwen2_moe,
         description="transformers Qwen2MoeForCausalLM (real: Qwen1.5-MoE-A2.7B, 2 of 24 layers)"),
    dict(name="roberta", family="encoder", build=roberta,
         description="transformers RobertaForMaskedLM (real: roberta-base, 4 of 12 layers)"),
    dict(name="deberta_v2", family="encoder", build=deberta_v2,
         description="transformers DebertaV2ForMaskedLM (real: deberta-v3-base, 4 of 12 layers)"),
    dict(name="albert", family="encoder", build=albert,
         description="transformers AlbertForMaskedLM (real: albert-base-v2, 4 of 12 layers)"),
    dict(name="distilbert", family="encoder", build=distilbert,
         description="transformers DistilBertForMaskedLM (real: distilbert-base, 4 of 6 layers)"),
    dict(name="bart", family="encoder-decoder", build=bart,
         description="transformers BartForConditionalGeneration (real: bart-base, 4+4 of 6+6)"),
    dict(name="whisper", family="encoder-decoder", build=whisper,
         description="transformers WhisperForConditionalGeneration (real: whisper-base, 4+4)"),
    dict(name="deit", family="vision", build=deit,
         description="transformers DeiTForImageClassification (real: DeiT-B/16, 4 of 12 layers)"),
    dict(name="swin", family="vision", build=swin,
         description="transformers SwinForImageClassification (real: Swin-T, depths 2-2-2-2)"),
    dict(name="convnext", family="vision", build=convnext,
         description="transformers ConvNextForImageClassification (real: ConvNeXt-T, 2-2-2-2)"),
    dict(name="dinov2", family="vision", build=dinov2,
         description="transformers Dinov2ForImageClassification (real: DINOv2-B/14, 4 of 12)"),
    dict(name="clip", family="multimodal", build=clip,
         description="transformers CLIPModel, contrastive loss (real: ViT-B/32, 4+4 of 12+12)"),
    dict(name="siglip", family="multimodal", build=siglip,
         description="transformers SiglipModel, sigmoid loss (real: SigLIP-B/16, 4+4 of 12+12)"),
    dict(name="mamba", family="state-space", build=mamba,
         description="transformers MambaForCausalLM (real: mamba-130m, 4 of 24 layers)"),
]
