"""THFM training losses (JAX). Stage 1 works on latents; stage 2 on decoded predictions vs pixel truth.

All dense targets are 3-channel videos in [-1, 1] with layout (B, T, H, W, 3); `valid`
masks (B, T, H, W) select the pixels that carry ground truth.

- latent_mse: stage 1, MSE between predicted and target latents.
- normals, human_normals: L2 + (1 - cosine) on unit-normalised vectors.
- depth, human_depth: scale-and-shift-invariant in disparity. Prediction and target are each normalised
  by their median and mean absolute deviation computed over the *whole clip* (all frames
  together, so the normalisation cannot flicker between frames), then compared with L1.
- masks, dense semantics, keypoints: L2.
"""

from __future__ import annotations

import jax.numpy as jnp


def _masked_mean(x, valid):
    if valid is None:
        return jnp.mean(x)
    w = valid.astype(x.dtype)
    while w.ndim < x.ndim:
        w = w[..., None]
    w = jnp.broadcast_to(w, x.shape)
    return jnp.sum(x * w) / jnp.maximum(jnp.sum(w), 1.0)


def latent_mse(pred, target):
    return jnp.mean((pred.astype(jnp.float32) - target.astype(jnp.float32)) ** 2)


def normals_loss(pred, target, valid=None, eps=1e-6):
    p = pred / (jnp.linalg.norm(pred, axis=-1, keepdims=True) + eps)
    g = target / (jnp.linalg.norm(target, axis=-1, keepdims=True) + eps)
    l2 = _masked_mean(jnp.sum((p - g) ** 2, axis=-1), valid)
    cos = _masked_mean(1.0 - jnp.sum(p * g, axis=-1), valid)
    return l2 + cos


def _clip_normalise(x, valid):
    """(B, T, H, W) -> (x - median) / mean|x - median| per clip (over T, H, W of valid pixels)."""
    b = x.shape[0]
    flat = x.reshape(b, -1)
    vflat = jnp.ones_like(flat, dtype=bool) if valid is None else valid.reshape(b, -1)
    # a clip without valid pixels (a keypoint record in a mixed stage-2 batch) is normalised over all of
    # them instead: its loss is masked to 0 anyway, and an all-NaN median would poison the gradients
    vflat = jnp.where(jnp.any(vflat, axis=1, keepdims=True), vflat, True)
    # masked median: invalid entries sent to +inf/-inf in equal numbers would bias it, so use nanmedian
    med = jnp.nanmedian(jnp.where(vflat, flat, jnp.nan), axis=1, keepdims=True)
    dev = jnp.abs(flat - med)
    mad = jnp.sum(jnp.where(vflat, dev, 0.0), axis=1, keepdims=True) / jnp.maximum(jnp.sum(vflat, 1, keepdims=True), 1)
    return ((flat - med) / (mad + 1e-6)).reshape(x.shape)


def depth_ssi_loss(pred, target, valid=None):
    """pred, target: (B, T, H, W, 3) disparity videos in [-1, 1] (channels repeated): channel mean is used."""
    p = _clip_normalise(jnp.mean(pred, axis=-1), valid)
    g = _clip_normalise(jnp.mean(target, axis=-1), valid)
    return _masked_mean(jnp.abs(p - g), valid)


def l2_loss(pred, target, valid=None):
    return _masked_mean(jnp.sum((pred - target) ** 2, axis=-1), valid)


DENSE_LOSSES = {
    "normals": normals_loss,
    "human_normals": normals_loss,
    "depth": depth_ssi_loss,
    "human_depth": depth_ssi_loss,
    "mask": l2_loss,
    "iuv": l2_loss,
    "canonical": l2_loss,
}
