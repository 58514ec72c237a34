"""Equal-quality render cost: PSNR/SSIM of the RGB against a 256-spp reference, per CPU second.

    THFM_MAKEHUMAN=../shared/assets/makehuman THFM_TEST_ASSETS=../shared/assets \\
        .venv/bin/python benchmarks/render_quality.py [--quick | --confirm NAME] \\
        [--backgrounds sky hdri scene] [--settings NAME ...] [--ref-cache DIR]

One frame of a planned paper-preset video with a realistic character (the built-in body dressed
from MakeHuman assets: skin subsurface, normal maps, alpha-card hair) is rendered on a procedural
sky, an HDRI and a room (the `scene` background kind) at 256 samples (the reference, cached in
--ref-cache by scene and size), then once per setting of the curve (SETTINGS: today's paper preset
= 16 spp + OIDN, fewer samples, the OIDN prefilter, adaptive sampling with a noise threshold, the
light tree, bounces, the mask's own fixed-sample layer). Each image is compared with the reference
as the dataset stores it: one exposure gain (metered on the reference) and 8-bit sRGB. The cost is
the CPU seconds of the Blender child's render calls for that frame (all threads:
`call_cpu_seconds` of render_info.json, summed over the calls, so the mask layer's own call counts).
The frame rendered is the second of the clip, so persistent data (on in the paper preset) has done
its first-frame scene build as it would in a video; setup is not counted.

Prints, per background, PSNR (dB), SSIM and CPU seconds of each setting, and its cost ratio against
today's preset measured in the same run; the load average (the machine may be shared); writes
side-by-side PNGs (reference, paper, each setting: a grid of the image over its x8 error) to --png-dir and
benchmarks/results/render_quality.json. `--quick`: 320x192; default: 832x480 (the paper's size);
`--confirm NAME`: 832x480, only today's preset and NAME.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_io import machine_info, merge_result  # noqa: E402

REF_SAMPLES = 256
FRAME = 1  # the second frame: persistent data already built the scene once, as in a video
PAPER = "paper 16spp"
# name -> RenderSettings changes on top of the paper preset's render section
SETTINGS: dict[str, dict] = {
    PAPER: {},
    "12spp": {"samples": 12},
    "8spp": {"samples": 8},
    "6spp": {"samples": 6},
    "16spp ACCURATE": {"denoise_prefilter": "ACCURATE"},
    "8spp ACCURATE": {"samples": 8, "denoise_prefilter": "ACCURATE"},
    "16spp OIDN BALANCED": {"denoise_quality": "BALANCED"},
    "16spp adaptive 0.05": {"adaptive_sampling": True, "adaptive_threshold": 0.05},
    "32spp adaptive 0.1": {"samples": 32, "adaptive_sampling": True, "adaptive_threshold": 0.1, "mask_samples": 16},
    "16spp adaptive 0.1 min 4": {"adaptive_sampling": True, "adaptive_threshold": 0.1, "adaptive_min_samples": 4},
    "24spp adaptive 0.05 min 8": {
        "samples": 24,
        "adaptive_sampling": True,
        "adaptive_threshold": 0.05,
        "adaptive_min_samples": 8,
        "mask_samples": 16,
    },
    "16spp mask layer": {"mask_samples": 8},
    "16spp no light tree": {"light_tree": False},
    "16spp 2 bounces": {"max_bounces": 2},
    "8spp 2 bounces ACCURATE": {"samples": 8, "max_bounces": 2, "denoise_prefilter": "ACCURATE"},
}
BACKGROUNDS = ("sky", "hdri", "scene")


def test_assets_dir() -> Path | None:
    """The test assets: find_test_assets() (THFM_TEST_ASSETS or beside the checkout), else the shared
    folder two levels up - a git worktree (wt/NAME) sits one level deeper than the main checkout."""
    from thfm_synth.assets.testassets import find_test_assets

    candidates = [find_test_assets(), os.environ.get("THFM_TEST_ASSETS")]
    candidates += [REPO.parent / "shared" / "assets", REPO.parent.parent / "shared" / "assets"]
    return next((Path(c) for c in candidates if c and (Path(c) / "hdri").is_dir()), None)


def _library(kind: str, work: Path):
    from thfm_synth.assets.library import load_library

    if kind != "hdri":
        return load_library(builtin=True)
    from thfm_synth.assets.manifest import dump_manifest
    from thfm_synth.assets.scan import scan

    assets = test_assets_dir()
    if assets is None:
        return None
    lib = work / "hdri-lib"
    if not lib.exists():  # the built-in library has no HDRIs: the test assets' (5 files, ~8 MB)
        shutil.copytree(assets / "hdri", lib / "hdri")
    manifest = work / "hdri.yaml"
    manifest.write_text(dump_manifest(scan(lib, work).manifest))
    return load_library([manifest], builtin=True)


def make_scene(kind: str, width: int, height: int, seed: int, work: Path):
    """The planned description of one background kind (None when its assets are missing)."""
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan
    from thfm_synth.render.scene.assemble import assemble

    library = _library(kind, work)
    if library is None:
        return None
    cfg = load_config("paper", overrides={"video": {"width": width, "height": height, "num_frames": 5}})
    spec = next((s for s in make_plan(cfg, library, seed, 60) if s.background_kind == kind), None)
    if spec is None:
        return None
    spec = dataclasses.replace(spec, camera_framing="full_body", motion_id="builtin-walk", motion_start_frame=0)
    return assemble(spec, library, cfg.render, work / "cache").description


def render_setting(desc, changes: dict, folder: Path, warm: bool = True) -> tuple[dict, float]:
    """Render FRAME with `changes` on the description's render settings; (channels, CPU seconds)."""
    from thfm_synth.render.imagefiles import read_exr
    from thfm_synth.render.runner import render

    d = dataclasses.replace(desc, render=desc.render.model_copy(update=changes))
    type(desc.render).model_validate(d.render.model_dump())  # a typo in SETTINGS fails here, not in Blender
    d.save(folder / "scene")
    info = render(folder / "scene", folder / "out", frames=[FRAME - 1, FRAME] if warm else [FRAME])
    rec = next(r for r in info["frames"] if r["frame"] == FRAME)
    channels = {k: v for path in rec["files"] for k, v in read_exr(path).items()}
    return channels, float(sum(rec["call_cpu_seconds"]))


