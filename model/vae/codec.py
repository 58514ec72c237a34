"""The default video codec when no VAE weights are given: parameter-free, deterministic, honest.

``DCTCodec`` has the WAN 2.1 VAE's interface and shapes (temporal factor 4 with the causal
1, 4, 4, ... grouping, spatial factor 8, 16 latent channels; ``T = 1 + 4k`` frames -> ``1 + k``
latent frames) but no learned weights, so nothing is ever silently random:

* frames are grouped causally: frame 0 alone, then frames 1-4, 5-8, ... (like the VAE's chunks);
* each group's ``3 x Tg x 8 x 8`` block (``Tg`` = 1 or 4 frames) is projected on 16 fixed
  orthonormal basis functions: a colour transform (luma ``(1,1,1)/sqrt3`` and two chroma axes
  ``(1,0,-1)/sqrt2``, ``(1,-2,1)/sqrt6``) times an orthonormal DCT-II over time and both spatial axes,
  keeping the lowest coefficients (:data:`COEFFS`): luma gets 6 spatial terms at temporal DC plus 3
  at the first temporal frequency and 1 at the second; each chroma gets 3 spatial terms at
  temporal DC. Frame 0 has no temporal frequencies, so its 4 temporal-AC channels are 0;
* coefficients are divided by ``sqrt(Tg * 64)`` so every channel has the same meaning and scale for
  1- and 4-frame groups (channel 0 is ``sqrt(3) x`` the block's mean grey level);
* ``decode`` is the transpose (the basis is orthonormal), so ``decode(encode(x))`` is the L2-best
  reconstruction of ``x`` within the 16-dimensional subspace of each block, clamped to [-1, 1].

It compresses 48x like the VAE (3*4*8*8 = 768 values -> 16) with none of its perceptual quality:
fine detail (edges, textures, faces) is lost, smooth content survives (see :func:`smooth_test_video`
and :data:`SMOOTH_PSNR_FLOOR_DB`). ``vae_id`` (:data:`CODEC_ID`) goes into every record it makes.
"""

from __future__ import annotations

import math
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from .config import check_spatial, latents_channels_last, num_latent_frames, video_channels_last

CODEC_ID = "codec:dct-s2d-v1:t4s8z16"
LOGVAR_DETERMINISTIC = -30.0  # the lower clamp of diffusers' posterior: std 3e-7, i.e. deterministic
TEMPORAL_FACTOR, SPATIAL_FACTOR, Z_DIM = 4, 8, 16
# Round-trip PSNR on smooth_test_video(17, 64, 96) measured 35.5 dB (36.2 dB at 9x128x128, 35.9 dB at
# 81x64x64; white noise gets ~11 dB). tests/test_vae_codec.py asserts this floor.
SMOOTH_PSNR_FLOOR_DB = 33.0

# (colour, temporal frequency, vertical frequency, horizontal frequency); colour 0 luma, 1-2 chroma.
COEFFS: tuple[tuple[int, int, int, int], ...] = (
    (0, 0, 0, 0),
    (0, 0, 0, 1),
    (0, 0, 1, 0),
    (0, 0, 1, 1),
    (0, 0, 0, 2),
    (0, 0, 2, 0),
    (0, 1, 0, 0),
    (0, 1, 0, 1),
    (0, 1, 1, 0),
    (0, 2, 0, 0),
    (1, 0, 0, 0),
    (1, 0, 0, 1),
    (1, 0, 1, 0),
    (2, 0, 0, 0),
    (2, 0, 0, 1),
    (2, 0, 1, 0),
)
COLOUR = np.array([[1, 1, 1], [1, 0, -1], [1, -2, 1]], np.float64) / np.sqrt([[3.0], [2.0], [6.0]])


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II: row ``k`` is the k-th basis vector over ``n`` samples."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    d = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    d[0] /= np.sqrt(2.0)
    return d


def basis(group_frames: int) -> np.ndarray:
    """(16, 3, Tg, 8, 8) orthonormal rows (rows with a temporal frequency >= Tg are zero)."""
    dt, ds = dct_matrix(group_frames), dct_matrix(SPATIAL_FACTOR)
    out = np.zeros((Z_DIM, 3, group_frames, SPATIAL_FACTOR, SPATIAL_FACTOR))
    for j, (c, kt, ky, kx) in enumerate(COEFFS):
        if kt < group_frames:
            out[j] = np.einsum("c,t,y,x->ctyx", COLOUR[c], dt[kt], ds[ky], ds[kx])
    return out


_B1 = basis(1).astype(np.float32)
_B4 = basis(TEMPORAL_FACTOR).astype(np.float32)
_HI = jax.lax.Precision.HIGHEST


