"""A preprocessing job as a YAML file (``jobs/preprocess_*.yaml``): every argument of
:func:`thfm_synth.preprocess.pipeline.preprocess`, validated, with ``--set key=value`` overrides.

    thfm-synth preprocess --config jobs/preprocess_wan13b.yaml
    thfm-synth preprocess --config jobs/preprocess_wan13b.yaml --set workers=16 --set out=/mnt/thfm/shards_v2
    thfm-synth preprocess --config jobs/preprocess_tiny_cpu.yaml --set render_dir=runs/x/render --set out=runs/x/shards

Relative paths are resolved against the working directory (like the train jobs), except that
``vae`` and ``text_encoder`` may also be given relative to the YAML file. Unknown keys and
out-of-range values are one-line errors naming the key (exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from model.tasks import TASKS, check_tasks
from thfm_synth.overrides import parse_overrides as _parse
from thfm_synth.errors import ConfigError, UserError


class PreprocessJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    render_dir: str = Field(..., description="render output (OUT of `thfm-synth render`, OUT/videos or one video)")
    out: str = Field(..., description="shard folder to write (resumable)")
    num_frames: int = Field(81, ge=1, description="model frame count, 1 + 4k (81 -> 21 latent frames)")
    fps: float = Field(24.0, gt=0, description="model frame rate")
    width: int = Field(832, ge=8, description="model width, a multiple of 8")
    height: int = Field(480, ge=8, description="model height, a multiple of 8")
    tasks: list[str] = Field(default_factory=lambda: list(TASKS), description="one record per video and task")
    vae: str | None = Field(None, description="WAN 2.1 VAE weights (file or folder); null: the parameter-free codec")
    text_encoder: str | None = Field(None, description="local umT5 folder for the prompt embeddings; null: built-in")
    prompt_dim: int | None = Field(None, ge=1, description="width of the built-in prompt table (default 4096)")
    pixel_targets: bool = Field(
        True,
        description="store each dense record's pixel ground truth and validity mask "
        "(stage 2 needs them; off: stage-1-sized shards)",
    )
    max_shard_mb: float = Field(1000.0, gt=0, description="shard size bound, MB")
    workers: int | None = Field(None, ge=0, description="encoder actors (0: in this process, no Ray; null: all)")
    address: str | None = Field(None, description="Ray cluster address (auto, ray://host:10001); null: a local Ray")
    cpus_per_worker: float = Field(1.0, gt=0, description="Ray CPUs per encoder actor")
    gpus_per_worker: float = Field(0.0, ge=0, description="Ray GPUs per encoder actor (the VAE runs there)")
    keypoint_convention: Literal["smpl24", "h36m17", "coco17"] = "smpl24"
    latent_dtype: Literal["float16", "float32"] = "float16"
    progress: bool = True

    @field_validator("tasks")
    @classmethod
    def _tasks(cls, v):
        return list(check_tasks(v))

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`preprocess` (render_dir and out_dir passed separately)."""
        d = self.model_dump()
        return {
            "num_frames": d["num_frames"],
            "fps": d["fps"],
            "width": d["width"],
            "height": d["height"],
            "tasks": tuple(d["tasks"]),
            "vae_weights": d["vae"],
            "text_encoder": d["text_encoder"],
            "prompt_dim": d["prompt_dim"],
            "pixel_targets": d["pixel_targets"],
            "max_shard_bytes": int(d["max_shard_mb"] * 1e6),
            "workers": d["workers"],
            "address": d["address"],
            "cpus_per_worker": d["cpus_per_worker"],
            "gpus_per_worker": d["gpus_per_worker"],
            "keypoint_convention": d["keypoint_convention"],
            "latent_dtype": d["latent_dtype"],
            "progress": d["progress"],
        }


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    return _parse(items, "--set workers=8 --set out=runs/x/shards")


def load_job(path: str | Path, overrides: dict[str, Any] | None = None) -> PreprocessJob:
    """A validated job from a YAML file plus overrides (ConfigError naming the key when invalid)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"preprocess job {path} not found", "see jobs/preprocess_*.yaml")
    try:
        d = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{path}: a preprocess job is a mapping of settings")
    d.update(overrides or {})
    try:
        job = PreprocessJob.model_validate(d)
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(x) for x in e.get("loc", ())) or "job"
        raise ConfigError(
            f"{path}: {loc}: {e.get('msg')}", "see thfm_synth/preprocess/job.py for every field"
        ) from None
    for field in ("vae", "text_encoder"):  # weights may be given relative to the job file
        v = getattr(job, field)
        if v and not Path(v).exists() and (path.parent / v).exists():
            setattr(job, field, str(path.parent / v))
    return job


def run_job(job: PreprocessJob):
    from thfm_synth.preprocess.pipeline import preprocess

    return preprocess(job.render_dir, job.out, **job.kwargs())


__all__ = ["PreprocessJob", "load_job", "parse_overrides", "run_job"]
