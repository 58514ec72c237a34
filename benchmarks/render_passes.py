"""All modalities from one render per frame vs one render per modality vs RGB only.

    .venv/bin/python benchmarks/render_passes.py [--width 416 --height 240 --frames 3 --repeats 2]

Scene: the labelled mannequin (`thfm_synth.render.analytic.mannequin_scene`) on a textured
ground under an HDRI from the test assets' hdri/ (a procedural sky if absent), one area light,
16 samples, OIDN denoise - the production settings at a moderate resolution. Modes, each a
separate Blender process rendering the same frames:

  rgb_only            the RGB view layer only (what an RGB-only dataset would cost)
  single              ours: rgb (16 spp) + labels (1 spp) view layers in ONE render call per frame
  per_modality        one render call per modality per frame (rgb, mask, depth, normal, part,
                      canonical) with a cheap label shader (paths end at the first hit); the mask
                      at 16 spp, the other labels at 1 spp: a strong, optimised baseline
  per_modality_label16  the same with every label pass at 16 spp (antialiased label renders)
  per_modality_full   each modality a full render of the scene (scene materials, 16 spp, all
                      bounces) keeping that modality's pass: the literal "one render per modality"
  single_flow         ours plus exact optical flow (two more label AOV triples; goal: <= 5% of rgb_only)
  single_albedo       ours plus albedo (the Diffuse Color pass; goal: <= 5% of rgb_only)

Per-frame numbers exclude frame 0 (kernel load, BVH build, first sync). Both wall time and the
Blender process's CPU time (all threads) are recorded: on a shared machine CPU time is the
steadier measure. Modes alternate order between repeats and the median is reported.

Also measured at the full 832x480, for a full-body and an upper-body framing: bytes per frame
per stored modality (after `thfm_synth.render.outputs`, the optional flow, albedo and linear RGB
included) and the conversion time. Writes benchmarks/results/render_passes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from thfm_synth.blender import contract  # noqa: E402
from thfm_synth.render import outputs  # noqa: E402
from thfm_synth.render.analytic import mannequin_scene  # noqa: E402
from thfm_synth.render.runner import render  # noqa: E402
from thfm_synth.assets.testassets import find_test_assets  # noqa: E402

HDRI = (find_test_assets() or REPO / "missing") / "hdri" / "royal_esplanade_1k.hdr"
MODES = {
    "rgb_only": dict(mode="rgb_only"),
    "single": dict(mode="single"),
    "per_modality": dict(mode="per_modality", label_samples=1),
    "per_modality_label16": dict(mode="per_modality", label_samples=16),
    "per_modality_full": dict(mode="per_modality", per_modality_shading="full"),
    "single_flow": dict(mode="single", modalities=contract.DEFAULT_RENDER_MODALITIES + ("flow",)),
    "single_albedo": dict(mode="single", modalities=contract.DEFAULT_RENDER_MODALITIES + ("albedo",)),
}


def _seconds(text: str) -> float:
    """Cycles' 'MM:SS.ss' / 'HH:MM:SS.ss' header times."""
    out = 0.0
    for part in text.split(":"):
        out = out * 60 + float(part)
    return out


def cycles_layer_times(files: list[str]) -> dict[str, float]:
    """Cycles' own per-view-layer total time (sync + render), from the EXR headers."""
    import OpenEXR

    times: dict[str, float] = {}
    for path in files:
        with OpenEXR.File(path) as f:
            for k, v in f.parts[0].header.items():
                if k.startswith("cycles.") and k.endswith(".total_time"):
                    times[k[7:-11]] = times.get(k[7:-11], 0.0) + _seconds(v)
    return times


