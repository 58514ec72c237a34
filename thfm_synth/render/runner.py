"""Render a saved `SceneDescription` folder in a Blender child: one `RenderJob` through `blender.call`."""

from __future__ import annotations

import os
from pathlib import Path

from thfm_synth.blender import contract
from thfm_synth.blender.call import call
from thfm_synth.blender.child import ServingChild
from thfm_synth.blender.runtime import RenderRuntime


def render_job(
    scene_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    frames: list[int] | None = None,
    modalities=contract.DEFAULT_RENDER_MODALITIES,
    mode: str = "single",
    device: str | None = None,
    label_samples: int = 1,
    per_modality_shading: str = "label",
    exr_codec: str = "ZIP",
    threads: int = 0,
) -> contract.RenderJob:
    """The job for blender_scripts/render_scene.py (absolute paths: the child has its own cwd)."""
    job = contract.RenderJob(
        scene=str(Path(scene_dir).resolve()),
        out=str(Path(out_dir).resolve()),
        frames=None if frames is None else [int(f) for f in frames],
        modalities=list(modalities),
        mode=mode,
        label_samples=int(label_samples),
        exr_codec=exr_codec,
        per_modality_shading=per_modality_shading,
        device=device,
        threads=int(threads),
    )
    job.check()
    return job


def render(
    scene_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    frames: list[int] | None = None,
    timeout: float | None = None,
    runtime: RenderRuntime | None = None,
    child: ServingChild | None = None,
    **job_options,
) -> dict:
    """Render the description in `scene_dir` into `out_dir`; returns render_info.json as a dict.

    frames: None (all) or a list of indices. Each frame is one Cycles render (mode "single");
    modes "per_modality" and "rgb_only" exist for benchmarks. `child`: a long-lived
    `ServingChild` of render_scene.py to run the job in (the farm's); else a fresh child.
    Warnings from the child (e.g. a GPU device falling back to CPU) are re-issued as
    RuntimeWarnings; failures raise the typed errors of `thfm_synth.blender.call`.
    """
    job = render_job(scene_dir, out_dir, frames, **job_options)
    info_path = Path(out_dir) / contract.RENDER_INFO
    info_path.unlink(missing_ok=True)
    job_dir = Path(out_dir) / "_job"
    if child is not None:
        return child.run(job, job_dir, timeout or 6 * 3600)
    return call(contract.SCRIPT_RENDER, job, runtime=runtime, job_dir=job_dir, timeout=timeout)
