"""Train config (pydantic), loaded from YAML. Every field is documented; unknown keys are errors.

Relative paths (``data.shard_dir``, ``run_dir``, ...) are resolved against the current working
directory (where ``thfm-synth train`` runs, like ``runs/demo`` of ``thfm-synth demo``), except
that ``model.pretrained`` / ``vae.weights`` may also be given relative to the YAML file.
"""

from __future__ import annotations

from thfm_synth.errors import MissingFileError
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from model.tasks import TASKS


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class ModelSection(_Section):
    size: Literal["tiny", "small", "wan21_1_3b", "wan21_14b", "custom"] = Field(
        "tiny",
        description="DiT size: tiny / small (WAN_TINY / WAN_SMALL, latent channels and text dim taken "
        "from the data), the "
        "exact WAN 2.1 configs, or custom (WAN_TINY + `dit` overrides)",
    )
    dit: dict[str, Any] = Field(
        default_factory=dict, description="WanTransformerConfig field overrides (any size; required for custom)"
    )
    pretrained: str | None = Field(
        None,
        description="WAN 2.1 transformer weights (diffusers/original safetensors "
        "file or folder) loaded into the DiT; THFM-only params random",
    )
    init_from: str | None = Field(
        None,
        description="THFM checkpoint (run checkpoint folder or one step) whose "
        "params initialise this run (e.g. stage 2 from stage 1); "
        "optimizer, step and data state start fresh",
    )
    timestep: float = Field(999.0, ge=0, lt=1000, description="diffusion time of the single forward pass")
    kp_head_hidden: int | None = Field(None, ge=1, description="keypoint MLP width (default: DiT width)")
    token_mask: bool = Field(
        False,
        description="the paper's token mask: video (dense) tokens do not attend to the "
        "keypoint tokens; the keypoint tokens still attend to every token",
    )
    scan_layers: bool = Field(True, description="lax.scan over layers (compile time independent of depth)")
    remat: bool = Field(False, description="rematerialise each layer in the backward pass (memory for compute)")
    attention_impl: Literal["auto", "xla", "cudnn", "chunked"] = "auto"


class DataSection(_Section):
    shard_dir: str = Field(..., description="shard set folder (index.json, *.array_record, prompts.npz)")
    eval_shard_dir: str | None = Field(None, description="held-out shard set for evaluate() after training")
    eval_clips: int = Field(8, ge=1, description="held-out records per task evaluated")
    tasks: list[str] = Field(default_factory=lambda: list(TASKS), description="tasks trained on")
    mixing: dict[str, float] = Field(
        default_factory=dict, description="relative sampling weight per task (default 1 each)"
    )
    prompts: str | None = Field(
        None,
        description="prompt table .npz (default: <shard_dir>/prompts.npz, else the "
        "built-in table of the DiT's text_dim)",
    )
    text_len: int | None = Field(None, ge=1, description="context tokens (prompts zero-padded; default: longest)")
    shuffle: bool = True
    num_threads: int = Field(2, ge=1, description="grain read threads per host")
    prefetch: int = Field(8, ge=1, description="grain prefetch buffer (records)")
    prefetch_batches: int = Field(
        2,
        ge=0,
        description="batches a background thread prepares (read, verified, decoded, stacked) while the step "
        "runs; 0: the loop prepares each batch itself (same batches, same order)",
    )
    synthetic: dict[str, Any] | None = Field(
        None,
        description="if set and shard_dir has no index.json, write structured synthetic shards there first "
        "(kwargs of model.data.write_synthetic_shards: num_videos, num_frames, height, width, ...)",
    )

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v):
        bad = [t for t in v if t not in TASKS]
        if bad or not v:
            raise ValueError(f"unknown tasks {bad}; choose from {list(TASKS)}")
        return v

    @model_validator(mode="after")
    def _mixing(self):
        bad = [t for t in self.mixing if t not in self.tasks]
        if bad:
            raise ValueError(f"mixing weights for tasks not in data.tasks: {bad}")
        if any(w < 0 for w in self.mixing.values()):
            raise ValueError("mixing weights must be >= 0")
        return self

    def weights(self) -> dict[str, float]:
        return {t: float(self.mixing.get(t, 1.0)) for t in self.tasks}


class VAESection(_Section):
    weights: str | None = Field(
        None,
        description="WAN 2.1 VAE weights for stage-2 decoding/predict; None: the "
        "parameter-free DCT codec (must match the shards' vae_id)",
    )
    latents_normalized: bool = Field(
        True,
        description="shards hold codec.normalize_latents(mean) (identity for "
        "the DCT codec); decoded with denormalize_latents first",
    )