def run_mode(scene: Path, out: Path, kw: dict) -> dict:
    t0 = time.perf_counter()
    info = render(scene, out, timeout=3000, **kw)
    wall_total = time.perf_counter() - t0
    steady = info["frames"][1:] or info["frames"]
    layers = [cycles_layer_times(f["files"]) for f in steady]
    return {
        "cycles_layer_s": {k: statistics.mean(x[k] for x in layers) for k in layers[0]},
        "process_wall_s": wall_total,
        "setup_s": info["setup_seconds"],
        "frame_wall_s": statistics.mean(f["seconds"] for f in steady),
        "frame_cpu_s": statistics.mean(f["cpu_seconds"] for f in steady),
        "frame_save_s": statistics.mean(f["save_seconds"] for f in steady),
        "renders_per_frame": steady[0]["renders"],
        "first_frame_wall_s": info["frames"][0]["seconds"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=416)
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--skip-sizes", action="store_true", help="skip the 832x480 bytes-per-frame measurement")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "render_passes.json")
    args = ap.parse_args()
    hdri = HDRI if HDRI.is_file() else None
    load_before = os.getloadavg()
    results: dict = {"modes": {}, "runs": []}
    with tempfile.TemporaryDirectory(prefix="thfm_bench_") as tmp:
        tmp = Path(tmp)
        scene = tmp / "scene"
        desc = mannequin_scene(scene, args.width, args.height, num_frames=args.frames, samples=args.samples, hdri=hdri)
        runs: dict[str, list[dict]] = {m: [] for m in MODES}
        for rep in range(args.repeats):
            order = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
            for mode in order:
                kw = dict(MODES[mode])
                if mode == "per_modality_label16":
                    kw["label_samples"] = args.samples
                r = run_mode(scene, tmp / f"{mode}_{rep}", kw)
                runs[mode].append(r)
                results["runs"].append({"mode": mode, "repeat": rep, **r})
                print(
                    f"  {mode:20s} rep {rep}: {r['frame_wall_s']:7.2f} s wall/frame, "
                    f"{r['frame_cpu_s']:7.2f} s cpu/frame, {r['renders_per_frame']} render(s)/frame",
                    flush=True,
                )
        for mode, rs in runs.items():
            results["modes"][mode] = {k: statistics.median(r[k] for r in rs) for k in rs[0] if k != "cycles_layer_s"}
            results["modes"][mode]["cycles_layer_s"] = {
                k: statistics.median(r["cycles_layer_s"][k] for r in rs) for k in rs[0]["cycles_layer_s"]
            }
        m = results["modes"]
        ratios = {}
        for basis in ("frame_wall_s", "frame_cpu_s"):
            ratios[basis] = {
                f"{b}_over_single": m[b][basis] / m["single"][basis]
                for b in ("per_modality", "per_modality_label16", "per_modality_full")
            }
            ratios[basis]["single_over_rgb_only"] = m["single"][basis] / m["rgb_only"][basis]
            for extra in ("flow", "albedo"):  # what the optional modality adds, as a share of RGB alone
                ratios[basis][f"{extra}_cost_over_rgb_only"] = (m[f"single_{extra}"][basis] - m["single"][basis]) / m[
                    "rgb_only"
                ][basis]
        lab = m["single"]["cycles_layer_s"]
        results["labels_layer_share_of_single_render"] = lab.get("labels", 0.0) / sum(lab.values())
        results["ratios"] = ratios

        sizes = {}
        for framing in [] if args.skip_sizes else ["full_body", "upper_body"]:
            full = mannequin_scene(
                tmp / framing, 832, 480, num_frames=2, samples=args.samples, hdri=hdri, framing=framing
            )
            info = render(
                tmp / framing,
                tmp / f"{framing}_out",
                timeout=3000,
                modalities=contract.DEFAULT_RENDER_MODALITIES + ("flow", "albedo"),
            )
            t0 = time.perf_counter()
            rows = outputs.convert_render(
                tmp / f"{framing}_out", tmp / f"{framing}_data", full.camera, contract.STORED_MODALITIES
            )
            convert_s = (time.perf_counter() - t0) / len(rows)
            fr = outputs.read_frame(tmp / f"{framing}_data", 0)
            per_mod = {k: statistics.mean(r["bytes"][k] for r in rows) for k in rows[0]["bytes"]}
            sizes[framing] = {
                "resolution": [832, 480],
                "subject_pixel_fraction": float((fr.mask > 0).mean()),
                "bytes_per_frame": per_mod,
                "total_bytes_per_frame": sum(
                    v for k, v in per_mod.items() if k not in contract.OPTIONAL_STORED_MODALITIES
                ),
                "optional_bytes_per_frame": {
                    k: per_mod[k] for k in contract.OPTIONAL_STORED_MODALITIES if k in per_mod
                },
                "raw_exr_bytes_per_frame": statistics.mean(os.path.getsize(f["files"][0]) for f in info["frames"]),
                "convert_seconds_per_frame": convert_s,
                "render_wall_s_per_frame": info["frames"][-1]["seconds"],
                "render_cpu_s_per_frame": info["frames"][-1]["cpu_seconds"],
            }
        results["sizes_832x480"] = sizes
        cpu = ratios["frame_cpu_s"]
        results["goals_cpu_time"] = {
            "faster_than_per_modality_full_by_3x": cpu["per_modality_full_over_single"] >= 3.0,
            "faster_than_per_modality_label_shader_by_3x": cpu["per_modality_over_single"] >= 3.0,
            "at_most_1.2x_rgb_only": cpu["single_over_rgb_only"] <= 1.2,
            "flow_at_most_5pct_of_rgb_only": cpu["flow_cost_over_rgb_only"] <= 0.05,
            "albedo_at_most_5pct_of_rgb_only": cpu["albedo_cost_over_rgb_only"] <= 0.05,
            **{f"at_most_0.75MB_per_frame_{k}": v["total_bytes_per_frame"] <= 0.75e6 for k, v in sizes.items()},
        }
        results["setup"] = {
            "resolution": [args.width, args.height],
            "frames": args.frames,
            "repeats": args.repeats,
            "samples": args.samples,
            "denoise": desc.render.denoise,
            "world": desc.world.kind,
            "hdri": str(hdri) if hdri else None,
            "subject": "mannequin (14 labelled ellipsoids)",
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "loadavg_before": load_before,
                "loadavg_after": os.getloadavg(),
            },
            "blender": json.loads((tmp / "single_0" / "render_info.json").read_text())["blender_version"],
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))

    print(f"load average {os.getloadavg()[0]:.2f} (before: {load_before[0]:.2f})")
    print(
        f"\nper frame at {args.width}x{args.height}, {args.samples} spp (median of {args.repeats}, frame 0 excluded):"
    )
    for mode, r in results["modes"].items():
        layers = ", ".join(f"{k} {v:.2f}" for k, v in r["cycles_layer_s"].items())
        print(
            f"  {mode:21s} {r['frame_wall_s']:7.2f} s wall  {r['frame_cpu_s']:7.2f} s cpu  "
            f"({r['renders_per_frame']:.0f} render call(s)/frame; Cycles per layer: {layers})"
        )
    for basis, rs in results["ratios"].items():
        print(f"  [{basis}] " + ", ".join(f"{k.replace('_over_', ' / ')} = {v:.2f}x" for k, v in rs.items()))
    print(
        f"  the 1-spp labels layer is {100 * results['labels_layer_share_of_single_render']:.1f}% "
        "of Cycles' time in the single render"
    )
    for framing, sz in sizes.items():
        print(
            f"\nbytes per frame at 832x480, {framing} (subject covers "
            f"{100 * sz['subject_pixel_fraction']:.1f}% of pixels):"
        )
        for k, v in sz["bytes_per_frame"].items():
            print(f"  {k:10s} {v / 1e3:8.1f} kB")
        print(
            f"  {'total':10s} {sz['total_bytes_per_frame'] / 1e6:8.3f} MB without the optional modalities   "
            f"(raw EXR {sz['raw_exr_bytes_per_frame'] / 1e6:.1f} MB, "
            f"conversion {sz['convert_seconds_per_frame']:.2f} s/frame)"
        )
    print(
        "\ngoals (CPU time): "
        + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in results["goals_cpu_time"].items())
    )
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
