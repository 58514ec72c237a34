"""WAN 2.1 video DiT in flax nnx, numerically matching diffusers' ``WanTransformer3DModel``.

Input layout (default, as diffusers): latents ``(B, C, T, H, W)``; pass ``channels_last=True``
to give/get ``(B, T, H, W, C)`` instead. ``timestep`` is ``(B,)`` (float or int, diffusion time in
[0, 1000)); ``encoder_hidden_states`` is the UMT5 text context ``(B, S, text_dim)``;
``encoder_hidden_states_image`` (I2V only) the CLIP image tokens ``(B, 257, image_dim)``, in which
case the text context must have exactly 512 tokens (diffusers hardcodes this split).
T, H, W must be divisible by ``patch_size``. The output has ``out_channels`` channels and the input's
T, H, W, in the same layout as the input and in the compute dtype.

Precision follows diffusers' mixed-precision recipe: params are stored in ``param_dtype``
(float32); matmuls run in ``dtype`` (float32 on CPU, bfloat16 on GPU/TPU); the time MLP, all
LayerNorms/RMSNorms, the RoPE rotation, the adaLN modulation and the gated residual adds are float32.

Module attribute names mirror diffusers (``patch_embedding``, ``condition_embedder.time_embedder``,
``blocks[i].attn1.to_q``, ``blocks[i].ffn.net[0].proj``, ``scale_shift_table``, ``proj_out``...),
so loading a checkpoint is a rename table (:mod:`model.wan.loading`).

Layers: with ``scan_layers=True`` (default) ``blocks`` is ONE ``WanTransformerBlock`` whose params
carry a leading ``num_layers`` axis and the forward is a ``jax.lax.scan`` (compile time independent
of depth; ``remat=True`` checkpoints each layer). With ``scan_layers=False`` ``blocks`` is a list.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from .attention import WanAttention
from .config import WanTransformerConfig
from .embeddings import WanTimeTextImageEmbedding
from .layers import F32, FeedForward, Identity, LayerNorm, PatchEmbed3D, linear, module_list
from .rope import rope_tables


class WanTransformerBlock(nnx.Module):
    def __init__(
        self,
        cfg: WanTransformerConfig,
        *,
        rngs: nnx.Rngs,
        dtype=F32,
        param_dtype=F32,
        attention_impl: str | None = "auto",
    ):
        dim, heads = cfg.inner_dim, cfg.num_attention_heads
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.norm1 = LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.attn1 = WanAttention(dim, heads, dim // heads, cfg.eps, attention_impl=attention_impl, **kw)
        self.attn2 = WanAttention(
            dim,
            heads,
            dim // heads,
            cfg.eps,
            added_kv_proj_dim=cfg.added_kv_proj_dim,
            attention_impl=attention_impl,
            **kw,
        )
        if cfg.cross_attn_norm:
            self.norm2 = LayerNorm(dim, cfg.eps, elementwise_affine=True, param_dtype=param_dtype)
        else:
            self.norm2 = Identity()
        self.ffn = FeedForward(dim, cfg.ffn_dim, approximate=True, **kw)
        self.norm3 = LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.scale_shift_table = nnx.Param(jax.random.normal(rngs.params(), (1, 6, dim), param_dtype) / dim**0.5)

    def __call__(self, x, context, timestep_proj, rope, kv_split: int | None = None):
        """x (B, L, dim) compute dtype; timestep_proj (B, 6, dim); rope (cos, sin); kv_split: see
        ``WanAttention`` (self-attention block mask; None = full attention, as WAN)."""
        dtype = x.dtype
        mod = self.scale_shift_table[...].astype(F32) + timestep_proj.astype(F32)
        shift, scale, gate, c_shift, c_scale, c_gate = (mod[:, i : i + 1] for i in range(6))

        h = (self.norm1(x.astype(F32)) * (1 + scale) + shift).astype(dtype)
        x = (x.astype(F32) + self.attn1(h, None, rope, kv_split=kv_split) * gate).astype(dtype)

        h = self.norm2(x.astype(F32)).astype(dtype)
        x = x + self.attn2(h, context, None)

        h = (self.norm3(x.astype(F32)) * (1 + c_scale) + c_shift).astype(dtype)
        x = (x.astype(F32) + self.ffn(h).astype(F32) * c_gate).astype(dtype)
        return x


class WanTransformer3D(nnx.Module):
    """WAN 2.1 DiT. See the module docstring for layouts and precision."""

    def __init__(
        self,
        config: WanTransformerConfig,
        *,
        rngs: nnx.Rngs,
        dtype=F32,
        param_dtype=F32,
        scan_layers: bool = True,
        remat: bool = False,
        attention_impl: str | None = "auto",
    ):
        cfg = config
        self.config = cfg
        self.dtype = dtype
        self.scan_layers = bool(scan_layers)
        self.remat = bool(remat)
        dim = cfg.inner_dim
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)

        self.patch_embedding = PatchEmbed3D(cfg.in_channels, dim, cfg.patch_size, **kw)
        self.condition_embedder = WanTimeTextImageEmbedding(
            dim, cfg.freq_dim, 6 * dim, cfg.text_dim, cfg.image_dim, **kw
        )

        def make_block(r):
            return WanTransformerBlock(cfg, rngs=r, dtype=dtype, param_dtype=param_dtype, attention_impl=attention_impl)

        if self.scan_layers:
            # One block whose params have a leading layer axis (each layer initialised independently).
            # vmap traces the block init once, so an abstract build (nnx.eval_shape, used by
            # model.wan.loading so pretrained loads never materialise random params) costs the same
            # for 2 or 40 layers.
            keys = jax.random.split(rngs.params(), cfg.num_layers)
            stacked = jax.jit(jax.vmap(lambda k: nnx.state(make_block(nnx.Rngs(params=k)))))(keys)
            graphdef = nnx.graphdef(nnx.eval_shape(lambda: make_block(nnx.Rngs(0))))
            self.blocks = nnx.merge(graphdef, stacked)
        else:
            self.blocks = module_list([make_block(rngs) for _ in range(cfg.num_layers)])

        self.norm_out = LayerNorm(dim, cfg.eps, elementwise_affine=False)
        self.proj_out = linear(dim, cfg.out_channels * cfg.patch_volume, **kw)
        self.scale_shift_table = nnx.Param(jax.random.normal(rngs.params(), (1, 2, dim), param_dtype) / dim**0.5)

    def _run_blocks(self, x, context, timestep_proj, rope, kv_split: int | None = None):
        if not self.scan_layers:
            for block in self.blocks:
                fn = (
                    nnx.remat(lambda b, *a: b(*a, kv_split=kv_split))
                    if self.remat
                    else (lambda b, *a: b(*a, kv_split=kv_split))
                )
                x = fn(block, x, context, timestep_proj, rope)
            return x
        graphdef, params = nnx.split(self.blocks)

        def body(h, layer_params):
            return nnx.merge(graphdef, layer_params)(h, context, timestep_proj, rope, kv_split=kv_split), None

        if self.remat:
            body = jax.checkpoint(body, prevent_cse=False)
        x, _ = jax.lax.scan(body, x, params)
        return x

    def __call__(
        self,
        hidden_states,
        timestep,
        encoder_hidden_states,
        encoder_hidden_states_image=None,
        *,
        channels_last: bool = False,
    ):
        cfg = self.config
        x = hidden_states if channels_last else jnp.moveaxis(hidden_states, 1, -1)  # -> (B, T, H, W, C)
        b, t, h, w, c = x.shape
        pt, ph, pw = cfg.patch_size
        if c != cfg.in_channels:
            raise ValueError(
                f"latents have {c} channels, config.in_channels={cfg.in_channels} "
                f"(layout {'(B,T,H,W,C)' if channels_last else '(B,C,T,H,W)'})"
            )
        if t % pt or h % ph or w % pw:
            raise ValueError(f"latent T,H,W=({t},{h},{w}) must be divisible by patch_size {cfg.patch_size}")
        timestep = jnp.asarray(timestep)
        if timestep.ndim == 0:
            timestep = jnp.broadcast_to(timestep, (b,))
        if timestep.ndim != 1:
            raise ValueError(
                f"timestep must have shape (B,), got {timestep.shape} (per-token timesteps "
                "of WAN 2.2 TI2V are not ported)"
            )
        grid = (t // pt, h // ph, w // pw)
        cos, sin = rope_tables(cfg.attention_head_dim, grid, cfg.rope_max_seq_len)
        rope = (jnp.asarray(cos), jnp.asarray(sin))

        x = self.patch_embedding(x.astype(self.dtype))  # (B, F, H', W', dim)
        x = x.reshape(b, -1, cfg.inner_dim)

        temb, timestep_proj, context, context_img = self.condition_embedder(
            timestep, encoder_hidden_states, encoder_hidden_states_image
        )
        timestep_proj = timestep_proj.reshape(b, 6, cfg.inner_dim)
        if context_img is not None:
            context = jnp.concatenate([context_img, context], axis=1)

        x = self._run_blocks(x, context, timestep_proj, rope)

        mod = self.scale_shift_table[...].astype(F32) + temb.astype(F32)[:, None, :]
        shift, scale = mod[:, 0:1], mod[:, 1:2]
        x = (self.norm_out(x.astype(F32)) * (1 + scale) + shift).astype(self.dtype)
        x = self.proj_out(x)  # (B, L, pt*ph*pw*C_out), channel order (pt, ph, pw, C_out)

        f_, h_, w_ = grid
        x = x.reshape(b, f_, h_, w_, pt, ph, pw, cfg.out_channels)
        if channels_last:
            x = x.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, t, h, w, cfg.out_channels)
        else:
            x = x.transpose(0, 7, 1, 4, 2, 5, 3, 6).reshape(b, cfg.out_channels, t, h, w)
        return x


def default_compute_dtype():
    """bfloat16 on GPU/TPU, float32 on CPU."""
    return jnp.bfloat16 if jax.default_backend() in ("gpu", "tpu") else jnp.float32


def num_params(model: nnx.Module) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
