"""WAN attention (diffusers ``WanAttention`` + ``WanAttnProcessor``), self- and cross-attention.

q/k get an RMSNorm over the full ``heads * head_dim`` width ("rms_norm_across_heads") *before*
being split into heads; RoPE (self-attention only) is applied after the split. The I2V variant
adds a second attention over image tokens (``add_k_proj``/``add_v_proj``/``norm_added_k``), whose
output is summed with the text attention; as in diffusers, the last 512 context tokens are text.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from .layers import F32, RMSNorm, linear, module_list
from .rope import apply_rope

# diffusers hardcodes the UMT5 context length when splitting [image tokens, text tokens] in I2V.
I2V_TEXT_CONTEXT_LEN = 512

ATTENTION_IMPLS = ("auto", "xla", "cudnn", "chunked")
# Queries per block for attention_impl="chunked" (memory ~ B * heads * CHUNK * kv_len * 4 bytes).
ATTENTION_CHUNK = 2048


def resolve_attention_impl(impl: str | None, dtype) -> str:
    """'auto' -> 'cudnn' on GPU for bf16/fp16 compute, else 'xla'.

    'xla' and 'cudnn' are the backends of ``jax.nn.dot_product_attention`` ('xla' materialises the
    full (B, heads, L, S) logits); 'chunked' runs 'xla' attention over blocks of ATTENTION_CHUNK
    queries under ``jax.checkpoint`` (bounded memory on any backend, also in the backward pass).
    """
    impl = impl or "auto"
    if impl not in ATTENTION_IMPLS:
        raise ValueError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {impl!r}")
    if impl == "auto":
        low_precision = jnp.dtype(dtype) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))
        return "cudnn" if (jax.default_backend() == "gpu" and low_precision) else "xla"
    return impl


def _chunked_attention(q, k, v, chunk: int):
    b, n_q, h, d = q.shape
    if n_q <= chunk:
        return jax.nn.dot_product_attention(q, k, v, implementation="xla")
    pad = -n_q % chunk
    qc = jnp.pad(q, ((0, 0), (0, pad), (0, 0), (0, 0))).reshape(b, -1, chunk, h, d).swapaxes(0, 1)
    block = jax.checkpoint(lambda qq: jax.nn.dot_product_attention(qq, k, v, implementation="xla"))
    out = jax.lax.map(block, qc)  # (n_chunks, B, chunk, heads, D)
    return out.swapaxes(0, 1).reshape(b, -1, h, d)[:, :n_q]


def attention(q, k, v, impl: str):
    """softmax(q k^T / sqrt(d)) v on (B, L, N, D) tensors; logits/softmax in float32."""
    if impl == "chunked":
        return _chunked_attention(q, k, v, ATTENTION_CHUNK)
    return jax.nn.dot_product_attention(q, k, v, implementation=impl)


class WanAttention(nnx.Module):
    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int,
        eps: float,
        *,
        added_kv_proj_dim: int | None = None,
        rngs: nnx.Rngs,
        dtype=F32,
        param_dtype=F32,
        attention_impl: str | None = "auto",
    ):
        inner = heads * dim_head
        self.heads = heads
        self.dtype = dtype
        self.attention_impl = resolve_attention_impl(attention_impl, dtype)
        kw = dict(rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.to_q = linear(dim, inner, **kw)
        self.to_k = linear(dim, inner, **kw)
        self.to_v = linear(dim, inner, **kw)
        self.to_out = module_list([linear(inner, dim, **kw)])  # diffusers to_out = [Linear, Dropout]
        self.norm_q = RMSNorm(inner, eps, param_dtype=param_dtype)
        self.norm_k = RMSNorm(inner, eps, param_dtype=param_dtype)
        self.has_image_kv = added_kv_proj_dim is not None
        if self.has_image_kv:
            self.add_k_proj = linear(added_kv_proj_dim, inner, **kw)
            self.add_v_proj = linear(added_kv_proj_dim, inner, **kw)
            self.norm_added_k = RMSNorm(inner, eps, param_dtype=param_dtype)

    def _heads(self, x):
        return x.reshape(*x.shape[:-1], self.heads, x.shape[-1] // self.heads)

    def __call__(self, x, context=None, rope=None, kv_split: int | None = None):
        """x (B, L, dim); context (B, S, dim) for cross-attention (None: self-attention);
        rope: (cos, sin) tables (L, head_dim/2) or None. ``kv_split`` (self-attention only): the
        queries ``x[:, :kv_split]`` attend only to the keys ``[:kv_split]``, the rest to all keys
        (a block attention mask computed as two unmasked attentions, so every backend supports it)."""
        ctx_img = None
        if self.has_image_kv:
            n_img = context.shape[1] - I2V_TEXT_CONTEXT_LEN
            ctx_img, context = context[:, :n_img], context[:, n_img:]
        context = x if context is None else context

        q = self._heads(self.norm_q(self.to_q(x)))
        k = self._heads(self.norm_k(self.to_k(context)))
        v = self._heads(self.to_v(context))
        if rope is not None:
            q = apply_rope(q, *rope)
            k = apply_rope(k, *rope)

        if kv_split is not None and context is x:
            s = int(kv_split)
            out = jnp.concatenate(
                [
                    attention(q[:, :s], k[:, :s], v[:, :s], self.attention_impl),
                    attention(q[:, s:], k, v, self.attention_impl),
                ],
                axis=1,
            )
        else:
            out = attention(q, k, v, self.attention_impl)
        if ctx_img is not None:
            k_img = self._heads(self.norm_added_k(self.add_k_proj(ctx_img)))
            v_img = self._heads(self.add_v_proj(ctx_img))
            out = out + attention(q, k_img, v_img, self.attention_impl)
        out = out.reshape(*out.shape[:-2], -1).astype(self.dtype)
        return self.to_out[0](out)
