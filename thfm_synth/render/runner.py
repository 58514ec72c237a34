"""Run `blender_scripts/render_scene.py` in the render environment and collect its report."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from thfm_synth.errors import UserError
from thfm_synth.renderenv import RenderRuntime

ALL_MODALITIES = ("rgb", "mask", "depth", "normal", "part", "canonical")  # what render_scene.py can make
MODES = ("single", "per_modality", "rgb_only")


def render(scene_dir: str | os.PathLike, out_dir: str | os.PathLike, frames: str | list[int] | None = None,
           modalities=ALL_MODALITIES, mode: str = "single", device: str | None = None,
           label_samples: int = 1, per_modality_shading: str = "label", exr_codec: str = "ZIP",
           timeout: float | None = None,
           runtime: RenderRuntime | None = None) -> dict:
    """Render a saved `SceneDescription` folder; returns `out_dir/render_info.json` as a dict.

    frames: None (all), "a:b", or a list of indices. Each frame is one Cycles render (mode
    "single"); "per_modality" and "rgb_only" exist for benchmarks. Warnings from the child
    (e.g. a GPU device falling back to CPU) are re-issued as RuntimeWarnings.
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} not in {MODES}")
    args = ["--scene", str(Path(scene_dir).resolve()), "--out", str(Path(out_dir).resolve()),
            "--modalities", ",".join(modalities), "--mode", mode, "--label-samples", str(int(label_samples)),
            "--codec", exr_codec, "--per-modality-shading", per_modality_shading]
    if frames is not None:
        args += ["--frames", frames if isinstance(frames, str) else ",".join(str(int(f)) for f in frames)]
    if device is not None:
        args += ["--device", device]
    runtime = runtime or RenderRuntime.detect()
    info_path = Path(out_dir) / "render_info.json"
    if info_path.exists():
        info_path.unlink()
    proc = runtime.run("render_scene.py", args, timeout=timeout)
    for line in proc.stderr.splitlines():
        if line.startswith("THFM_WARNING "):
            warnings.warn(line[len("THFM_WARNING "):], RuntimeWarning, stacklevel=2)
    if proc.returncode != 0 or not info_path.is_file():
        tail = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()][-3:] or ["no output"]
        raise UserError(f"Blender render of {scene_dir} failed (exit {proc.returncode}): {' | '.join(tail)}",
                        "check the scene description and the render environment (`thfm-synth doctor`)")
    return json.loads(info_path.read_text())