@jax.jit
def _encode_cl(x):
    """(B, T, H, W, 3) -> (B, T', H/8, W/8, 16)."""
    b, t, h, w, _ = x.shape
    hb, wb = h // SPATIAL_FACTOR, w // SPATIAL_FACTOR
    first = x[:, :1].reshape(b, 1, hb, SPATIAL_FACTOR, wb, SPATIAL_FACTOR, 3)
    z0 = jnp.einsum("bgiyjxc,kcgyx->bgijk", first, _B1, precision=_HI) / math.sqrt(SPATIAL_FACTOR**2)
    if t == 1:
        return z0
    rest = x[:, 1:].reshape(b, (t - 1) // 4, 4, hb, SPATIAL_FACTOR, wb, SPATIAL_FACTOR, 3)
    zr = jnp.einsum("bgtiyjxc,kctyx->bgijk", rest, _B4, precision=_HI) / math.sqrt(4 * SPATIAL_FACTOR**2)
    return jnp.concatenate([z0, zr], axis=1)


@jax.jit
def _decode_cl(z):
    """(B, T', h, w, 16) -> (B, 1 + 4 (T' - 1), 8h, 8w, 3), clamped to [-1, 1]."""
    b, tl, hb, wb, _ = z.shape
    s = SPATIAL_FACTOR
    x0 = jnp.einsum("bgijk,kcgyx->bgiyjxc", z[:, :1], _B1, precision=_HI) * math.sqrt(s * s)
    x0 = x0.reshape(b, 1, hb * s, wb * s, 3)
    if tl > 1:
        xr = jnp.einsum("bgijk,kctyx->bgtiyjxc", z[:, 1:], _B4, precision=_HI) * math.sqrt(4 * s * s)
        x0 = jnp.concatenate([x0, xr.reshape(b, 4 * (tl - 1), hb * s, wb * s, 3)], axis=1)
    return jnp.clip(x0, -1.0, 1.0)


class VideoCodec(Protocol):
    """What the data pipeline and trainer rely on; :class:`DCTCodec` and ``WanVAE`` both provide it."""

    vae_id: str
    z_dim: int
    temporal_factor: int
    spatial_factor: int

    def encode(self, video, *, channels_last: bool = False, dtype=jnp.float32): ...

    def decode(self, latents, *, channels_last: bool = False, dtype=jnp.float32): ...

    def normalize_latents(self, mean, *, channels_last: bool = False): ...

    def denormalize_latents(self, latents, *, channels_last: bool = False): ...

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]: ...

    def describe(self) -> dict: ...


class DCTCodec:
    """Parameter-free causal space-to-depth codec with the WAN 2.1 VAE's interface (see module doc).

    Layout like :class:`model.vae.wan_vae.WanVAE`: ``(B, 3, T, H, W)`` videos in [-1, 1] and
    ``(B, 16, T', H/8, W/8)`` latents, or channels-last with ``channels_last=True``.
    """

    vae_id = CODEC_ID
    z_dim = Z_DIM
    temporal_factor = TEMPORAL_FACTOR
    spatial_factor = SPATIAL_FACTOR
    # No learned statistics: latents are used as they are (normalize_latents is the identity).
    latents_mean = (0.0,) * Z_DIM
    latents_std = (1.0,) * Z_DIM

    def encode(self, video, *, channels_last: bool = False, dtype=jnp.float32):
        """-> ``(mean, logvar)``; ``logvar`` is the constant :data:`LOGVAR_DETERMINISTIC` (``dtype`` is
        accepted for interface parity; the codec always computes in float32)."""
        x = video_channels_last(jnp.asarray(video, jnp.float32), channels_last, who="DCTCodec.encode")
        mean = _encode_cl(x)
        if not channels_last:
            mean = jnp.transpose(mean, (0, 4, 1, 2, 3))
        return mean, jnp.full_like(mean, LOGVAR_DETERMINISTIC)

    def decode(self, latents, *, channels_last: bool = False, dtype=jnp.float32):
        z = latents_channels_last(jnp.asarray(latents, jnp.float32), channels_last, Z_DIM, who="DCTCodec.decode")
        video = _decode_cl(z)
        return video if channels_last else jnp.transpose(video, (0, 4, 1, 2, 3))

    def normalize_latents(self, mean, *, channels_last: bool = False):
        return jnp.asarray(mean)

    def denormalize_latents(self, latents, *, channels_last: bool = False):
        return jnp.asarray(latents)

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        check_spatial(height, width, SPATIAL_FACTOR)
        return (Z_DIM, num_latent_frames(num_frames), height // SPATIAL_FACTOR, width // SPATIAL_FACTOR)

    def describe(self) -> dict:
        return {
            "vae_id": self.vae_id,
            "kind": "dct-codec",
            "z_dim": Z_DIM,
            "temporal_factor": TEMPORAL_FACTOR,
            "spatial_factor": SPATIAL_FACTOR,
            "layout": "(B, C, T, H, W) in [-1, 1]",
            "parameters": 0,
            "smooth_psnr_floor_db": SMOOTH_PSNR_FLOOR_DB,
        }


# ---------------------------------------------------------------------- evaluation helpers


def psnr(a, b, peak_to_peak: float = 2.0) -> float:
    """PSNR in dB of two videos in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(peak_to_peak**2 / mse)


def smooth_test_video(
    num_frames: int = 17, height: int = 64, width: int = 96, batch: int = 1, seed: int = 0
) -> np.ndarray:
    """(B, 3, T, H, W) in [-0.9, 0.9]: a few low-frequency coloured waves drifting slowly (periods of
    ~1-2 image widths, a few pixels per frame) - the kind of content the codec is meant to keep."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)[:, None, None]
    y = np.arange(height)[None, :, None] / height
    x = np.arange(width)[None, None, :] / width
    out = np.zeros((batch, 3, num_frames, height, width))
    for b in range(batch):
        for c in range(3):
            acc = np.zeros((num_frames, height, width))
            for _ in range(3):
                fy, fx = rng.uniform(0.3, 1.0, 2) * rng.choice([-1, 1], 2)
                speed = rng.uniform(0.005, 0.02)
                phase = rng.uniform(0, 2 * np.pi)
                acc += np.cos(2 * np.pi * (fy * y + fx * x + speed * t) + phase)
            out[b, c] = 0.3 * acc
    return np.clip(out, -0.9, 0.9).astype(np.float32)
