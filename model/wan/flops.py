"""Analytic FLOP count of one WAN DiT forward pass (matmuls + attention; 1 multiply-add = 2 FLOPs).

Elementwise work (norms, RoPE, softmax, modulation, activations) is not counted, as usual for MFU.
A training step (forward + backward) is 3x the forward count.
"""

from __future__ import annotations

import math

from .attention import I2V_TEXT_CONTEXT_LEN
from .config import WanTransformerConfig


def dit_flops(
    cfg: WanTransformerConfig,
    batch: int,
    latent_frames: int,
    latent_height: int,
    latent_width: int,
    text_len: int = 512,
    image_len: int = 257,
) -> dict[str, float]:
    """Per-component forward FLOPs for latents of shape (batch, C, T, H, W); ``total`` is the sum.

    ``image_len`` is only used for I2V configs (where ``text_len`` is forced to 512 as in diffusers).
    """
    pt, ph, pw = cfg.patch_size
    b = batch
    tokens = (latent_frames // pt) * (latent_height // ph) * (latent_width // pw)
    d, ffn, p = cfg.inner_dim, cfg.ffn_dim, math.prod(cfg.patch_size)
    i2v = cfg.image_dim is not None
    s = I2V_TEXT_CONTEXT_LEN if i2v else text_len

    f: dict[str, float] = {}
    f["patch_embedding"] = 2 * b * tokens * (p * cfg.in_channels) * d
    f["condition_embedder"] = 2 * b * (cfg.freq_dim * d + d * d + d * 6 * d) + 2 * b * s * (cfg.text_dim * d + d * d)
    if i2v:
        f["condition_embedder"] += 2 * b * image_len * (cfg.image_dim * cfg.image_dim + cfg.image_dim * d)
    per_layer = {
        "self_attn_proj": 2 * b * tokens * d * d * 4,  # q, k, v, out
        "self_attn_core": 4 * b * tokens * tokens * d,  # QK^T and PV over all heads
        "cross_attn_proj": 2 * b * tokens * d * d * 2 + 2 * b * s * d * d * 2,  # q, out; k, v on the text
        "cross_attn_core": 4 * b * tokens * s * d,
        "ffn": 2 * b * tokens * d * ffn * 2,
    }
    if i2v:
        per_layer["cross_attn_proj"] += 2 * b * image_len * cfg.added_kv_proj_dim * d * 2
        per_layer["cross_attn_core"] += 4 * b * tokens * image_len * d
    for k, v in per_layer.items():
        f[k] = cfg.num_layers * v
    f["proj_out"] = 2 * b * tokens * d * (p * cfg.out_channels)
    f = {k: float(v) for k, v in f.items()}
    f["total"] = sum(f.values())
    f["tokens"] = float(b * tokens)
    return f
