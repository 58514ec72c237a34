"""Bytes per stored frame at 832x480 for each framing: today's files vs the previous ones and format 1 (EXR).

    .venv/bin/python benchmarks/label_bytes.py [--frames 2 --background sky|hdri|scene --samples 16
                                                --cache DIR]

Renders one real video per framing (face, upper body, full body) at 832x480 with the paper
preset's render settings (16 spp + OIDN; the built-in walk, a built-in character - MakeHuman-dressed
when the MakeHuman folder is found: $THFM_MAKEHUMAN or the test assets' makehuman/; `--background
hdri` takes the test assets' hdri/ folder), then stores
the same decoded frames three times: with today's writer (`outputs.write_frame`: RGB lossless
WebP, depth zstd level `labelcodec.DEPTH_ZSTD_LEVEL`), the previous one (RGB PNG level 6, depth
zstd level 10, the rest as today) and format 1's (depth float32 PXR24 EXR, normal/iuv/canonical
half ZIP EXR; rgb PNG, mask, instance unchanged). Prints bytes per frame per modality, the ratios,
the measured precision of each stored modality against the render (rgb, part, instance exact;
depth mm, normal degrees, U/V and canonical absolute error), the write/read time, and two codec
tables on the same frames: RGB (PNG vs lossless WebP at several efforts) and the depth plane's
zstd level, bytes and CPU seconds per frame. Goal: <= 0.5 MB per frame at every framing.
`--cache DIR` keeps the rendered frames (.npz, no pickle) so a re-run only re-measures.
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
from thfm_synth.render import labelcodec, outputs  # noqa: E402
from thfm_synth.render.imagefiles import read_exr, read_image, write_exr, write_png, write_webp  # noqa: E402

FRAMINGS = ("face", "upper_body", "full_body")
GOAL_BYTES = 0.5e6
PREVIOUS_DEPTH_LEVEL = 10
RGB_CODECS = {  # name -> writer; WebP lossless: method/quality are effort only, the pixels are exact
    "png-6": lambda p, a: write_png(p, a, 6),
    "png-9": lambda p, a: write_png(p, a, 9),
    **{
        f"webp-m{m}-q{q}": (lambda m, q: lambda p, a: write_webp(p, a, method=m, quality=q))(m, q)
        for m, q in ((1, 25), (2, 50), (3, 50), (4, 75), (6, 100))
    },
}
DEPTH_LEVELS = (10, 13, 16, 19)


def _png_rgb(root: Path, f: int, fr: outputs.Frame) -> int:
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    return write_png(root / "rgb" / f"{f:05d}.png", fr.rgb, 6)


def write_previous(root: Path, f: int, fr: outputs.Frame) -> dict[str, int]:
    """The files as written before lossless WebP RGB and the depth level: RGB PNG, depth zstd level 10."""
    sizes = outputs.write_frame(root, f, fr, tuple(m for m in outputs.MODALITIES if m not in ("rgb", "depth")))
    sizes["rgb"] = _png_rgb(root, f, fr)
    (root / "depth").mkdir(parents=True, exist_ok=True)
    labelcodec.write_depth(root / "depth" / f"{f:05d}.tlz", fr.depth, level=PREVIOUS_DEPTH_LEVEL)
    sizes["depth"] = (root / "depth" / f"{f:05d}.tlz").stat().st_size
    return sizes


def codec_table(frames: list[outputs.Frame], work: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Mean bytes and CPU seconds (encode; decode for RGB) per frame of each RGB codec and depth level."""
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"rgb": {}, "depth": {}}
    for name, write in RGB_CODECS.items():
        path = work / f"x.{name.split('-')[0]}"
        row = {"bytes": 0.0, "encode_cpu_s": 0.0, "decode_cpu_s": 0.0}
        for fr in frames:
            t0 = time.process_time()
            row["bytes"] += write(path, fr.rgb) / len(frames)
            t1 = time.process_time()
            back = read_image(path)
            t2 = time.process_time()
            assert np.array_equal(back, fr.rgb), name  # every candidate is lossless
            row["encode_cpu_s"] += (t1 - t0) / len(frames)
            row["decode_cpu_s"] += (t2 - t1) / len(frames)
        out["rgb"][name] = row
    for level in DEPTH_LEVELS:
        row = {"bytes": 0.0, "encode_cpu_s": 0.0, "decode_cpu_s": 0.0}
        for fr in frames:
            t0 = time.process_time()
            data = labelcodec.encode("depth", {"z": labelcodec.depth_encode(fr.depth)}, level)
            t1 = time.process_time()
            labelcodec.decode(data)
            t2 = time.process_time()
            row["bytes"] += len(data) / len(frames)
            row["encode_cpu_s"] += (t1 - t0) / len(frames)
            row["decode_cpu_s"] += (t2 - t1) / len(frames)
        out["depth"][str(level)] = row
    return out


