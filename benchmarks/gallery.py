"""Paper-preset frames of each kind of background, for the README and for looking at.

    THFM_MAKEHUMAN=../shared/assets/makehuman .venv/bin/python benchmarks/gallery.py \
        [--manifest assets_manifest/shared_test_assets.yaml] [--seed 3]

Plans videos with the built-in library plus the given manifest (the shared test assets: HDRIs, the
Kenney furniture kit, the Quaternius street pack), takes the first planned video with a built-in
person in front of each background - a procedural sky, an HDRI, a procedural room (furnished from the
kit when the library holds one), a procedural street, the kit room and the street pack - renders its
first frame at the paper preset (832x480, 16 samples + OIDN) with `render-one`, and writes the frames
and a contact sheet to benchmarks/gallery/ (committed: the README shows it). Each background's Cycles
seconds per frame are printed as a ratio to the sky's (the cheapest scene, measured in the same run),
with the load average; benchmarks/results/gallery.json keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_io import merge_result  # noqa: E402

from thfm_synth.render.outputs import path_of  # noqa: E402

WANT = {  # label -> test on a plan row
    "sky": lambda r: r["background_kind"] == "sky",
    "hdri": lambda r: r["background_kind"] == "hdri",
    "room": lambda r: r["background_id"].startswith("room-"),
    "street": lambda r: r["background_id"] == "street-block",
    "kit room": lambda r: r["background_id"] == "scenes-kenney_furniture_kit",
    "street pack": lambda r: r["background_id"] == "scenes-streets_all",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", default=str(REPO / "assets_manifest" / "shared_test_assets.yaml"))
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "gallery"))
    args = ap.parse_args()
    import pyarrow.parquet as pq
    from PIL import Image, ImageDraw

    cli = [sys.executable, "-m", "thfm_synth"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = tmp / "cfg.yaml"
        cfg.write_text("name: gallery\nvideo: {width: 832, height: 480, num_frames: 1, fps: 24.0}\n")
        plan = tmp / "plan.parquet"
        subprocess.run(
            [*cli, "plan", "--preset", "paper", "--config", str(cfg), "--manifest", args.manifest]
            + ["--num-videos", "120", "--seed", str(args.seed), "--out", str(plan)],
            check=True,
            capture_output=True,
        )
        rows = pq.read_table(plan).to_pylist()
        picked = {}
        for label, test in WANT.items():
            for r in rows:
                if test(r) and r["character_id"].startswith("anny-builtin"):
                    picked[label] = r["video_index"]
                    break
        figures, tiles = {}, []
        for label, index in picked.items():
            video = tmp / f"v{index}"
            subprocess.run(
                [*cli, "render-one", "--plan", str(plan), "--index", str(index), "--out", str(video)]
                + ["--cache", str(tmp / "cache")],
                check=True,
                capture_output=True,
            )
            meta = json.loads((video / "metadata.json").read_text())
            seconds = float(meta["frame_render_seconds"][0])
            figures[label] = {
                "video_index": index,
                "background_id": rows[index]["background_id"],
                "character_id": rows[index]["character_id"],
                "cycles_seconds_per_frame": seconds,
                "qa_passed": bool(meta["qa"]["passed"]),
            }
            img = Image.open(path_of(video, "rgb", 0)).convert("RGB")
            name = label.replace(" ", "_")
            img.save(out / f"{name}.jpg", quality=85)
            tiles.append((label, img))
    w, h = 416, 240
    sheet = Image.new("RGB", (2 * w, h * ((len(tiles) + 1) // 2)), "black")
    draw = ImageDraw.Draw(sheet)
    for k, (label, img) in enumerate(tiles):
        x, y = (k % 2) * w, (k // 2) * h
        sheet.paste(img.resize((w, h), Image.LANCZOS), (x, y))
        draw.text((x + 6, y + 4), label, fill=(255, 255, 255))
    sheet.save(out / "sheet.jpg", quality=85)
    base = figures.get("sky", {}).get("cycles_seconds_per_frame")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores here; the machine may be shared)")
    for label, f in figures.items():
        ratio = f["cycles_seconds_per_frame"] / base if base else float("nan")
        f["ratio_to_sky"] = ratio
        print(
            f"{label:12s} {f['background_id']:32s} {f['cycles_seconds_per_frame']:6.1f} s/frame"
            f"  {ratio:4.2f}x sky  QA {'passed' if f['qa_passed'] else 'FAILED'}"
        )
    merge_result(
        REPO / "benchmarks" / "results" / "gallery.json",
        "gallery",
        {"load_average": list(load), "backgrounds": figures, "sheet": str(out / "sheet.jpg")},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
