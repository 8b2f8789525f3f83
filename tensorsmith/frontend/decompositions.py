"""The decomposition table handed to AOTAutograd.

PyTorch's core-ATen decompositions, plus the composite ops that core ATen keeps whole (layer_norm,
softmax, log_softmax, gelu, group_norm, batch_norm, embedding, var_mean ...), so that their pieces
are IR ops that later fusion can see. Matrix products and convolutions stay whole: they become
library calls.
"""
from __future__ import annotations

import torch
from torch._decomp import core_aten_decompositions, get_decompositions

aten = torch.ops.aten

_EXTRA = [
    aten.native_layer_norm, aten._softmax, aten._log_softmax, aten.gelu, aten.native_group_norm,
    aten.native_batch_norm, aten._native_batch_norm_legit, aten._native_batch_norm_legit_functional,
    aten._native_batch_norm_legit_no_training, aten.embedding, aten.clamp,
    aten.hardtanh, aten.leaky_relu, aten.repeat, aten.logsumexp, aten.mish, aten.hardswish,
    aten.hardsigmoid, aten.softplus, aten.elu, aten.native_dropout,
    aten.upsample_nearest2d, aten.baddbmm, aten.addcmul, aten.addcdiv, aten.lerp, aten.linalg_vector_norm,
    aten.silu, aten.index_add, aten.masked_fill,
]

# Kept whole: we lower them directly (a dot plus a broadcast add) or call the library.
_KEEP = {aten.addmm.default, aten.convolution.default, aten.mm.default, aten.bmm.default}


# Fused attention kernels, kept whole when attention is fused (frontend/attention.py).
_ATTENTION = {aten._scaled_dot_product_flash_attention_for_cpu.default}


def decomposition_table(fuse_attention: bool = False) -> dict:
    table = dict(core_aten_decompositions())
    table.update(get_decompositions(_EXTRA))
    for op in _KEEP | (_ATTENTION if fuse_attention else set()):
        table.pop(op, None)
    return table