def srgb_float(channels: dict, gain: float) -> np.ndarray:
    from thfm_synth.render import outputs

    lin = np.stack([channels[n] for n in outputs.C.CH_COMBINED], -1)
    return outputs.srgb_encode(lin * np.float32(gain)).astype(np.float64) / 255.0


def reference(desc, kind: str, cache: Path, work: Path) -> dict:
    """The 256-spp render, cached by the description's content and size: scene.json without this run's
    work folder (it names the baked character's files) and the arrays' values (npz bytes hold times)."""
    from thfm_synth.render.imagefiles import read_exr, write_exr

    probe = work / f"probe-{kind}"
    desc.save(probe)
    h = hashlib.sha256((probe / "scene.json").read_text().replace(str(work), "").encode())
    with np.load(probe / "arrays.npz", allow_pickle=False) as arrays:
        for name in sorted(arrays.files):
            h.update(name.encode() + np.ascontiguousarray(arrays[name]).tobytes())
    path = cache / f"{kind}-{desc.camera.width}x{desc.camera.height}-{h.hexdigest()[:16]}.exr"
    if path.exists():
        return read_exr(path)
    # its cost is not measured: FRAME alone, without the warm-up frame
    channels, cpu = render_setting(
        desc, {"samples": REF_SAMPLES, "adaptive_sampling": False}, work / f"ref-{kind}", warm=False
    )
    print(f"  {kind}: reference {REF_SAMPLES} spp rendered ({cpu:.0f} CPU s), cached in {path}")
    cache.mkdir(parents=True, exist_ok=True)
    keep = {k: v for k, v in channels.items() if k.startswith("rgb.Combined.") or k.endswith(".fg.X")}
    tmp = path.with_suffix(".tmp.exr")
    write_exr(tmp, keep)
    os.replace(tmp, path)
    return keep