def write_format1(root: Path, f: int, fr: outputs.Frame) -> dict[str, int]:
    """The label files as written before the .tlz format (PXR24 depth, half ZIP EXRs; RGB PNG)."""
    sizes = outputs.write_frame(root, f, fr, ("mask", "instance"))
    sizes["rgb"] = _png_rgb(root, f, fr)
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
        "rgb_exact": bool(np.array_equal(back.rgb, fr.rgb)),
        "mask_max_abs": float(np.abs(back.mask - fr.mask).max()),
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


def cache_key(framing: str, args) -> str:
    return f"{args.background}_{framing}_{args.frames}f_{args.samples}spp_seed{args.seed}.npz"


def cached_render(framing: str, args, work: Path) -> tuple[list[outputs.Frame], float]:
    """`render_framing`, through `--cache DIR` when given: the decoded frames as one .npz (no pickle),
    so re-measuring the bytes does not re-render (minutes per framing at 832x480)."""
    path = args.cache / cache_key(framing, args) if args.cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            frames = []
            for f in range(int(z["frames"])):
                fr = outputs.Frame()
                for name in CACHED_FIELDS:
                    if f"{f}/{name}" in z:
                        setattr(fr, name, z[f"{f}/{name}"])
                frames.append(fr)
            return frames, float(z["render_seconds"])
    frames, seconds = render_framing(framing, args, work)
    if path is not None:
        arrays = {f"{f}/{n}": getattr(fr, n) for f, fr in enumerate(frames) for n in CACHED_FIELDS}
        arrays = {k: v for k, v in arrays.items() if v is not None}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, frames=len(frames), render_seconds=seconds, **arrays)
        os.replace(tmp, path)
    return frames, seconds


