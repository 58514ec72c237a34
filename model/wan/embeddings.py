"""Condition embedder of WAN (diffusers ``WanTimeTextImageEmbedding``).

- ``timesteps_proj``: sinusoidal embedding, ``flip_sin_to_cos=True``, ``downscale_freq_shift=0``
  -> ``[cos, sin]`` of ``t * exp(-ln(10000) * i / half)``.
- ``time_embedder``: Linear -> SiLU -> Linear (kept in float32 like diffusers'
  ``_keep_in_fp32_modules``), result cast to the compute dtype (``temb``).
- ``time_proj``: SiLU -> Linear to ``6 * dim`` (adaLN modulation of every block).
- ``text_embedder``: Linear -> GELU(tanh) -> Linear.
- ``image_embedder`` (I2V only): FP32LayerNorm -> FeedForward(GELU) -> FP32LayerNorm.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .layers import F32, FeedForward, LayerNorm, linear


def timestep_frequencies(dim: int, max_period: float = 10000.0) -> np.ndarray:
    """``exp(-ln(max_period) * i / half)`` as float32 host constants: the exponent is formed in float32
    like torch, the exp is done in float64 and rounded (torch's float32 exp is ~correctly rounded;
    XLA's is not, and at t ~ 1000 a 1-ulp frequency error is a ~1e-4 phase error)."""
    half = dim // 2
    exponent = np.arange(half, dtype=np.float32) * np.float32(-math.log(max_period))
    exponent = exponent / np.float32(half)
    return np.exp(exponent.astype(np.float64)).astype(np.float32)


def timestep_embedding(t, dim: int, max_period: float = 10000.0):
    """diffusers ``get_timestep_embedding(t, dim, flip_sin_to_cos=True, downscale_freq_shift=0)``, float32."""
    emb = t.astype(F32)[:, None] * jnp.asarray(timestep_frequencies(dim, max_period))[None, :]
    emb = jnp.concatenate([jnp.cos(emb), jnp.sin(emb)], axis=-1)
    if dim % 2:
        emb = jnp.pad(emb, ((0, 0), (0, 1)))
    return emb


class TimestepEmbedding(nnx.Module):
    def __init__(self, din: int, dim: int, *, rngs, param_dtype=F32):
        # Always float32 compute (diffusers keeps `time_embedder` in fp32).
        self.linear_1 = linear(din, dim, rngs=rngs, dtype=F32, param_dtype=param_dtype)
        self.linear_2 = linear(dim, dim, rngs=rngs, dtype=F32, param_dtype=param_dtype)

    def __call__(self, x):
        return self.linear_2(jax.nn.silu(self.linear_1(x)))


class TextProjection(nnx.Module):
    """diffusers ``PixArtAlphaTextProjection(act_fn='gelu_tanh')``."""

    def __init__(self, din: int, dim: int, *, rngs, dtype=F32, param_dtype=F32):
        self.linear_1 = linear(din, dim, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.linear_2 = linear(dim, dim, rngs=rngs, dtype=dtype, param_dtype=param_dtype)

    def __call__(self, x):
        return self.linear_2(jax.nn.gelu(self.linear_1(x), approximate=True))


class WanImageEmbedding(nnx.Module):
    def __init__(self, din: int, dout: int, *, rngs, dtype=F32, param_dtype=F32):
        self.norm1 = LayerNorm(din, 1e-5, elementwise_affine=True, param_dtype=param_dtype)
        self.ff = FeedForward(din, din, dout, approximate=False, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.norm2 = LayerNorm(dout, 1e-5, elementwise_affine=True, param_dtype=param_dtype)

    def __call__(self, x):
        return self.norm2(self.ff(self.norm1(x)))


class WanTimeTextImageEmbedding(nnx.Module):
    def __init__(
        self,
        dim: int,
        time_freq_dim: int,
        time_proj_dim: int,
        text_embed_dim: int,
        image_embed_dim: int | None = None,
        *,
        rngs,
        dtype=F32,
        param_dtype=F32,
    ):
        self.freq_dim = time_freq_dim
        self.dtype = dtype
        self.time_embedder = TimestepEmbedding(time_freq_dim, dim, rngs=rngs, param_dtype=param_dtype)
        self.time_proj = linear(dim, time_proj_dim, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.text_embedder = TextProjection(text_embed_dim, dim, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.has_image = image_embed_dim is not None
        if self.has_image:
            self.image_embedder = WanImageEmbedding(
                image_embed_dim, dim, rngs=rngs, dtype=dtype, param_dtype=param_dtype
            )

    def __call__(self, timestep, context, context_image=None):
        """Returns ``temb`` (B, dim), ``timestep_proj`` (B, 6*dim), text context, image context."""
        t = timestep_embedding(timestep, self.freq_dim)
        temb = self.time_embedder(t).astype(self.dtype)
        timestep_proj = self.time_proj(jax.nn.silu(temb))
        context = self.text_embedder(context.astype(self.dtype))
        if context_image is not None:
            if not self.has_image:
                raise ValueError("encoder_hidden_states_image given but the config has no image_dim (T2V model)")
            context_image = self.image_embedder(context_image.astype(self.dtype))
        return temb, timestep_proj, context, context_image
