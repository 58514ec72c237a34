"""Fixed per-video costs at the preview preset: cold vs warm, as a fraction of frame rendering.

    .venv/bin/python benchmarks/video_overhead.py [--repeats 3 --index 0]

The same planned video (preview preset: 256x160, 9 frames, 4 spp + denoise) rendered three ways:

  cold_cli     `thfm-synth render-one` in a fresh process with an empty baked-character cache:
               imports, character bake, Blender start-up, scene build, conversion, QA
  warm_cli     the same command with the character already baked (the cache `render-one` and
               `render` share: ~/.cache/thfm-synth/characters, or OUT/.cache/characters for `render`)
  farm_worker  what a `thfm-synth render` worker does from its second video on: one process, one
               long-lived Blender child reused video after video, the cache warm

Overhead = wall time - Cycles' frame rendering time (the sum of metadata.json's
`frame_render_seconds`); printed as overhead / frame rendering, with the breakdown recorded by
render_video (scene assembly, Blender outside the frame loop, conversion + annotations + QA).
Writes benchmarks/results/video_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_io import machine_info  # noqa: E402


def _row(wall: float, meta: dict) -> dict:
    frames = float(sum(meta["frame_render_seconds"]))
    s = meta["stats"]
    return {
        "wall_s": wall,
        "frame_render_s": frames,
        "overhead_s": wall - frames,
        "overhead_over_frames": (wall - frames) / frames,
        "scene_s": s["scene_seconds"],
        "blender_outside_frames_s": s["blender_wall_seconds"] - frames,
        "postprocess_s": s["postprocess_seconds"],
    }


def cli(plan: Path, index: int, out: Path, cache: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "thfm_synth", "render-one", "--plan", str(plan), "--index", str(index)]
        + ["--out", str(out), "--cache", str(cache)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: rendered but QA failed, still a rendered video
        raise SystemExit(proc.stderr[-2000:])
    meta = json.loads((out / "metadata.json").read_text())
    shutil.rmtree(out)
    return _row(wall, meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--index", type=int, default=0, help="the video of the preview plan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "video_overhead.json")
    args = ap.parse_args()

    from thfm_synth.assets.library import load_library
    from thfm_synth.blender import contract
    from thfm_synth.blender.child import ServingChild
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan, plan_meta, write_plan
    from thfm_synth.render.video.render_one import render_video

    load_before = os.getloadavg()
    cfg = load_config("preview")
    library = load_library(builtin=True)
    n = args.index + 1
    specs = make_plan(cfg, library, args.seed, n)
    spec = specs[args.index]
    runs: dict[str, list[dict]] = {"cold_cli": [], "warm_cli": [], "farm_worker": []}
    with tempfile.TemporaryDirectory(prefix="thfm_overhead_") as tmp:
        tmp = Path(tmp)
        plan = tmp / "plan.parquet"
        write_plan(plan, specs, plan_meta(cfg, library, args.seed, n))
        warm_cache = tmp / "warm_cache"
        child = ServingChild.blender(contract.SCRIPT_RENDER, tmp / "child.log", restart_every=1000)
        try:
            # the worker's first video warms its child and the cache (not counted)
            render_video(spec, library, cfg.render, tmp / "first", warm_cache, child=child, qa_cfg=cfg.qa)
            for rep in range(args.repeats):  # interleaved: the machine's load changes under us
                runs["cold_cli"].append(cli(plan, args.index, tmp / f"cold{rep}", tmp / f"cold_cache{rep}"))
                runs["warm_cli"].append(cli(plan, args.index, tmp / f"warm{rep}", warm_cache))
                out = tmp / f"farm{rep}"
                t0 = time.perf_counter()
                render_video(spec, library, cfg.render, out, warm_cache, child=child, qa_cfg=cfg.qa)
                runs["farm_worker"].append(
                    _row(time.perf_counter() - t0, json.loads((out / "metadata.json").read_text()))
                )
                shutil.rmtree(out)
                print(
                    f"  rep {rep}: "
                    + ", ".join(
                        f"{k} {v[-1]['wall_s']:.1f} s wall ({v[-1]['overhead_over_frames']:.2f}x frames)"
                        for k, v in runs.items()
                    ),
                    flush=True,
                )
        finally:
            child.stop()
    med = {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in runs.items()}
    result = {
        "median": med,
        "runs": runs,
        "cold_over_farm_worker_wall": med["cold_cli"]["wall_s"] / med["farm_worker"]["wall_s"],
        "setup": {
            "preset": "preview",
            "video": [spec.width, spec.height, spec.num_frames],
            "samples": cfg.render.samples,
            "denoise": cfg.render.denoise,
            "character": spec.character_id,
            "background": spec.background_kind,
            "repeats": args.repeats,
            "machine": machine_info(load_before),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"load average {os.getloadavg()[0]:.2f} (before: {load_before[0]:.2f}), {os.cpu_count()} cpus")
    print(
        f"per-video overhead at the preview preset ({spec.width}x{spec.height}, {spec.num_frames} frames, "
        f"{cfg.render.samples} spp), median of {args.repeats}:"
    )
    for k, m in med.items():
        print(
            f"  {k:12s} wall {m['wall_s']:6.2f} s, frames {m['frame_render_s']:5.2f} s, overhead {m['overhead_s']:5.2f} s "
            f"= {m['overhead_over_frames']:.2f}x frame rendering (scene {m['scene_s']:.2f} s, Blender outside frames "
            f"{m['blender_outside_frames_s']:.2f} s, post {m['postprocess_s']:.2f} s)"
        )
    print(f"cold render-one / farm worker wall time: {result['cold_over_farm_worker_wall']:.2f}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
