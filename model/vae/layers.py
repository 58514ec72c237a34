"""flax nnx layers of the WAN 2.1 VAE, channels-last: every activation is ``(B, T, H, W, C)``.

Module attribute names follow diffusers' ``autoencoder_kl_wan.py`` so that a diffusers key maps
to an nnx path by a small table (see :mod:`model.vae.loading`); parameters are named flax-style
(``kernel``/``bias``; RMS norms keep diffusers' ``gamma``). Kernels are stored in flax layout
(``(kt, kh, kw, in, out)`` for 3D, ``(kh, kw, in, out)`` for 2D, ``(in, out)`` for the 1x1 attention
projections) and cast to the activation dtype on use, so bf16 compute with f32 weights works.

Causal time handling
--------------------
diffusers runs the encoder on chunks of 1, 4, 4, ... frames and the decoder on one latent frame
at a time, carrying a ``feat_cache`` list between chunks. :class:`FeatCache` is the functional
equivalent: a list of arrays read in layer order from the previous chunk and written for the next
one, so a chunk step is a pure function ``(params, x, cache) -> (y, cache')`` that jits. The rules
(each checked against diffusers in tests/test_vae_parity.py):

* causal 3x3x3 conv: its cache holds the last 2 input frames; the first chunk sees zeros. This is
  exactly diffusers' "cache last frame of last two chunk" rule plus its zero padding.
* ``downsample3d`` (stride-2 time conv): the first chunk passes through unchanged and caches its
  last frame; later chunks prepend the cached frame and run the valid stride-2 conv.
* ``upsample3d`` (time conv to 2x channels, interleaved to 2x frames): the first chunk skips the
  time conv (diffusers' ``"Rep"`` marker) and leaves a zero cache, so the first latent frame
  decodes to 1 frame and every later one to 2 (x2 per upsample3d stage).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

F32 = jnp.float32
CACHE_T = 2  # frames of history a causal 3x3x3 conv needs (diffusers' CACHE_T)

_List = getattr(nnx, "List", list)


def module_list(modules):
    """``nnx.List`` on flax >= 0.12, a plain list on older flax (where lists are graph nodes)."""
    return _List(modules)


def _precision(dtype):
    # Full fp32 matmuls/convs for fp32 (no TF32 on GPU, so GPU matches CPU/diffusers); default otherwise.
    return jax.lax.Precision.HIGHEST if jnp.dtype(dtype) == jnp.float32 else None


def _triple(v) -> tuple[int, int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v, v)


def _init(rngs: nnx.Rngs, shape, fan_in: int):
    """torch's default conv init (kaiming_uniform, a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Drawn with numpy from a seed taken from ``rngs``: eager ``jax.random`` would compile once per
    parameter shape (~20 s for the tiny config on CPU). Under tracing (``nnx.eval_shape``) jax is used.
    """
    bound = 1.0 / math.sqrt(fan_in)
    key = rngs.params()
    try:
        bits = np.asarray(jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key)
    except jax.errors.TracerArrayConversionError:
        return jax.random.uniform(key, shape, F32, -bound, bound)
    rng = np.random.default_rng([int(b) for b in bits.ravel()])
    return jnp.asarray(rng.uniform(-bound, bound, shape).astype(np.float32))


class FeatCache:
    """Causal state of one chunk step: read entries in layer order, write the next chunk's.

    ``FeatCache(None)`` is the first chunk (diffusers' ``feat_cache = [None] * n``); afterwards pass
    ``FeatCache(prev.out)``. Works inside ``jax.jit``: the entries are a plain list of arrays.
    """

    def __init__(self, entries: list | None = None, conv_impl: str = "auto"):
        self.first = entries is None
        self.conv_impl = conv_impl
        self._in = list(entries) if entries is not None else []
        self._pos = 0
        self.out: list[jax.Array] = []

    def read(self):
        if self.first:
            self._pos += 1
            return None
        if self._pos >= len(self._in):
            raise ValueError("feature cache has fewer entries than the model has causal layers")
        v = self._in[self._pos]
        self._pos += 1
        return v

    def write(self, v) -> None:
        self.out.append(v)


class CausalConv3d(nnx.Module):
    """diffusers ``WanCausalConv3d``: zero padding ``2*p_t`` frames in front, ``p_h``/``p_w`` both sides."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0, *, rngs: nnx.Rngs):
        k = _triple(kernel_size)
        self.stride = _triple(stride)
        pt, ph, pw = _triple(padding)
        self.time_pad = 2 * pt
        self.spatial_pad = ((ph, ph), (pw, pw))
        self.kernel = nnx.Param(_init(rngs, (*k, cin, cout), cin * k[0] * k[1] * k[2]))
        self.bias = nnx.Param(_init(rngs, (cout,), cin * k[0] * k[1] * k[2]))

    def __call__(self, x: jax.Array, prev: jax.Array | None = None, impl: str = "auto") -> jax.Array:
        """``prev``: frames preceding ``x`` (at most ``time_pad``); missing ones are zeros.
        ``impl``: ``"conv3d"`` (one 3D conv), ``"sum2d"`` (per-frame 2D convs, faster on XLA:CPU) or
        ``"auto"`` (sum2d on the CPU backend, conv3d elsewhere)."""
        if self.time_pad:
            n_prev = 0 if prev is None else prev.shape[1]
            if n_prev:
                x = jnp.concatenate([prev.astype(x.dtype), x], axis=1)
            if self.time_pad - n_prev > 0:
                x = jnp.pad(x, ((0, 0), (self.time_pad - n_prev, 0), (0, 0), (0, 0), (0, 0)))
        kernel = self.kernel[...].astype(x.dtype)
        if kernel.shape[:3] == (1, 1, 1) and self.stride == (1, 1, 1):
            y = jnp.einsum("bthwi,io->bthwo", x, kernel[0, 0, 0], precision=_precision(x.dtype))
        elif self.stride[0] == 1 and resolve_conv_impl(impl) == "sum2d":
            y = _conv3d_as_2d(x, kernel, self.stride[1:], self.spatial_pad)
        else:
            y = jax.lax.conv_general_dilated(
                x,
                kernel,
                window_strides=self.stride,
                padding=((0, 0), *self.spatial_pad),
                dimension_numbers=("NTHWC", "THWIO", "NTHWC"),
                precision=_precision(x.dtype),
            )
        return y + self.bias[...].astype(y.dtype)

    def cached(self, x: jax.Array, cache: FeatCache) -> jax.Array:
        """Chunked causal call: history from ``cache``, last ``CACHE_T`` input frames written back."""
        prev = cache.read()
        if prev is None:
            prev = jnp.zeros((x.shape[0], CACHE_T, *x.shape[2:]), x.dtype)
        cache.write(_last_frames(prev, x))
        return self(x, prev, impl=cache.conv_impl)


CONV_IMPLS = ("auto", "conv3d", "sum2d")


def resolve_conv_impl(impl: str) -> str:
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "auto":
        return "sum2d" if jax.default_backend() == "cpu" else "conv3d"
    return impl


def _conv3d_as_2d(x, kernel, stride, padding):
    """A temporally valid 3D conv as a sum of ``kt`` per-frame 2D convs (~1.5x faster on XLA:CPU)."""
    b, t, h, w, c = x.shape
    kt = kernel.shape[0]
    tn = t - kt + 1
    y = None
    for dt in range(kt):
        xs = x[:, dt : dt + tn].reshape(b * tn, h, w, c)
        ys = jax.lax.conv_general_dilated(
            xs,
            kernel[dt],
            window_strides=stride,
            padding=padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=_precision(x.dtype),
        )
        y = ys if y is None else y + ys
    return y.reshape(b, tn, *y.shape[1:])


def _last_frames(prev: jax.Array, x: jax.Array) -> jax.Array:
    """The last ``CACHE_T`` frames of ``concat(prev, x)`` along time (diffusers' cache_x rule)."""
    if x.shape[1] >= CACHE_T:
        return x[:, -CACHE_T:]
    return jnp.concatenate([prev[:, x.shape[1] - CACHE_T :].astype(x.dtype), x], axis=1)


class Conv2d(nnx.Module):
    """torch ``nn.Conv2d`` applied frame by frame to ``(N, H, W, C)``."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding=0, *, rngs: nnx.Rngs):
        self.stride = (stride, stride)
        self.padding = ((padding, padding), (padding, padding)) if isinstance(padding, int) else padding
        self.kernel = nnx.Param(_init(rngs, (kernel_size, kernel_size, cin, cout), cin * kernel_size**2))
        self.bias = nnx.Param(_init(rngs, (cout,), cin * kernel_size**2))

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.lax.conv_general_dilated(
            x,
            self.kernel[...].astype(x.dtype),
            window_strides=self.stride,
            padding=self.padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=_precision(x.dtype),
        )
        return y + self.bias[...].astype(y.dtype)


class Pointwise(nnx.Module):
    """A 1x1 ``nn.Conv2d`` (attention ``to_qkv``/``proj``) as a matmul over the channel axis."""

    def __init__(self, cin: int, cout: int, *, rngs: nnx.Rngs):
        self.kernel = nnx.Param(_init(rngs, (cin, cout), cin))
        self.bias = nnx.Param(_init(rngs, (cout,), cin))

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jnp.einsum("...i,io->...o", x, self.kernel[...].astype(x.dtype), precision=_precision(x.dtype))
        return y + self.bias[...].astype(y.dtype)


class RMSNorm(nnx.Module):
    """diffusers ``WanRMS_norm`` (no bias): ``F.normalize(x, dim=C) * sqrt(C) * gamma``, in fp32."""

    def __init__(self, dim: int):
        self.scale = dim**0.5
        self.gamma = nnx.Param(jnp.ones((dim,), F32))

    def __call__(self, x: jax.Array) -> jax.Array:
        xf = x.astype(F32)
        norm = jnp.sqrt(jnp.sum(xf * xf, axis=-1, keepdims=True))
        y = xf / jnp.maximum(norm, 1e-12)  # torch F.normalize eps
        return (y.astype(x.dtype) * self.scale * self.gamma[...].astype(x.dtype)).astype(x.dtype)


class ResidualBlock(nnx.Module):
    """diffusers ``WanResidualBlock``: norm-silu-conv x2 plus a (1x1x1 conv) shortcut."""

    def __init__(self, in_dim: int, out_dim: int, *, rngs: nnx.Rngs):
        self.norm1 = RMSNorm(in_dim)
        self.conv1 = CausalConv3d(in_dim, out_dim, 3, padding=1, rngs=rngs)
        self.norm2 = RMSNorm(out_dim)
        self.conv2 = CausalConv3d(out_dim, out_dim, 3, padding=1, rngs=rngs)
        self.conv_shortcut = CausalConv3d(in_dim, out_dim, 1, rngs=rngs) if in_dim != out_dim else None

    def __call__(self, x: jax.Array, cache: FeatCache) -> jax.Array:
        h = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        x = self.conv1.cached(jax.nn.silu(self.norm1(x)), cache)
        x = self.conv2.cached(jax.nn.silu(self.norm2(x)), cache)  # dropout: identity at inference
        return x + h


class AttentionBlock(nnx.Module):
    """diffusers ``WanAttentionBlock``: single-head self-attention over the H*W positions of each frame."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.norm = RMSNorm(dim)
        self.to_qkv = Pointwise(dim, 3 * dim, rngs=rngs)
        self.proj = Pointwise(dim, dim, rngs=rngs)

    def __call__(self, x: jax.Array, cache: FeatCache | None = None) -> jax.Array:
        b, t, h, w, c = x.shape
        qkv = self.to_qkv(self.norm(x)).reshape(b * t, h * w, 3 * c)
        q, k, v = jnp.split(qkv, 3, axis=-1)
        prec = _precision(x.dtype)
        logits = jnp.einsum("nqc,nkc->nqk", q, k, precision=prec).astype(F32) / math.sqrt(c)
        p = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        y = jnp.einsum("nqk,nkc->nqc", p, v, precision=prec).reshape(b, t, h, w, c)
        return self.proj(y) + x


class Resample(nnx.Module):
    """diffusers ``WanResample``: ``upsample2d/3d`` (nearest x2 + 3x3 conv to ``dim // 2``, 3d adds a
    causal time conv doubling the frames) and ``downsample2d/3d`` (pad right/bottom + stride-2 3x3
    conv, 3d adds a stride-2 time conv). ``resample`` is the conv diffusers calls ``resample.1``.
    """

    MODES = ("upsample2d", "upsample3d", "downsample2d", "downsample3d")

    def __init__(self, dim: int, mode: str, upsample_out_dim: int | None = None, *, rngs: nnx.Rngs):
        if mode not in self.MODES:
            raise ValueError(f"unknown resample mode {mode!r}")
        self.mode = mode
        if mode.startswith("upsample"):
            out = dim // 2 if upsample_out_dim is None else upsample_out_dim
            self.resample = Conv2d(dim, out, 3, padding=1, rngs=rngs)
        else:
            self.resample = Conv2d(dim, dim, 3, stride=2, padding=((0, 1), (0, 1)), rngs=rngs)
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0), rngs=rngs)
        elif mode == "downsample3d":
            self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1), padding=0, rngs=rngs)
        else:
            self.time_conv = None

    def __call__(self, x: jax.Array, cache: FeatCache) -> jax.Array:
        b, t, h, w, c = x.shape
        if self.mode == "upsample3d":
            prev = cache.read()
            if cache.first:  # diffusers' "Rep": no time conv on the first chunk, zero history after it
                cache.write(jnp.zeros((b, CACHE_T, h, w, c), x.dtype))
            else:
                cache.write(_last_frames(prev, x))
                y = self.time_conv(x, prev, impl=cache.conv_impl)  # (b, t, h, w, 2c): block i is frame 2t+i
                x = y.reshape(b, t, h, w, 2, c).transpose(0, 1, 4, 2, 3, 5).reshape(b, 2 * t, h, w, c)
                t = 2 * t
        x = x.reshape(b * t, h, w, c)
        if self.mode.startswith("upsample"):
            x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # nearest-exact x2 == repeat
        x = self.resample(x)
        x = x.reshape(b, t, *x.shape[1:])
        if self.mode == "downsample3d":
            prev = cache.read()
            cache.write(x[:, -1:])
            if not cache.first:
                x = self.time_conv(jnp.concatenate([prev.astype(x.dtype), x], axis=1))
        return x


