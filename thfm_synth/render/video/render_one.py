"""Render one planned video into a complete, self-describing video folder.

    VIDEO/
      rgb/NNNNN.webp depth/NNNNN.tlz  normal/NNNNN.tlz  mask/NNNNN.png
      iuv/NNNNN.tlz  canonical/NNNNN.tlz  instance/NNNNN.png     (formats: render/outputs.py, labelcodec.py)
      annotations.npz    cameras, joints (3 conventions, world/camera/2D), visibility, bbox
      metadata.json      spec, assets and licences, Blender version, render settings, seeds,
                         per-frame render times, QA figures, conventions in words

Steps: assemble the scene in numpy (scene/assemble.py) -> one Blender render per frame
(blender_scripts/render_scene.py, in a child process) -> store modalities -> annotations ->
QA (thfm_synth.render.qa) -> metadata. The caller gives an empty folder and commits it atomically
(the farm renames it into place; `render-one` writes to a temporary sibling first).
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from thfm_synth import __version__
from thfm_synth.assets.integrity import verify_video_assets
from thfm_synth.assets.library import Library
from thfm_synth.config.schema import QaSettings, RenderSettings
from thfm_synth.digests import DigestCache
from thfm_synth.conventions import CONVENTIONS_TEXT
from thfm_synth.errors import UserError
from thfm_synth.blender.child import ServingChild
from thfm_synth.blender.contract import STORED_LABEL_MODALITIES
from thfm_synth.blender.runtime import RenderRuntime
from thfm_synth.plan.spec import VideoSpec
from thfm_synth.render import outputs, runner
from thfm_synth.render.scene.assemble import assemble
from thfm_synth.render.scene.furnish import room_kit
from thfm_synth.render.video import stream
from thfm_synth.render.video.annotations import write_annotations
from thfm_synth.render.video.perframe import VideoLabels


def render_video(
    spec: VideoSpec,
    library: Library,
    render_cfg: RenderSettings,
    out_dir: str | Path,
    cache_dir: str | Path,
    child: ServingChild | None = None,
    runtime: RenderRuntime | None = None,
    timeout_s: float = 6 * 3600,
    threads: int = 0,
    qa_cfg: QaSettings | None = None,
    digests: DigestCache | None = None,
    overlap: bool = True,
) -> dict:
    """Render `spec` into the empty folder `out_dir`; returns the stats recorded in metadata.json.

    The video's asset files are first checked against their manifest sha256 (`digests`: the run's
    digest cache; a mismatch raises a UserError naming the file); `qa_cfg`: the config's QA thresholds.
    `overlap`: convert and check each frame while Blender renders the next (render/video/stream.py);
    False, or a video with optical flow, renders every frame first and converts after (serial)."""
    out = Path(out_dir)
    work = out / "_work"
    t0 = time.perf_counter()
    kit = room_kit(library, library.entry(spec.background_id), spec.render_seed)  # a room's furniture
    read_assets = verify_video_assets(spec, library, digests, extra=() if kit is None else (kit.id,))
    asm = assemble(spec, library, render_cfg, cache_dir)
    t_scene = time.perf_counter() - t0
    desc = asm.description
    desc.save(work / "scene")
    stored = render_cfg.stored_modalities() + (("people",) if asm.others else ())
    labels = VideoLabels(spec, asm, desc)
    auto_exposure = desc.render.exposure == "auto"
    streamed = overlap and "flow" not in stored  # flow's validity needs the neighbouring frames' depth
    if streamed:
        done = stream.render_streamed(
            work,
            out,
            desc,
            labels,
            stored,
            auto_exposure,
            child,
            runtime,
            timeout_s,
            threads,
            render_cfg.render_modalities(),
        )
        info, sizes, t_render, t_post = done.info, done.sizes, done.blender_seconds, done.after_blender_seconds
    else:
        t1 = time.perf_counter()
        info = runner.render(
            work / "scene",
            work / "render",
            timeout=timeout_s,
            runtime=runtime,
            child=child,
            threads=threads,
            modalities=render_cfg.render_modalities(),
        )
        t_render = time.perf_counter() - t1
        t2 = time.perf_counter()
        sizes = outputs.convert_render(
            work / "render", out, desc.camera, stored, delete_raw=True, auto_exposure=auto_exposure
        )
        for f in range(desc.num_frames):  # one frame in memory at a time
            fr = outputs.read_frame(out, f, ("rgb",) + STORED_LABEL_MODALITIES + (("people",) if asm.others else ()))
            labels.add_frame(f, fr)
            if fr.rgb is not None:
                labels.add_rgb(f, fr.rgb, fr.mask)
        t_post = time.perf_counter() - t2
    shutil.rmtree(work, ignore_errors=True)
    t3 = time.perf_counter()
    write_annotations(out / "annotations.npz", labels.annotations())
    report = labels.report(qa_cfg)
    t_post += time.perf_counter() - t3

    render_seconds = [float(r["render_seconds"]) for r in info["frames"]]
    stats = {
        "frames": desc.num_frames,
        "render_seconds": sum(render_seconds),
        "scene_seconds": t_scene,
        "blender_wall_seconds": t_render,
        "postprocess_seconds": t_post,
        "bytes_per_frame": float(np.mean([s["total_bytes"] for s in sizes])),
        "qa_passed": report["passed"],
        "qa_failures": report["failures"],
        "overlapped": streamed,
    }
    # sha256: the digest of the bytes this render read (checked against the manifest above)
    assets = {
        aid: {"licence": library.entry(aid).licence, "source": library.entry(aid).source, **read_assets[aid]}
        for aid in read_assets
    }
    meta = {
        "spec": spec.to_row(),
        "assets": assets,
        "character": {
            "file": asm.anim.character_file.name,
            "height_m": asm.anim.character.meta.get("height_m"),
            "params": asm.anim.character.meta.get("params", {}),
        },
        "motion_flags": list(asm.anim.flags),
        "body_model": asm.anim.body.metadata() if asm.anim.body is not None else None,
        "camera": {
            "focal_length_mm": spec.focal_length_mm,
            "sensor_width_mm": spec.sensor_width_mm,
            "distance_scale": asm.camera.distance_scale,
        },
        "placement": asm.placement.tolist(),
        "furniture": [
            {"name": b.name, "role": b.piece_role, "file": Path(b.piece_file).name, "centre_m": list(b.center)}
            for b in (asm.layout.boxes if asm.layout is not None and asm.file_scene is None else ())
            if b.piece_file is not None
        ],
        "view": asm.view,  # realised camera azimuth / face angles (scene/facing.py view_record)
        "people": {"planned": spec.num_people, "rendered": 1 + len(asm.others), "others": asm.people},
        "render": {
            "engine": render_cfg.engine,
            "samples": render_cfg.samples,
            "denoise": render_cfg.denoise,
            "device_requested": render_cfg.device,
            "device": info.get("device"),
            "max_bounces": render_cfg.max_bounces,
            "seed": spec.render_seed,
            "motion_blur_shutter": render_cfg.motion_blur_shutter,
            "labels_at": "the shutter centre (the frame time)",
            "stored_modalities": list(stored),
            "exposure": render_cfg.exposure,
            "exposure_gain": sizes[0]["exposure_gain"] if sizes else 1.0,
            "exposure_stops": float(np.log2(sizes[0]["exposure_gain"])) if sizes else 0.0,
            "blender_version": info.get("blender_version"),
            "warnings": info.get("warnings", []),
            "layers": info.get("layers"),
        },
        "frame_render_seconds": render_seconds,
        "stats": stats,
        "qa": report,
        "conventions": CONVENTIONS_TEXT + "; depth 0 = no surface (sky); mask = subject coverage in [0,1]; "
        "iuv I = DensePose part 1..24 (0 background); annotations.npz keys "
        "are documented in thfm_synth/render/video/annotations.py",
        "thfm_synth_version": __version__,
        "python": platform.python_version(),
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=float))
    return stats


def spec_from_plan(plan_path: str | Path, index: int):
    """(spec, PlanMeta) of video `index` of a plan file."""
    from thfm_synth.plan.planner import read_plan

    specs, meta = read_plan(plan_path)
    if not 0 <= index < len(specs):
        raise UserError(
            f"--index {index} is outside the plan {plan_path} (0..{len(specs) - 1})",
            "choose an index of a planned video",
        )
    return specs[index], meta