CACHED_FIELDS = ("rgb_linear", "depth", "normal", "mask", "part", "part_uv", "canonical", "instance")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--background", default="sky", choices=("sky", "hdri", "scene"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--cache", type=Path, help="keep the rendered frames here (.npz) and reuse them on re-runs")
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
            frames, render_s = cached_render(framing, args, tmp)
            rows = {"now": [], "previous": [], "format1": []}
            # CPU seconds (the encoders run in this process, one thread): fair on a loaded machine; wall too
            times = {f"{op}_{name}{c}": 0.0 for op in ("write", "read") for name in rows for c in ("", "_cpu")}
            errs = []
            for f, fr in enumerate(frames):
                fr.rgb = outputs.srgb_encode(fr.rgb_linear)  # exposure does not matter to the label sizes
                for name, write in (
                    ("now", outputs.write_frame),
                    ("previous", write_previous),
                    ("format1", write_format1),
                ):
                    t0, c0 = time.perf_counter(), time.process_time()
                    rows[name].append(write(tmp / framing / name, f, fr))
                    t1, c1 = time.perf_counter(), time.process_time()
                    back = outputs.read_frame(tmp / framing / name, f)
                    t2, c2 = time.perf_counter(), time.process_time()
                    times[f"write_{name}"] += (t1 - t0) / len(frames)
                    times[f"read_{name}"] += (t2 - t1) / len(frames)
                    times[f"write_{name}_cpu"] += (c1 - c0) / len(frames)
                    times[f"read_{name}_cpu"] += (c2 - c1) / len(frames)
                    if name == "now":
                        errs.append(errors(fr, back))
            per = {
                name: {m: statistics.mean(r[m] for r in rs) for m in outputs.MODALITIES} for name, rs in rows.items()
            }
            total = {name: sum(v.values()) for name, v in per.items()}
            result["framings"][framing] = {
                "subject_pixel_fraction": statistics.mean(float((fr.mask > 0).mean()) for fr in frames),
                "bytes_per_frame": per,
                "total_bytes_per_frame": total,
                "now_over_previous": total["now"] / total["previous"],
                "now_over_format1": total["now"] / total["format1"],
                "precision": {k: (max if isinstance(errs[0][k], float) else all)(e[k] for e in errs) for k in errs[0]},
                "seconds_per_frame": times,
                "codecs": codec_table(frames, tmp / framing / "codecs"),
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
        "rgb": "lossless WebP (method/quality in thfm_synth/render/imagefiles.py)",
        "depth_zstd_level": labelcodec.DEPTH_ZSTD_LEVEL,
        "previous_depth_zstd_level": PREVIOUS_DEPTH_LEVEL,
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
        for name in ("format1", "previous", "now"):
            row = " ".join(f"{v['bytes_per_frame'][name][m] / 1e3:8.1f}k" for m in mods)
            print(f"  {framing:11s} {name:8s} {row} {v['total_bytes_per_frame'][name] / 1e6:8.3f} MB")
        p, t = v["precision"], v["seconds_per_frame"]
        print(
            f"  {'':11s} now / previous = {v['now_over_previous']:.2f}x, now / format1 = {v['now_over_format1']:.2f}x; "
            f"subject {100 * v['subject_pixel_fraction']:.0f}% of pixels; rgb exact {p['rgb_exact']}, "
            f"depth <= {p['depth_max_mm']:.3f} mm, normal <= {p['normal_max_deg']:.4f} deg, "
            f"mask <= {p['mask_max_abs']:.1e}, uv <= {p['uv_max_abs']:.2e}, canonical <= {p['canonical_max_abs']:.2e}, "
            f"part exact {p['part_exact']}, instance exact {p['instance_exact']}"
        )
        print(
            f"  {'':11s} CPU s per frame: write {t['write_now_cpu']:.2f} (previous {t['write_previous_cpu']:.2f}, "
            f"format 1 {t['write_format1_cpu']:.2f}), read {t['read_now_cpu']:.2f} (previous "
            f"{t['read_previous_cpu']:.2f}, format 1 {t['read_format1_cpu']:.2f}); wall: write {t['write_now']:.2f} "
            f"(previous {t['write_previous']:.2f}), read {t['read_now']:.2f} (previous {t['read_previous']:.2f}); "
            f"render {v['render_seconds'] / len(frames):.1f} s"
        )
    print("codecs, mean over every framing's frames (CPU s per frame):")
    for kind in ("rgb", "depth"):
        for name in fr_res[FRAMINGS[0]]["codecs"][kind]:
            rows = [v["codecs"][kind][name] for v in fr_res.values()]
            mean = {k: statistics.mean(r[k] for r in rows) for k in rows[0]}
            label = name if kind == "rgb" else f"zstd-{name}"
            print(
                f"  {kind:5s} {label:14s} {mean['bytes'] / 1e3:8.1f} kB  encode {mean['encode_cpu_s']:.3f} s  "
                f"decode {mean['decode_cpu_s']:.3f} s"
            )
    print(
        f"goal <= 0.5 MB per frame at every framing: {'met' if result['goal_at_most_0.5MB_every_framing'] else 'NOT met'}"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
