"""Video codecs for THFM latents: the WAN 2.1 causal 3D VAE (flax nnx) and the parameter-free default.

Both take ``(B, 3, T, H, W)`` videos in [-1, 1] with ``T = 1 + 4k`` and ``H, W`` multiples of 8
(``channels_last=True`` for ``(B, T, H, W, 3)``), and give ``(B, 16, 1 + k, H/8, W/8)`` latents:

    codec = make_codec(None)                  # DCTCodec: deterministic, no weights, vae_id "codec:..."
    codec = make_codec("Wan2.1_VAE.pth")      # WanVAE with official weights (either checkpoint layout)
    mean, logvar = codec.encode(video)
    video = codec.decode(mean)
    codec.vae_id                              # what made the latents: store it with them

Without weights you get the DCT codec, never a randomly initialised VAE.
"""

from __future__ import annotations

from .codec import CODEC_ID, DCTCodec, VideoCodec
from .config import (
    TINY_VAE_CONFIG,
    WAN21_VAE_CONFIG,
    WanVAEConfig,
    check_num_frames,
    latent_shape,
    num_latent_frames,
    num_video_frames,
)

__all__ = [
    "CODEC_ID",
    "DCTCodec",
    "VideoCodec",
    "TINY_VAE_CONFIG",
    "WAN21_VAE_CONFIG",
    "WanVAEConfig",
    "check_num_frames",
    "latent_shape",
    "num_latent_frames",
    "num_video_frames",
    "make_codec",
    "WanVAE",
    "load_wan_vae",
]


def make_codec(weights=None, config: WanVAEConfig | None = None) -> VideoCodec:
    """The codec to use: :class:`WanVAE` loaded from ``weights`` (file or diffusers folder), or the
    parameter-free :class:`DCTCodec` when ``weights`` is None or empty."""
    if not weights:
        return DCTCodec()
    from .loading import load_wan_vae

    return load_wan_vae(weights, config)


def __getattr__(name):  # lazy: the VAE pulls in flax, the DCT codec only needs jax
    if name == "WanVAE":
        from .wan_vae import WanVAE

        return WanVAE
    if name == "load_wan_vae":
        from .loading import load_wan_vae

        return load_wan_vae
    raise AttributeError(f"module 'model.vae' has no attribute {name!r}")