class MidBlock(nnx.Module):
    """diffusers ``WanMidBlock`` (num_layers=1): resnet, attention, resnet."""

    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.resnets = module_list([ResidualBlock(dim, dim, rngs=rngs), ResidualBlock(dim, dim, rngs=rngs)])
        self.attentions = module_list([AttentionBlock(dim, rngs=rngs)])

    def __call__(self, x: jax.Array, cache: FeatCache) -> jax.Array:
        x = self.resnets[0](x, cache)
        for attn, resnet in zip(self.attentions, list(self.resnets)[1:]):
            x = resnet(attn(x), cache)
        return x


class UpBlock(nnx.Module):
    """diffusers ``WanUpBlock``: ``num_res_blocks + 1`` resnets and an optional upsampler."""

    def __init__(self, in_dim: int, out_dim: int, num_res_blocks: int, upsample_mode: str | None, *, rngs: nnx.Rngs):
        dims = [in_dim] + [out_dim] * (num_res_blocks + 1)
        self.resnets = module_list([ResidualBlock(a, b, rngs=rngs) for a, b in zip(dims[:-1], dims[1:])])
        self.upsamplers = module_list([Resample(out_dim, upsample_mode, rngs=rngs)]) if upsample_mode else None

    def __call__(self, x: jax.Array, cache: FeatCache) -> jax.Array:
        for resnet in self.resnets:
            x = resnet(x, cache)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, cache)
        return x
