"""Small flax nnx building blocks shared by the WAN DiT port.

Parameter naming follows flax (``kernel``/``bias`` for Linear and the patch Conv3d, ``scale``/
``bias`` for norms); module attribute names follow diffusers so that a diffusers key such as
``blocks.0.ffn.net.2.weight`` lives at the nnx path ``('blocks', 0, 'ffn', 'net', 2, 'kernel')``
(see :mod:`model.wan.loading`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

F32 = jnp.float32

_List = getattr(nnx, "List", list)


def module_list(modules):
    """``nnx.List`` (flax >= 0.12); plain list on older flax where lists of modules are graph nodes."""
    return _List(modules)


def linear(din: int, dout: int, *, rngs: nnx.Rngs, dtype=F32, param_dtype=F32) -> nnx.Linear:
    """torch ``nn.Linear(din, dout, bias=True)``: params stored ``param_dtype``, matmul in ``dtype``."""
    return nnx.Linear(din, dout, use_bias=True, dtype=dtype, param_dtype=param_dtype, rngs=rngs)


class Identity(nnx.Module):
    """Stands in for diffusers' ``nn.Dropout(p=0)``/``nn.Identity`` so list indices match diffusers."""

    def __call__(self, x):
        return x


class LayerNorm(nnx.Module):
    """diffusers ``FP32LayerNorm``: computed in float32, result cast back to the input dtype."""

    def __init__(self, dim: int, eps: float, *, elementwise_affine: bool, param_dtype=F32):
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if elementwise_affine:
            self.scale = nnx.Param(jnp.ones((dim,), param_dtype))
            self.bias = nnx.Param(jnp.zeros((dim,), param_dtype))

    def __call__(self, x):
        dtype = x.dtype
        x = x.astype(F32)
        mean = jnp.mean(x, axis=-1, keepdims=True)
        xc = x - mean
        var = jnp.mean(jnp.square(xc), axis=-1, keepdims=True)
        y = xc * jax.lax.rsqrt(var + self.eps)
        if self.elementwise_affine:
            y = y * self.scale[...].astype(F32) + self.bias[...].astype(F32)
        return y.astype(dtype)


class RMSNorm(nnx.Module):
    """torch ``nn.RMSNorm(dim, eps, elementwise_affine=True)`` (over the last axis), computed in float32."""

    def __init__(self, dim: int, eps: float, *, param_dtype=F32):
        self.eps = float(eps)
        self.scale = nnx.Param(jnp.ones((dim,), param_dtype))

    def __call__(self, x):
        dtype = x.dtype
        x = x.astype(F32)
        y = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + self.eps)
        return (y * self.scale[...].astype(F32)).astype(dtype)


class GELUProj(nnx.Module):
    """diffusers ``attention.GELU``: ``gelu(proj(x))`` (``approximate`` True = tanh form)."""

    def __init__(self, din: int, dout: int, *, approximate: bool, rngs, dtype=F32, param_dtype=F32):
        self.approximate = bool(approximate)
        self.proj = linear(din, dout, rngs=rngs, dtype=dtype, param_dtype=param_dtype)

    def __call__(self, x):
        return jax.nn.gelu(self.proj(x), approximate=self.approximate)


class FeedForward(nnx.Module):
    """diffusers ``FeedForward``: ``net = [GELU(proj), Dropout, Linear]``."""

    def __init__(
        self,
        dim: int,
        inner_dim: int,
        dim_out: int | None = None,
        *,
        approximate: bool,
        rngs,
        dtype=F32,
        param_dtype=F32,
    ):
        dim_out = dim if dim_out is None else dim_out
        self.net = module_list(
            [
                GELUProj(dim, inner_dim, approximate=approximate, rngs=rngs, dtype=dtype, param_dtype=param_dtype),
                Identity(),
                linear(inner_dim, dim_out, rngs=rngs, dtype=dtype, param_dtype=param_dtype),
            ]
        )

    def __call__(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class PatchEmbed3D(nnx.Module):
    """torch ``nn.Conv3d(cin, dim, kernel_size=patch, stride=patch)`` as a patchify + matmul.

    ``kernel`` has flax Conv layout ``(pt, ph, pw, cin, dim)``. Input is channels-last
    ``(B, T, H, W, C)`` with T/H/W divisible by the patch; output ``(B, T/pt, H/ph, W/pw, dim)``.
    """

    def __init__(self, cin: int, dim: int, patch: tuple[int, int, int], *, rngs: nnx.Rngs, dtype=F32, param_dtype=F32):
        self.patch = tuple(patch)
        self.dtype = dtype
        fan_in = cin * patch[0] * patch[1] * patch[2]
        bound = 1.0 / fan_in**0.5  # torch Conv default init range
        self.kernel = nnx.Param(jax.random.uniform(rngs.params(), (*patch, cin, dim), param_dtype, -bound, bound))
        self.bias = nnx.Param(jax.random.uniform(rngs.params(), (dim,), param_dtype, -bound, bound))

    def __call__(self, x):
        b, t, h, w, c = x.shape
        pt, ph, pw = self.patch
        x = x.reshape(b, t // pt, pt, h // ph, ph, w // pw, pw, c).astype(self.dtype)
        y = jnp.einsum("bfphqwrc,pqrcd->bfhwd", x, self.kernel[...].astype(self.dtype))
        return y + self.bias[...].astype(self.dtype)
