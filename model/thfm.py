"""THFM: the WAN 2.1 video DiT used as a one-step, text-prompted perception model (flax nnx).

One forward pass maps the *noise-free* RGB latents of a clip to the latents of the prompted task's
3-channel target video (depth, normals, mask, iuv, canonical) and, through appended keypoint
tokens, to 2D and 3D keypoints for every frame:

    model = THFM(THFMConfig(dit=WAN21_1_3B, num_frames=81, num_keypoints=24), prompts, rngs=nnx.Rngs(0))
    out = model(rgb_latents, task_ids)      # rgb_latents (B, T', H', W', C) channels-last (or (B, C, T', H', W'))
    out["latents"]        # (B, T', H', W', C) float32: predicted target latents (same layout as the input)
    out["keypoints_2d"]   # (B, T, K, 2) normalised image coordinates
    out["keypoints_3d"]   # (B, T, K, 3) OpenCV camera frame, metres

**Timestep.** The DiT is run once at the diffusion time ``config.timestep`` (default 999, the last
training timestep of WAN's 1000-step flow-matching schedule, i.e. sigma ~ 1: the DiT sees its
input as pure "noise") with the clean RGB latents as that input. WAN predicts the flow velocity
``v = noise - x0``; THFM takes ``-v`` as the predicted target latents (no sampling loop, no noise:
one deterministic pass). ``timestep`` is a config field (``model.timestep`` in the train YAML).

**Task.** Chosen only by the prompt: the cross-attention context is the task's prompt embedding,
looked up from a table (``PromptEmbeddings``, a non-trainable variable holding ``(n_tasks, S,
text_dim)``; tasks are indexed as in :data:`TASKS`; shorter prompts are zero-padded to ``S`` like
WAN pads umT5 context). The table is saved in checkpoints, so predict needs no shard folder.

**Keypoint tokens.** ``T = config.num_frames`` learnable tokens (one per video frame) are appended
to the ``F*H*W`` video tokens (patch grid) of *every* sample, so a batch mixing dense and keypoint
tasks has one static shape and compiles once (dense tasks may attend to them; they are trained to
be useful or ignored; with ``config.token_mask`` they cannot: the video tokens' self-attention
then excludes the keypoint tokens - the paper's "Token Mask" ablation - while the keypoint tokens
still attend to every token). Their 3D RoPE positions:

- temporal: frame ``i`` of ``T`` sits at latent-frame position ``i * (F - 1) / (T - 1)`` (linear
  interpolation of the T frames onto the F = T' latent frames; for T = 1 + 4k: ``i / 4``, so frame
  ``4j`` shares latent frame ``j``'s temporal angle exactly), see :func:`keypoint_positions`;
- spatial: learnable ``(T, 2)`` parameters in normalised grid coordinates (0 = first row/column
  of the patch grid, 1 = last; initialised at the centre 0.5), scaled by ``(H - 1, W - 1)`` at run
  time (resolution-independent). The angles are ``position * theta^(-2i/d)`` with WAN's split of
  the head dim, computed in the step, so gradients reach the positions.

After the last block the keypoint tokens go through an MLP head (LayerNorm -> Linear -> GELU ->
Linear) to ``K * (2 + 3)`` numbers per frame: 2D = 0.5 + head, 3D = (0, 0, KP3D_DEPTH_OFFSET) + head
(fixed offsets so a zero head predicts the image centre at a typical distance).

Loading real WAN 2.1 weights: :func:`build_thfm` with ``pretrained=`` uses
:func:`model.wan.load_wan_transformer`, then adds the THFM parameters (keypoint tokens, positions,
head) with random init.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model.tasks import DENSE_TASKS, KEYPOINT_TASKS, TASK_INDEX, TASKS  # noqa: F401  (re-exported)
from model.wan import CONFIGS, DATA_SIZED, WanTransformer3D, WanTransformerConfig, dit_flops, load_wan_transformer
from model.wan.layers import F32, LayerNorm, linear
from model.wan.rope import rope_split, rope_tables

KP3D_DEPTH_OFFSET = 4.0  # metres; initial depth of predicted 3D keypoints
ROPE_THETA = 10000.0


@dataclasses.dataclass(frozen=True)
class THFMConfig:
    """Architecture of THFM: the DiT config plus the keypoint-token/head sizes and the timestep."""

    dit: WanTransformerConfig
    num_frames: int  # T: video frames per clip (= number of keypoint tokens)
    num_keypoints: int  # K
    timestep: float = 999.0
    kp_head_hidden: int | None = None  # default: the DiT width
    token_mask: bool = False  # video tokens do not attend to the keypoint tokens (see the module doc)

    def __post_init__(self):
        if self.num_frames < 1 or self.num_keypoints < 1:
            raise ValueError(f"num_frames and num_keypoints must be >= 1, got {self.num_frames}/{self.num_keypoints}")

    @property
    def hidden(self) -> int:
        return self.kp_head_hidden or self.dit.inner_dim

    def to_dict(self) -> dict:
        d = {
            "dit": self.dit.to_diffusers_dict(),
            "num_frames": self.num_frames,
            "num_keypoints": self.num_keypoints,
            "timestep": self.timestep,
            "kp_head_hidden": self.kp_head_hidden,
        }
        if self.token_mask:  # only when on, so configs (and checkpoints) from before the option compare equal
            d["token_mask"] = True
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "THFMConfig":
        return cls(
            dit=WanTransformerConfig.from_diffusers_dict(d["dit"]),
            num_frames=int(d["num_frames"]),
            num_keypoints=int(d["num_keypoints"]),
            timestep=float(d.get("timestep", 999.0)),
            kp_head_hidden=d.get("kp_head_hidden"),
            token_mask=bool(d.get("token_mask", False)),
        )


def dit_config(
    size: str, *, latent_channels: int = 16, text_dim: int | None = None, overrides: Mapping[str, Any] | None = None
) -> WanTransformerConfig:
    """The DiT config for a model size: ``tiny`` / ``small`` (WAN_TINY / WAN_SMALL with the data's
    latent channels and prompt dim), ``wan21_1_3b`` / ``wan21_14b`` (exact WAN configs; text_dim must
    be 4096), or ``custom`` (WAN_TINY with ``overrides``)."""
    if size not in ("custom", *CONFIGS):
        raise ValueError(f"model size must be custom or one of {sorted(CONFIGS)}, got {size!r}")
    base = CONFIGS["tiny"] if size == "custom" else CONFIGS[size]
    if size in DATA_SIZED:
        base = base.replace(
            in_channels=latent_channels,
            out_channels=latent_channels,
            text_dim=text_dim or base.text_dim,
            rope_max_seq_len=1024,
        )
    if overrides:
        base = base.replace(**dict(overrides))
    return base


class PromptEmbeddings(nnx.Variable):
    """Task prompt embeddings ``(n_tasks, S, text_dim)`` (not trained; saved with the params)."""


def prompt_array(
    table: Mapping[str, np.ndarray], text_dim: int, length: int | None = None, tasks: tuple[str, ...] = TASKS
) -> np.ndarray:
    """Stack a ``{task: (L, D)}`` prompt table into ``(len(tasks), S, D)`` (zero padded to ``S``; row i is
    ``tasks[i]``). Tasks missing from the table get all-zero context (and must not be trained on)."""
    dims = {int(np.shape(e)[-1]) for e in table.values()}
    if dims != {text_dim}:
        raise ValueError(
            f"prompt embeddings have dim {sorted(dims)} but the DiT expects text_dim={text_dim}; "
            "embed the prompts for this model (umT5 for WAN 2.1) or use a matching model size"
        )
    s = length or max(int(np.shape(e)[0]) for e in table.values())
    out = np.zeros((len(tasks), s, text_dim), np.float32)
    row = {t: i for i, t in enumerate(tasks)}
    for task, e in table.items():
        if task in row:
            e = np.asarray(e, np.float32)[:s]
            out[row[task], : e.shape[0]] = e
    return out


def keypoint_positions(num_frames: int, latent_frames: int, grid_hw: tuple[int, int], spatial01) -> jax.Array:
    """(T, 3) RoPE positions (t, h, w) of the keypoint tokens on the patch grid.

    t: frame i of T -> i * (F - 1) / (T - 1) (linear interpolation onto the F latent frames);
    h, w: ``spatial01`` (T, 2) in [0, 1] times (H - 1, W - 1) of the patch grid.
    """
    if num_frames > 1:
        t = np.arange(num_frames, dtype=np.float64) * (latent_frames - 1) / (num_frames - 1)
    else:
        t = np.zeros((1,), np.float64)
    scale = jnp.asarray([max(grid_hw[0] - 1, 0), max(grid_hw[1] - 1, 0)], F32)
    hw = spatial01.astype(F32) * scale
    return jnp.concatenate([jnp.asarray(t, F32)[:, None], hw], axis=-1)


def rope_from_positions(head_dim: int, positions) -> tuple[jax.Array, jax.Array]:
    """cos/sin ``(N, head_dim/2)`` for continuous (t, h, w) positions (N, 3), same frequency layout as
    :func:`model.wan.rope.rope_tables` (which is this at integer grid positions)."""
    parts = []
    for axis, dim in enumerate(rope_split(head_dim)):
        freqs = 1.0 / (ROPE_THETA ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
        parts.append(positions[:, axis : axis + 1] * jnp.asarray(freqs, F32)[None, :])
    ang = jnp.concatenate(parts, axis=-1)
    return jnp.cos(ang), jnp.sin(ang)


class KeypointHead(nnx.Module):
    def __init__(self, dim: int, hidden: int, num_keypoints: int, *, rngs: nnx.Rngs, dtype=F32, param_dtype=F32):
        self.num_keypoints = num_keypoints
        self.norm = LayerNorm(dim, 1e-6, elementwise_affine=True, param_dtype=param_dtype)
        self.fc1 = linear(dim, hidden, rngs=rngs, dtype=dtype, param_dtype=param_dtype)
        self.fc2 = nnx.Linear(
            hidden,
            num_keypoints * 5,
            use_bias=True,
            dtype=dtype,
            param_dtype=param_dtype,
            kernel_init=nnx.initializers.normal(0.02),
            rngs=rngs,
        )

    def __call__(self, x):
        """x (B, T, dim) -> kp2d (B, T, K, 2), kp3d (B, T, K, 3), float32."""
        y = self.fc2(jax.nn.gelu(self.fc1(self.norm(x)), approximate=True)).astype(F32)
        y = y.reshape(*x.shape[:2], self.num_keypoints, 5)
        kp2d = 0.5 + y[..., :2]
        kp3d = y[..., 2:] + jnp.asarray([0.0, 0.0, KP3D_DEPTH_OFFSET], F32)
        return kp2d, kp3d


class THFM(nnx.Module):
    """See the module docstring. ``dit`` may be passed (e.g. loaded from WAN 2.1 weights)."""

    def __init__(
        self,
        config: THFMConfig,
        prompts: np.ndarray,
        *,
        rngs: nnx.Rngs,
        dtype=F32,
        param_dtype=F32,
        scan_layers: bool = True,
        remat: bool = False,
        attention_impl: str | None = "auto",
        dit: WanTransformer3D | None = None,
    ):
        self.config = config
        self.dtype = dtype
        cfg = config.dit
        if dit is None:
            dit = WanTransformer3D(
                cfg,
                rngs=rngs,
                dtype=dtype,
                param_dtype=param_dtype,
                scan_layers=scan_layers,
                remat=remat,
                attention_impl=attention_impl,
            )
        elif dit.config != cfg:
            raise ValueError("the given DiT's config differs from THFMConfig.dit")
        self.dit = dit
        prompts = np.asarray(prompts, np.float32)
        # one row per task of the run (meta["tasks"] of a checkpoint names them; usually model.tasks.TASKS)
        if prompts.ndim != 3 or prompts.shape[0] < 1 or prompts.shape[2] != cfg.text_dim:
            raise ValueError(f"prompts must be (n_tasks, S, {cfg.text_dim}), got {prompts.shape}")
        self.prompts = PromptEmbeddings(jnp.asarray(prompts))
        dim = cfg.inner_dim
        self.kp_tokens = nnx.Param(0.02 * jax.random.normal(rngs.params(), (config.num_frames, dim), param_dtype))
        self.kp_spatial = nnx.Param(jnp.full((config.num_frames, 2), 0.5, param_dtype))
        self.kp_head = KeypointHead(
            dim, config.hidden, config.num_keypoints, rngs=rngs, dtype=dtype, param_dtype=param_dtype
        )

    def keypoint_rope(self, latent_frames: int, grid_hw: tuple[int, int]):
        pos = keypoint_positions(self.config.num_frames, latent_frames, grid_hw, self.kp_spatial[...])
        return rope_from_positions(self.config.dit.attention_head_dim, pos)

    def __call__(self, rgb_latents, task_ids, *, channels_last: bool = True) -> dict[str, jax.Array]:
        cfg = self.config.dit
        dit = self.dit
        x = rgb_latents if channels_last else jnp.moveaxis(rgb_latents, 1, -1)
        b, t, h, w, c = x.shape
        pt, ph, pw = cfg.patch_size
        if c != cfg.in_channels:
            raise ValueError(f"latents have {c} channels, the DiT expects {cfg.in_channels}")
        if t % pt or h % ph or w % pw:
            raise ValueError(f"latent T,H,W=({t},{h},{w}) must be divisible by patch_size {cfg.patch_size}")
        grid = (t // pt, h // ph, w // pw)
        n_video = grid[0] * grid[1] * grid[2]

        cos, sin = rope_tables(cfg.attention_head_dim, grid, cfg.rope_max_seq_len)
        kcos, ksin = self.keypoint_rope(grid[0], grid[1:])
        rope = (jnp.concatenate([jnp.asarray(cos), kcos], 0), jnp.concatenate([jnp.asarray(sin), ksin], 0))

        tokens = dit.patch_embedding(x.astype(self.dtype)).reshape(b, n_video, cfg.inner_dim)
        kp = jnp.broadcast_to(self.kp_tokens[...].astype(self.dtype)[None], (b, *self.kp_tokens.shape))
        tokens = jnp.concatenate([tokens, kp], axis=1)

        context = jnp.take(self.prompts[...], jnp.asarray(task_ids, jnp.int32), axis=0)
        timestep = jnp.full((b,), self.config.timestep, F32)
        temb, timestep_proj, context, _ = dit.condition_embedder(timestep, context)
        timestep_proj = timestep_proj.reshape(b, 6, cfg.inner_dim)

        # token mask: video queries see only video keys, keypoint queries see everything
        kv_split = n_video if self.config.token_mask else None
        tokens = dit._run_blocks(tokens, context, timestep_proj, rope, kv_split=kv_split)
        video, kp_out = tokens[:, :n_video], tokens[:, n_video:]

        mod = dit.scale_shift_table[...].astype(F32) + temb.astype(F32)[:, None, :]
        shift, scale = mod[:, 0:1], mod[:, 1:2]
        video = (dit.norm_out(video.astype(F32)) * (1 + scale) + shift).astype(self.dtype)
        video = dit.proj_out(video)
        f_, h_, w_ = grid
        video = video.reshape(b, f_, h_, w_, pt, ph, pw, cfg.out_channels)
        video = video.transpose(0, 1, 4, 2, 5, 3, 6, 7).reshape(b, t, h, w, cfg.out_channels)
        latents = -video.astype(F32)  # the DiT predicts v; THFM's prediction is -v
        if not channels_last:
            latents = jnp.moveaxis(latents, -1, 1)
        kp2d, kp3d = self.kp_head(kp_out)
        return {"latents": latents, "keypoints_2d": kp2d, "keypoints_3d": kp3d}


def build_thfm(
    config: THFMConfig,
    prompts: np.ndarray,
    *,
    seed: int = 0,
    dtype=F32,
    param_dtype=F32,
    scan_layers: bool = True,
    remat: bool = False,
    attention_impl: str | None = "auto",
    pretrained: str | None = None,
    abstract: bool = False,
) -> THFM:
    """Random-init THFM, or with the DiT loaded from WAN 2.1 weights (``pretrained``: diffusers or
    original Wan-AI safetensors file/folder; the THFM-only params are random). ``abstract=True``
    gives an ``nnx.eval_shape`` model (shapes only, for checkpoint restore)."""
    kw = dict(dtype=dtype, param_dtype=param_dtype, scan_layers=scan_layers, remat=remat, attention_impl=attention_impl)

    def make(dit=None):
        return THFM(config, prompts, rngs=nnx.Rngs(seed), dit=dit, **kw)

    if abstract:
        return nnx.eval_shape(make)
    if pretrained:
        dit = load_wan_transformer(pretrained, config.dit, **kw)
        return make(dit)
    return make()


def thfm_flops(
    config: THFMConfig, batch: int, latent_frames: int, latent_height: int, latent_width: int, text_len: int
) -> dict[str, float]:
    """Forward FLOPs of THFM: :func:`model.wan.dit_flops` for the video tokens, corrected for the
    ``T`` appended keypoint tokens (per-token matmuls scale with N = L + T, self-attention with N^2),
    plus the keypoint head. A training step is 3x this (the trainer's MFU convention)."""
    cfg = config.dit
    f = dict(dit_flops(cfg, batch, latent_frames, latent_height, latent_width, text_len=text_len))
    n_video = f["tokens"] / batch
    n = n_video + config.num_frames
    r = n / n_video
    b, d, s = batch, cfg.inner_dim, text_len
    f["self_attn_proj"] *= r
    # with the token mask the video queries skip the T keypoint keys: L^2 + T*N instead of N^2
    f["self_attn_core"] *= (n_video**2 + config.num_frames * n) / n_video**2 if config.token_mask else r * r
    f["ffn"] *= r
    text_kv = cfg.num_layers * 2 * b * s * d * d * 2
    f["cross_attn_proj"] = (f["cross_attn_proj"] - text_kv) * r + text_kv
    f["cross_attn_core"] *= r
    f["kp_head"] = 2.0 * b * config.num_frames * (d * config.hidden + config.hidden * config.num_keypoints * 5)
    f["total"] = sum(v for k, v in f.items() if k not in ("total", "tokens"))
    f["tokens"] = float(b * n)
    return f
