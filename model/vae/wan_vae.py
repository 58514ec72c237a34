"""WAN 2.1 causal 3D VAE in flax nnx, numerically matching diffusers' ``AutoencoderKLWan``.

Public API (see also :mod:`model.vae.loading` to load official weights)::

    vae = WanVAE(WAN21_VAE_CONFIG, rngs=nnx.Rngs(0))        # random init: tests/benchmarks only
    vae = load_wan_vae("Wan2.1_VAE.pth")                     # or a diffusers vae/ folder/safetensors
    mean, logvar = vae.encode(video)                          # video (B, 3, T, H, W) in [-1, 1]
    video = vae.decode(latents)                               # latents (B, 16, T', H/8, W/8)

Layout: the public ``encode``/``decode`` take and return diffusers' channels-first
``(B, C, T, H, W)`` (the shard record stores ``(C, T', H', W')`` per clip); pass
``channels_last=True`` for ``(B, T, H, W, C)`` in and out. Videos are float in [-1, 1];
``decode`` clamps to [-1, 1] like diffusers. ``T`` must be ``1 + 4k`` (81 -> 21 latent frames),
``H``/``W`` multiples of 8. ``encode`` returns the posterior's ``mean`` and ``logvar`` (clamped to
[-30, 20] like diffusers' ``DiagonalGaussianDistribution``); latents for the DiT are usually
``normalize_latents(mean)`` = ``(mean - latents_mean) / latents_std``.

Chunking: exactly diffusers' non-tiled path. ``encode`` runs the encoder on frame 0, then on
chunks of 4 frames; ``decode`` runs the decoder on one latent frame at a time. Each chunk is one
jitted pure function of (params, chunk, cache) compiled twice (first chunk, later chunks) per
input shape and dtype, and a Python loop carries the cache pytree (:class:`FeatCache` entries).
Computation runs in ``dtype`` (float32 by default: HIGHEST matmul precision, so no TF32 on GPU;
bfloat16 optional, with norms and softmax in float32); outputs are float32. ``conv_impl="auto"``
runs each causal 3x3x3 conv as one lax 3D conv on GPU/TPU and as 3 per-frame 2D convs on CPU
(~1.5x faster on XLA:CPU; both are parity-tested).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .config import WAN21_VAE_CONFIG, WanVAEConfig, latent_shape, latents_channels_last, video_channels_last
from .layers import (
    AttentionBlock,
    CausalConv3d,
    FeatCache,
    MidBlock,
    Resample,
    ResidualBlock,
    RMSNorm,
    UpBlock,
    module_list,
    resolve_conv_impl,
)

LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0
RANDOM_INIT_ID = "wan2.1-vae:UNTRAINED-random-init"


class Encoder3d(nnx.Module):
    """diffusers ``WanEncoder3d`` (WAN 2.1, ``is_residual=False``): ``down_blocks`` is one flat list of
    resnets, attention blocks (if ``attn_scales``) and resamplers, indexed like diffusers."""

    def __init__(self, cfg: WanVAEConfig, *, rngs: nnx.Rngs):
        dims = [cfg.base_dim * u for u in (1, *cfg.dim_mult)]
        scale = 1.0
        self.conv_in = CausalConv3d(3, dims[0], 3, padding=1, rngs=rngs)
        blocks = []
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResidualBlock(in_dim, out_dim, rngs=rngs))
                if scale in cfg.attn_scales:
                    blocks.append(AttentionBlock(out_dim, rngs=rngs))
                in_dim = out_dim
            if i != len(cfg.dim_mult) - 1:
                mode = "downsample3d" if cfg.temperal_downsample[i] else "downsample2d"
                blocks.append(Resample(out_dim, mode, rngs=rngs))
                scale /= 2.0
        self.down_blocks = module_list(blocks)
        self.mid_block = MidBlock(dims[-1], rngs=rngs)
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 2 * cfg.z_dim, 3, padding=1, rngs=rngs)

    def __call__(self, x: jax.Array, cache: FeatCache) -> jax.Array:
        x = self.conv_in.cached(x, cache)
        for layer in self.down_blocks:
            x = layer(x, cache)
        x = self.mid_block(x, cache)
        return self.conv_out.cached(jax.nn.silu(self.norm_out(x)), cache)


class Decoder3d(nnx.Module):
    """diffusers ``WanDecoder3d`` (WAN 2.1): ``up_blocks`` of ``num_res_blocks + 1`` resnets each, the
    input width of every stage after the first halved by the previous stage's upsampler."""

    def __init__(self, cfg: WanVAEConfig, *, rngs: nnx.Rngs):
        dims = [cfg.base_dim * u for u in (cfg.dim_mult[-1], *cfg.dim_mult[::-1])]
        self.conv_in = CausalConv3d(cfg.z_dim, dims[0], 3, padding=1, rngs=rngs)
        self.mid_block = MidBlock(dims[0], rngs=rngs)
        blocks = []
        n = len(cfg.dim_mult)
        for i, (in_dim, out_dim) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                in_dim = in_dim // 2
            mode = None
            if i != n - 1:
                mode = "upsample3d" if cfg.temperal_upsample[i] else "upsample2d"
            blocks.append(UpBlock(in_dim, out_dim, cfg.num_res_blocks, mode, rngs=rngs))
        self.up_blocks = module_list(blocks)
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 3, 3, padding=1, rngs=rngs)

    def __call__(self, x: jax.Array, cache: FeatCache) -> jax.Array:
        x = self.conv_in.cached(x, cache)
        x = self.mid_block(x, cache)
        for block in self.up_blocks:
            x = block(x, cache)
        return self.conv_out.cached(jax.nn.silu(self.norm_out(x)), cache)


