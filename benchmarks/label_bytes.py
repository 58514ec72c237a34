"""Bytes per stored frame at 832x480 for each framing: the label format (`.tlz`) vs format 1 (EXR).

    .venv/bin/python benchmarks/label_bytes.py [--frames 2 --background sky|hdri|scene --samples 16]

Renders one real video per framing (face, upper body, full body) at 832x480 with the paper
preset's render settings (16 spp + OIDN; the built-in walk, a built-in character - MakeHuman-dressed
when the MakeHuman folder is found: $THFM_MAKEHUMAN or the test assets' makehuman/; `--background
hdri` takes the test assets' hdri/ folder), then stores
the same decoded frames twice: with today's writer (`outputs.write_frame`) and with format 1's
(depth float32 PXR24 EXR, normal/iuv/canonical half ZIP EXR; rgb, mask, instance unchanged).
Prints bytes per frame per modality, the ratio, the measured precision of each quantised label
against the render (depth mm, normal degrees, U/V and canonical absolute error; part, instance
exact) and the write/read time. Goal: <= 0.5 MB per frame at every framing.
Writes benchmarks/results/label_bytes.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_io import machine_info  # noqa: E402

from thfm_synth.assets.testassets import find_test_assets  # noqa: E402
from thfm_synth.render import outputs  # noqa: E402
from thfm_synth.render.imagefiles import read_exr, write_exr  # noqa: E402

FRAMINGS = ("face", "upper_body", "full_body")
GOAL_BYTES = 0.5e6


def write_format1(root: Path, f: int, fr: outputs.Frame) -> dict[str, int]:
    """The label files as written before the .tlz format (PXR24 depth, half ZIP EXRs)."""
    sizes = outputs.write_frame(root, f, fr, ("rgb", "mask", "instance"))
    half = lambda x, names: {c: x[..., i].astype(np.float16) for i, c in enumerate(names)}  # noqa: E731
    iuv = np.concatenate([fr.part[..., None].astype(np.float32), fr.part_uv], -1)
    for mod, ch, comp in (
        ("depth", {"Z": fr.depth.astype(np.float32)}, "PXR24"),
        ("normal", half(fr.normal, "XYZ"), "ZIP"),
        ("iuv", half(iuv, "IUV"), "ZIP"),
        ("canonical", half(fr.canonical, "XYZ"), "ZIP"),
    ):
        (root / mod).mkdir(exist_ok=True)
        sizes[mod] = write_exr(root / mod / f"{f:05d}.exr", ch, comp)
    return sizes


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64) / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b.astype(np.float64) / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(2 * np.arcsin(np.clip(np.linalg.norm(a - b, axis=-1) / 2, 0, 1)))


def errors(fr: outputs.Frame, back: outputs.Frame) -> dict[str, float]:
    hit = fr.depth > 0
    return {
        "depth_max_mm": float(np.abs(back.depth[hit].astype(np.float64) - fr.depth[hit]).max() * 1e3),
        "depth_max_mm_within_20m": float(
            np.abs(back.depth[hit & (fr.depth <= 20)].astype(np.float64) - fr.depth[hit & (fr.depth <= 20)]).max() * 1e3
        ),
        "normal_max_deg": float(angle_deg(back.normal[hit], fr.normal[hit]).max()),
        "uv_max_abs": float(np.abs(back.part_uv - fr.part_uv).max()),
        "canonical_max_abs": float(np.abs(back.canonical - fr.canonical).max()),
        "part_exact": bool(np.array_equal(back.part, fr.part)),
        "instance_exact": bool(np.array_equal(back.instance, fr.instance)),
        "sky_exact": bool(np.all(back.depth[~hit] == 0) and np.all(back.normal[~hit] == 0)),
    }


def render_framing(framing: str, args, work: Path) -> tuple[list[outputs.Frame], float]:
    from thfm_synth.assets.library import load_library
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan
    from thfm_synth.render import runner
    from thfm_synth.render.scene.assemble import assemble

    frames = 4 * ((args.frames - 1) // 4 + 1) + 1
    cfg = load_config(
        "paper",
        overrides={
            "video": {"width": 832, "height": 480, "num_frames": frames},
            "render": {"samples": args.samples, "denoise": True},
        },
    )
    manifests = []
    if args.background == "hdri":  # the built-in library has no HDRIs: the test assets' hdri/ folder
        from thfm_synth.assets.manifest import dump_manifest
        from thfm_synth.assets.scan import scan

        lib = work / "lib"
        if not lib.exists():
            import shutil

            shutil.copytree((find_test_assets() or REPO / "missing") / "hdri", lib / "hdri")  # 5 files, ~8 MB
        manifests = [work / "hdri.yaml"]
        manifests[0].write_text(dump_manifest(scan(lib, work).manifest))
    library = load_library(manifests, builtin=True)
    spec = next(s for s in make_plan(cfg, library, args.seed, 60) if s.background_kind == args.background)
    spec = dataclasses.replace(spec, camera_framing=framing, motion_id="builtin-walk", motion_start_frame=0)
    asm = assemble(spec, library, cfg.render, work / "cache")

    desc = asm.description
    desc.save(work / framing / "scene")
    t0 = time.perf_counter()
    info = runner.render(
        work / framing / "scene",
        work / framing / "render",
        frames=list(range(args.frames)),
        modalities=cfg.render.render_modalities(),
    )
    seconds = time.perf_counter() - t0
    out = []
    for rec in info["frames"]:
        f = int(rec["frame"])
        out.append(outputs.decode_raw(read_exr(rec["files"][0]), desc.camera.r[f], 1.0, desc.camera.k[f]))
    return out, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--background", default="sky", choices=("sky", "hdri", "scene"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "label_bytes.json")
    args = ap.parse_args()
    mh = (find_test_assets() or REPO / "missing") / "makehuman"
    if "THFM_MAKEHUMAN" not in os.environ and mh.is_dir():
        os.environ["THFM_MAKEHUMAN"] = str(mh)
    load_before = os.getloadavg()
    result: dict = {"framings": {}}
    with tempfile.TemporaryDirectory(prefix="thfm_label_bytes_") as tmp:
        tmp = Path(tmp)
        for framing in FRAMINGS:
            frames, render_s = render_framing(framing, args, tmp)
            rows = {"now": [], "format1": []}
            times = {"write_now": 0.0, "write_format1": 0.0, "read_now": 0.0, "read_format1": 0.0}
            errs = []
            for f, fr in enumerate(frames):
                fr.rgb = outputs.srgb_encode(fr.rgb_linear)  # exposure does not matter to the label sizes
                t0 = time.perf_counter()
                rows["now"].append(outputs.write_frame(tmp / framing / "now", f, fr))
                t1 = time.perf_counter()
                rows["format1"].append(write_format1(tmp / framing / "format1", f, fr))
                t2 = time.perf_counter()
                back = outputs.read_frame(tmp / framing / "now", f)
                t3 = time.perf_counter()
                outputs.read_frame(tmp / framing / "format1", f)
                t4 = time.perf_counter()
                for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                    times[k] += dt / len(frames)
                errs.append(errors(fr, back))
            per = {
                name: {m: statistics.mean(r[m] for r in rs) for m in outputs.MODALITIES} for name, rs in rows.items()
            }
            total = {name: sum(v.values()) for name, v in per.items()}
            result["framings"][framing] = {
                "subject_pixel_fraction": statistics.mean(float((fr.mask > 0).mean()) for fr in frames),
                "bytes_per_frame": per,
                "total_bytes_per_frame": total,
                "now_over_format1": total["now"] / total["format1"],
                "precision": {k: (max if isinstance(errs[0][k], float) else all)(e[k] for e in errs) for k in errs[0]},
                "seconds_per_frame": times,
                "render_seconds": render_s,
            }
    fr_res = result["framings"]
    result["goal_at_most_0.5MB_every_framing"] = all(
        v["total_bytes_per_frame"]["now"] <= GOAL_BYTES for v in fr_res.values()
    )
    result["setup"] = {
        "resolution": [832, 480],
        "frames": args.frames,
        "samples": args.samples,
        "denoise": True,
        "background": args.background,
        "makehuman": os.environ.get("THFM_MAKEHUMAN"),
        "machine": machine_info(load_before),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))

    print(f"load average {os.getloadavg()[0]:.2f} (before: {load_before[0]:.2f}), {os.cpu_count()} cpus")
    print(f"bytes per frame at 832x480, {args.samples} spp + denoise, {args.background} background:")
    mods = outputs.MODALITIES
    print(f"  {'framing':11s} {'format':8s} " + " ".join(f"{m:>9s}" for m in mods) + "      total")
    for framing, v in fr_res.items():
        for name in ("format1", "now"):
            row = " ".join(f"{v['bytes_per_frame'][name][m] / 1e3:8.1f}k" for m in mods)
            print(f"  {framing:11s} {name:8s} {row} {v['total_bytes_per_frame'][name] / 1e6:8.3f} MB")
        p, t = v["precision"], v["seconds_per_frame"]
        print(
            f"  {'':11s} now / format1 = {v['now_over_format1']:.2f}x; subject {100 * v['subject_pixel_fraction']:.0f}% "
            f"of pixels; depth <= {p['depth_max_mm']:.3f} mm, normal <= {p['normal_max_deg']:.4f} deg, "
            f"uv <= {p['uv_max_abs']:.2e}, canonical <= {p['canonical_max_abs']:.2e}, part exact {p['part_exact']}, "
            f"instance exact {p['instance_exact']}; write {t['write_now']:.2f} s (format 1 {t['write_format1']:.2f}), "
            f"read {t['read_now']:.2f} s (format 1 {t['read_format1']:.2f}) per frame"
        )
    print(
        f"goal <= 0.5 MB per frame at every framing: {'met' if result['goal_at_most_0.5MB_every_framing'] else 'NOT met'}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