class MeshSection(_Section):
    data: int = Field(-1, description="data-parallel axis size (-1: all devices left after fsdp)")
    fsdp: int = Field(1, ge=1, description="parameter-sharding axis size (params/opt state sharded, batch split)")
    min_shard_size: int = Field(2**14, ge=0, description="params with fewer elements stay replicated")


class TrainConfig(_Section):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection
    vae: VAESection = Field(default_factory=VAESection)
    mesh: MeshSection = Field(default_factory=MeshSection)
    stage: Literal[1, 2] = Field(1, description="1: latent MSE; 2: losses on VAE-decoded videos")
    batch_size: int = Field(8, ge=1, description="global batch (clips per step, all hosts)")
    steps: int = Field(1000, ge=1)
    lr: float = Field(5e-5, gt=0)
    warmup_fraction: float = Field(0.1, ge=0, le=1, description="linear LR warmup over this fraction of steps")
    lr_decay: Literal["constant", "cosine"] = Field(
        "constant", description="after warmup: constant (the paper) or a half cosine to the final fraction"
    )
    lr_final_fraction: float = Field(0.1, ge=0, le=1, description="cosine decay ends at lr x this")
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-8
    clip_norm: float = Field(1.0, gt=0, description="global gradient-norm clipping")
    drop_threshold: float = Field(
        100.0, gt=0, description="skip the update when the (unclipped) gradient norm exceeds this or is not finite"
    )
    loss_weights: dict[str, float] = Field(default_factory=dict, description="per-task loss weight (default 1)")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="compute dtype (auto: bf16 on GPU/TPU, fp32 on CPU); params fp32"
    )
    seed: int = 0
    run_dir: str = Field("runs/train", description="logs, summary and (by default) checkpoints go here")
    checkpoint_dir: str | None = Field(None, description="default <run_dir>/checkpoints")
    checkpoint_every: int = Field(1000, ge=1)
    keep_checkpoints: int = Field(3, ge=1)
    async_checkpointing: bool = True
    resume: bool = Field(True, description="continue from the latest checkpoint in checkpoint_dir if any")
    log_every: int = Field(1, ge=1)
    log_file: str | None = Field(None, description="JSONL metrics (default <run_dir>/train_log.jsonl)")
    peak_flops_per_device: Union[float, Literal["auto", "measure"]] = Field(
        "auto",
        description="MFU denominator: FLOP/s per device, 'measure' (jnp matmul at start-up) or 'auto' "
        "(datasheet table for known GPUs/TPUs in bf16, else measured)",
    )
    distributed: Literal["auto", "on", "off"] = Field(
        "auto",
        description="jax.distributed.initialize(): auto = when the environment describes a multi-process "
        "job (JAX_COORDINATOR_ADDRESS, SLURM/OpenMPI with >1 task, multi-host TPU)",
    )

    @model_validator(mode="after")
    def _check(self):
        bad = [t for t in self.loss_weights if t not in TASKS]
        if bad:
            raise ValueError(f"loss_weights for unknown tasks {bad}")
        if self.model.init_from and self.model.pretrained:
            raise ValueError("give model.pretrained (WAN weights) or model.init_from (THFM checkpoint), not both")
        if self.model.size == "custom" and not self.model.dit:
            raise ValueError("model.size=custom needs model.dit overrides")
        return self

    # ------------------------------------------------------------------ derived paths

    @property
    def checkpoint_path(self) -> Path:
        return Path(self.checkpoint_dir) if self.checkpoint_dir else Path(self.run_dir) / "checkpoints"

    @property
    def log_path(self) -> Path:
        return Path(self.log_file) if self.log_file else Path(self.run_dir) / "train_log.jsonl"

    def warmup_steps(self) -> int:
        return max(1, round(self.warmup_fraction * self.steps))

    def task_loss_weights(self) -> list[float]:
        return [float(self.loss_weights.get(t, 1.0)) for t in TASKS]


def load_config(source: Union[str, Path, dict, TrainConfig], **overrides: Any) -> TrainConfig:
    """A TrainConfig from a YAML path, a dict or a TrainConfig; ``overrides`` are dotted keys
    (``load_config(p, **{"data.shard_dir": "x", "steps": 10})``)."""
    base_dir = None
    if isinstance(source, TrainConfig):
        d = source.model_dump()
    elif isinstance(source, dict):
        d = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise MissingFileError(
                f"train config {path} not found", "give a job file such as jobs/train_from_synth.yaml"
            )
        d = yaml.safe_load(path.read_text()) or {}
        base_dir = path.parent
    for key, value in overrides.items():
        node = d
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    cfg = TrainConfig.model_validate(d)
    if base_dir is not None:  # weights paths may be relative to the YAML file
        for section, field in ((cfg.model, "pretrained"), (cfg.vae, "weights")):
            v = getattr(section, field)
            if v and not Path(v).exists() and (base_dir / v).exists():
                setattr(section, field, str(base_dir / v))
    return cfg