def side_by_side(images: list[tuple[str, np.ndarray]], ref: np.ndarray, path: Path, columns: int = 4) -> None:
    """A grid of tiles, `columns` wide: each tile the image over |image - reference| x 8."""
    from PIL import Image, ImageDraw

    tiles = [np.concatenate([im, np.clip(np.abs(im - ref) * 8, 0, 1)], 0) for _, im in images]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    grid = np.concatenate([np.concatenate(tiles[i : i + columns], 1) for i in range(0, len(tiles), columns)], 0)
    canvas = Image.fromarray((grid * 255 + 0.5).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    h, w = tiles[0].shape[:2]
    for i, (name, _) in enumerate(images):
        draw.text(((i % columns) * w + 4, (i // columns) * h + 4), name, fill=(255, 255, 0))
    tmp = path.with_suffix(".tmp.png")
    canvas.save(tmp)
    os.replace(tmp, path)


def run_background(kind: str, names: list[str], args, work: Path) -> dict | None:
    from thfm_synth.render import exposure, outputs
    from thfm_synth.render.quality import psnr, ssim

    desc = make_scene(kind, args.width, args.height, args.seed, work / kind)
    if desc is None:
        print(
            f"  {kind}: skipped - no {kind} background could be planned "
            f"(HDRIs: set THFM_TEST_ASSETS to the test assets; looked beside this checkout too)"
        )
        return None
    ref_ch = reference(desc, kind, args.ref_cache, work)
    ref_lin = np.stack([ref_ch[n] for n in outputs.C.CH_COMBINED], -1)
    gain = exposure.metering_gain([ref_lin], masks=[outputs.mask_channel(ref_ch)])
    ref = srgb_float(ref_ch, gain)
    rows, images = {}, [(f"ref {REF_SAMPLES}spp", ref)]
    for name in names:
        channels, cpu = render_setting(desc, SETTINGS[name], work / kind / name.replace(" ", "_"))
        img = srgb_float(channels, gain)
        rows[name] = {
            "psnr_db": round(psnr(img, ref), 3),
            "ssim": round(ssim(img, ref), 5),
            "cpu_seconds": round(cpu, 3),
        }
        images.append((name, img))
        print(
            f"  {kind:<5} {name:<26} {rows[name]['psnr_db']:6.2f} dB  SSIM {rows[name]['ssim']:.4f}  {cpu:6.2f} CPU s"
        )
    args.png_dir.mkdir(parents=True, exist_ok=True)
    tag = "_confirm" if args.confirm else ("_subset" if args.settings else "")  # a subset keeps the full curve's PNG
    png = args.png_dir / f"render_quality_{kind}_{args.width}x{args.height}{tag}.png"
    side_by_side(images, ref, png)
    print(f"  {kind}: side by side in {png}")
    return {"rows": rows, "png": str(png), "exposure_gain": gain, "load_average": os.getloadavg()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="320x192 instead of 832x480")
    ap.add_argument("--confirm", metavar="NAME", help="832x480, only today's preset and setting NAME")
    ap.add_argument("--backgrounds", nargs="+", default=list(BACKGROUNDS), choices=BACKGROUNDS)
    ap.add_argument("--settings", nargs="+", choices=list(SETTINGS), help="a subset of the curve (default: all)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--ref-cache", type=Path, default=Path.home() / ".cache" / "thfm-synth" / "render-quality-refs")
    ap.add_argument("--png-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "render_quality.json")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    args.width, args.height = (320, 192) if args.quick and not args.confirm else (832, 480)
    names = [PAPER, args.confirm] if args.confirm else (args.settings or list(SETTINGS))
    if PAPER not in names:
        names.insert(0, PAPER)
    if not os.environ.get("THFM_MAKEHUMAN"):
        assets = test_assets_dir()
        if assets is None or not (assets / "makehuman").is_dir():
            raise SystemExit("set THFM_MAKEHUMAN to a MakeHuman folder (e.g. ../shared/assets/makehuman)")
        os.environ["THFM_MAKEHUMAN"] = str(assets / "makehuman")
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="render-quality-"))
    t0 = time.perf_counter()
    try:
        result = {}
        for kind in args.backgrounds:
            res = run_background(kind, names, args, work)
            if res is not None:
                result[kind] = res
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    key = f"confirm {args.confirm}" if args.confirm else f"curve {args.width}x{args.height}"
    # backgrounds may run as separate processes (--backgrounds sky, ...): merged into one entry
    entry = (json.loads(args.out.read_text()).get(key, {}) if args.out.exists() else {}).get("backgrounds", {})
    for kind, res in result.items():  # a run of a few --settings adds its rows to the earlier ones
        old = entry.get(kind, {}).get("rows", {})
        rows = {**old, **res["rows"]}
        for row in rows.values():
            row["cpu_ratio_vs_paper"] = round(row["cpu_seconds"] / rows[PAPER]["cpu_seconds"], 3)
            row["psnr_vs_paper_db"] = round(row["psnr_db"] - rows[PAPER]["psnr_db"], 3)
        entry[kind] = {**res, "rows": rows}
    better = verdict(entry, names)
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {time.perf_counter() - t0:.0f} s")
    merge_result(
        args.out,
        key,
        {
            "size": [args.width, args.height],
            "reference_samples": REF_SAMPLES,
            "backgrounds": entry,
            "equal_or_better_and_cheaper": better,
            "machine": machine_info(load_before),
        },
    )


def verdict(backgrounds: dict, names: list[str]) -> list[str]:
    """The settings with PSNR >= today's preset and fewer CPU s on every background measured."""
    rows = [b["rows"] for b in backgrounds.values()]
    names = [n for n in names if n != PAPER and rows and all(n in r and PAPER in r for r in rows)]
    better = [
        n
        for n in names
        if all(r[n]["psnr_db"] >= r[PAPER]["psnr_db"] and r[n]["cpu_seconds"] < r[PAPER]["cpu_seconds"] for r in rows)
    ]
    print(f"over {sorted(backgrounds)}: equal-or-better PSNR at fewer CPU s than '{PAPER}': {better or 'none'}")
    for n in names:
        ratios = [r[PAPER]["cpu_seconds"] / r[n]["cpu_seconds"] for r in rows]
        dpsnr = [r[n]["psnr_db"] - r[PAPER]["psnr_db"] for r in rows]
        print(
            f"  {n:<26} {min(ratios):.2f}x-{max(ratios):.2f}x fewer CPU s (goal >= 2x), "
            f"PSNR {min(dpsnr):+.2f} to {max(dpsnr):+.2f} dB vs '{PAPER}'"
        )
    return better


if __name__ == "__main__":
    main()