class WanVAE(nnx.Module):
    """diffusers ``AutoencoderKLWan`` (WAN 2.1): ``encoder``, ``quant_conv``, ``post_quant_conv``, ``decoder``.

    ``vae_id`` names the weights (set by :func:`model.vae.loading.load_wan_vae` from the file's
    digest; a freshly constructed model is labelled untrained so its latents are never mistaken
    for real ones).
    """

    temporal_factor = 4
    spatial_factor = 8

    def __init__(self, config: WanVAEConfig = WAN21_VAE_CONFIG, *, rngs: nnx.Rngs, vae_id: str = RANDOM_INIT_ID):
        if config.temporal_factor != 4 or config.spatial_factor != 8:
            # The chunk schedule (1, 4, 4, ...) is diffusers' and assumes these factors.
            raise NotImplementedError(
                f"only temporal factor 4 / spatial factor 8 configs are supported, got "
                f"{config.temporal_factor}/{config.spatial_factor}"
            )
        self.config = config
        self.vae_id = vae_id
        self.z_dim = config.z_dim
        self.encoder = Encoder3d(config, rngs=rngs)
        self.quant_conv = CausalConv3d(2 * config.z_dim, 2 * config.z_dim, 1, rngs=rngs)
        self.post_quant_conv = CausalConv3d(config.z_dim, config.z_dim, 1, rngs=rngs)
        self.decoder = Decoder3d(config, rngs=rngs)

    # ------------------------------------------------------------------ chunk steps (pure)

    def encode_chunk(self, x: jax.Array, cache: list | None, conv_impl: str = "auto"):
        """One encoder chunk, channels-last: ``(B, t, H, W, 3) -> (B, t', H/8, W/8, 2 z)`` and the new cache.
        ``cache=None`` is the first chunk (1 frame -> 1 latent frame); later chunks take 4 frames."""
        return _encode_chunk(self.encoder, self.quant_conv, x, cache, conv_impl)

    def decode_chunk(self, z: jax.Array, cache: list | None, conv_impl: str = "auto"):
        """One decoder chunk, channels-last: one latent frame ``(B, 1, h, w, z)`` -> 1 frame (first chunk,
        ``cache=None``) or 4 frames ``(B, 4, 8h, 8w, 3)`` (unclamped), and the new cache."""
        return _decode_chunk(self.post_quant_conv, self.decoder, z, cache, conv_impl)

    def _split(self, *names):
        # Only the submodules (not this module, whose static attributes include vae_id/config), so
        # every model of one architecture shares the compiled steps.
        return tuple(x for name in names for x in nnx.split(getattr(self, name)))

    # ------------------------------------------------------------------ public API

    def encode(self, video, *, channels_last: bool = False, dtype=jnp.float32, conv_impl: str = "auto"):
        """``video`` (B, 3, T, H, W) in [-1, 1] (or (B, T, H, W, 3) with ``channels_last``), ``T = 1 + 4k``
        -> ``(mean, logvar)``, each (B, z_dim, 1 + k, H/8, W/8) (channels-last: (B, 1 + k, H/8, W/8, z_dim)),
        float32. ``conv_impl``: see :meth:`model.vae.layers.CausalConv3d.__call__`."""
        conv_impl = resolve_conv_impl(conv_impl)
        x = video_channels_last(
            jnp.asarray(video), channels_last, who="WanVAE.encode", temporal_factor=4, spatial_factor=8
        ).astype(dtype)
        t = x.shape[1]
        g_enc, s_enc, g_q, s_q = self._split("encoder", "quant_conv")
        out, cache = _encode_step(g_enc, g_q, conv_impl, s_enc, s_q, x[:, :1], None)
        outs = [out]
        for i in range(1, 1 + (t - 1) // 4):
            out, cache = _encode_step(g_enc, g_q, conv_impl, s_enc, s_q, x[:, 1 + 4 * (i - 1) : 1 + 4 * i], cache)
            outs.append(out)
        enc = jnp.concatenate(outs, axis=1).astype(jnp.float32)
        mean, logvar = jnp.split(enc, 2, axis=-1)
        logvar = jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)
        if not channels_last:
            mean, logvar = (jnp.transpose(a, (0, 4, 1, 2, 3)) for a in (mean, logvar))
        return mean, logvar

    def decode(self, latents, *, channels_last: bool = False, dtype=jnp.float32, conv_impl: str = "auto"):
        """``latents`` (B, z_dim, T', h, w) (or (B, T', h, w, z_dim)) -> video (B, 3, 1 + 4 (T' - 1), 8h, 8w)
        (or channels-last) in [-1, 1], float32."""
        conv_impl = resolve_conv_impl(conv_impl)
        z = latents_channels_last(jnp.asarray(latents), channels_last, self.z_dim, who="WanVAE.decode").astype(dtype)
        g_pq, s_pq, g_dec, s_dec = self._split("post_quant_conv", "decoder")
        out, cache = _decode_step(g_pq, g_dec, conv_impl, s_pq, s_dec, z[:, :1], None)
        outs = [out]
        for i in range(1, z.shape[1]):
            out, cache = _decode_step(g_pq, g_dec, conv_impl, s_pq, s_dec, z[:, i : i + 1], cache)
            outs.append(out)
        video = jnp.clip(jnp.concatenate(outs, axis=1).astype(jnp.float32), -1.0, 1.0)
        if not channels_last:
            video = jnp.transpose(video, (0, 4, 1, 2, 3))
        return video

    # ------------------------------------------------------------------ latent statistics

    def normalize_latents(self, mean, *, channels_last: bool = False):
        """``(mean - latents_mean) / latents_std`` per channel: the DiT's latent space."""
        m, s = _stats(self.config, channels_last)
        return (jnp.asarray(mean) - m) / s

    def denormalize_latents(self, latents, *, channels_last: bool = False):
        m, s = _stats(self.config, channels_last)
        return jnp.asarray(latents) * s + m

    @property
    def latents_mean(self) -> tuple[float, ...]:
        return self.config.latents_mean

    @property
    def latents_std(self) -> tuple[float, ...]:
        return self.config.latents_std

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T', H', W') of one clip's latents (raises for frame counts other than 1 + 4k)."""
        return latent_shape(num_frames, height, width, self.z_dim)

    def describe(self) -> dict:
        return {
            "vae_id": self.vae_id,
            "kind": "wan2.1-vae",
            "z_dim": self.z_dim,
            "temporal_factor": 4,
            "spatial_factor": 8,
            "layout": "(B, C, T, H, W) in [-1, 1]",
            "config": self.config.to_dict(),
        }


def _stats(cfg: WanVAEConfig, channels_last: bool):
    shape = (cfg.z_dim,) if channels_last else (cfg.z_dim, 1, 1, 1)
    return (
        jnp.asarray(np.reshape(cfg.latents_mean, shape), jnp.float32),
        jnp.asarray(np.reshape(cfg.latents_std, shape), jnp.float32),
    )


def _encode_chunk(encoder, quant_conv, x, cache, conv_impl="auto"):
    fc = FeatCache(cache, conv_impl)
    h = quant_conv(encoder(x, fc))
    return h, fc.out


def _decode_chunk(post_quant_conv, decoder, z, cache, conv_impl="auto"):
    fc = FeatCache(cache, conv_impl)
    y = decoder(post_quant_conv(z), fc)
    return y, fc.out


@partial(jax.jit, static_argnums=(0, 1, 2))
def _encode_step(g_enc, g_q, conv_impl, s_enc, s_q, x, cache):
    return _encode_chunk(nnx.merge(g_enc, s_enc), nnx.merge(g_q, s_q), x, cache, conv_impl)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _decode_step(g_pq, g_dec, conv_impl, s_pq, s_dec, z, cache):
    return _decode_chunk(nnx.merge(g_pq, s_pq), nnx.merge(g_dec, s_dec), z, cache, conv_impl)


def count_params(model: nnx.Module) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))
