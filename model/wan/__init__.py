"""WAN 2.1 video DiT (diffusers ``WanTransformer3DModel``) in JAX / flax nnx, with checkpoint loading.

    import jax
    import jax.numpy as jnp
    from flax import nnx
    from model.wan import WAN21_1_3B, WanTransformer3D, default_compute_dtype, load_wan_transformer

    # pretrained (diffusers folder/file or original Wan-AI file; config.json found beside it)
    model = load_wan_transformer("Wan2.1-T2V-1.3B-Diffusers/transformer", dtype=default_compute_dtype())
    # or random init:  model = WanTransformer3D(WAN21_1_3B, rngs=nnx.Rngs(0), dtype=jnp.bfloat16, remat=True)

    graphdef, params = nnx.split(model)

    @jax.jit
    def fwd(params, latents, t, text):  # latents (B, 16, T, H, W); t (B,); text (B, S, 4096)
        return nnx.merge(graphdef, params)(latents, t, text)  # -> (B, 16, T, H, W)

Modules: config (WanTransformerConfig, WAN21_1_3B, WAN21_14B, WAN_TINY), transformer
(WanTransformer3D), attention, embeddings, rope, layers, loading (checkpoints), flops (FLOP counter),
safetensors_io (numpy safetensors reader/writer).
"""

from .config import CONFIGS, DATA_SIZED, WAN21_1_3B, WAN21_14B, WAN_SMALL, WAN_TINY, WanTransformerConfig
from .flops import dit_flops
from .loading import (
    WanCheckpointError,
    detect_layout,
    diffusers_state_dict,
    diffusers_to_original_key,
    load_params,
    load_wan_transformer,
    original_to_diffusers_key,
    read_checkpoint,
    save_wan_transformer,
    to_original_state_dict,
)
from .transformer import WanTransformer3D, WanTransformerBlock, default_compute_dtype, num_params

__all__ = [
    "CONFIGS",
    "DATA_SIZED",
    "WAN21_1_3B",
    "WAN21_14B",
    "WAN_SMALL",
    "WAN_TINY",
    "WanTransformerConfig",
    "WanTransformer3D",
    "WanTransformerBlock",
    "default_compute_dtype",
    "num_params",
    "dit_flops",
    "WanCheckpointError",
    "detect_layout",
    "diffusers_state_dict",
    "diffusers_to_original_key",
    "load_params",
    "load_wan_transformer",
    "original_to_diffusers_key",
    "read_checkpoint",
    "save_wan_transformer",
    "to_original_state_dict",
]
