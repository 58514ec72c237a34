"""Per-video overhead beyond Blender's frame rendering: serial vs overlapped, cold vs warm.

    .venv/bin/python benchmarks/video_overhead.py [--preset preview|paper] [--frames N] [--repeats 3]
                                                  [--index 0] [--no-cli]

The same planned video of the preset (`--frames` overrides its length; the paper preset's 81 frames
at 832x480 take ~15 min a video on 2 cores) rendered several ways:

  cold_cli          `thfm-synth render-one` in a fresh process with an empty baked-character cache:
                    imports, character bake, Blender start-up, scene build, conversion, QA
  warm_cli          the same command with the character already baked (the cache `render-one` and
                    `render` share: ~/.cache/thfm-synth/characters, or OUT/.cache/characters for `render`)
  worker_serial     what a `thfm-synth render` worker does from its second video on (one process, one
                    long-lived Blender child, the cache warm), with Blender rendering every frame
                    first and the parent converting after (`render_video(overlap=False)`)
  worker_overlapped the same with the parent converting and checking frame N while Blender renders
                    N+1 (render/video/stream.py, the default)

Overhead = (wall time - Cycles' frame rendering time) / wall time, where frame rendering is the sum of
metadata.json's `frame_render_seconds`: the share of a video's time not spent rendering frames
(goal: <= 10% at the preview preset, <= 3% at the paper preset, for the worker). Also recorded: the
parent's CPU seconds per video (its threads included) and render_video's breakdown. `--no-cli` skips
the two CLI rows. Prints the load average (the machine may be shared: compare rows of one run, which
are interleaved). Writes benchmarks/results/video_overhead_<preset>.json.
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


def _row(wall: float, meta: dict, cpu: float | None = None) -> dict:
    frames = float(sum(meta["frame_render_seconds"]))
    s = meta["stats"]
    return {
        "wall_s": wall,
        "frame_render_s": frames,
        "overhead_s": wall - frames,
        "overhead_fraction": (wall - frames) / wall,
        "parent_cpu_s": cpu,
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


def worker(spec, library, cfg, out: Path, cache: Path, child, overlap: bool) -> dict:
    from thfm_synth.render.video.render_one import render_video

    t0, c0 = time.perf_counter(), time.process_time()
    render_video(spec, library, cfg.render, out, cache, child=child, qa_cfg=cfg.qa, overlap=overlap)
    row = _row(time.perf_counter() - t0, json.loads((out / "metadata.json").read_text()), time.process_time() - c0)
    shutil.rmtree(out)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=("preview", "paper"), default="preview")
    ap.add_argument("--frames", type=int, help="frames per video (4k+1; default: the preset's)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--index", type=int, default=0, help="the video of the plan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-cli", action="store_true", help="only the worker rows (serial, overlapped)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out_json = args.out or REPO / "benchmarks" / "results" / f"video_overhead_{args.preset}.json"

    from thfm_synth.assets.library import load_library
    from thfm_synth.blender import contract
    from thfm_synth.blender.child import ServingChild
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan, plan_meta, write_plan

    load_before = os.getloadavg()
    cfg = load_config(args.preset, overrides={"video": {"num_frames": args.frames}} if args.frames else None)
    library = load_library(builtin=True)
    n = args.index + 1
    specs = make_plan(cfg, library, args.seed, n)
    spec = specs[args.index]
    names = ([] if args.no_cli else ["cold_cli", "warm_cli"]) + ["worker_serial", "worker_overlapped"]
    runs: dict[str, list[dict]] = {k: [] for k in names}
    with tempfile.TemporaryDirectory(prefix="thfm_overhead_") as tmp:
        tmp = Path(tmp)
        plan = tmp / "plan.parquet"
        write_plan(plan, specs, plan_meta(cfg, library, args.seed, n))
        warm_cache = tmp / "warm_cache"
        child = ServingChild.blender(contract.SCRIPT_RENDER, tmp / "child.log", restart_every=1000)
        try:
            # the worker's first video warms its child and the cache (not counted)
            worker(spec, library, cfg, tmp / "first", warm_cache, child, True)
            for rep in range(args.repeats):  # interleaved: the machine's load changes under us
                if not args.no_cli:
                    runs["cold_cli"].append(cli(plan, args.index, tmp / f"cold{rep}", tmp / f"cold_cache{rep}"))
                    runs["warm_cli"].append(cli(plan, args.index, tmp / f"warm{rep}", warm_cache))
                for overlap in (False, True):
                    key = "worker_overlapped" if overlap else "worker_serial"
                    runs[key].append(worker(spec, library, cfg, tmp / f"w{rep}", warm_cache, child, overlap))
                print(
                    f"  rep {rep}: "
                    + ", ".join(
                        f"{k} {v[-1]['wall_s']:.1f} s wall ({v[-1]['overhead_fraction']:.1%} overhead)"
                        for k, v in runs.items()
                    ),
                    flush=True,
                )
        finally:
            child.stop()
    med = {
        k: {m: statistics.median(r[m] for r in rs) if rs[0][m] is not None else None for m in rs[0]}
        for k, rs in runs.items()
    }
    result = {
        "median": med,
        "runs": runs,
        "overlapped_over_serial_wall": med["worker_overlapped"]["wall_s"] / med["worker_serial"]["wall_s"],
        "setup": {
            "preset": args.preset,
            "video": [spec.width, spec.height, spec.num_frames],
            "samples": cfg.render.samples,
            "denoise": cfg.render.denoise,
            "character": spec.character_id,
            "background": spec.background_kind,
            "repeats": args.repeats,
            "machine": machine_info(load_before),
        },
    }
    if not args.no_cli:
        result["cold_over_worker_wall"] = med["cold_cli"]["wall_s"] / med["worker_overlapped"]["wall_s"]
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(result, indent=1))
    print(f"load average {os.getloadavg()[0]:.2f} (before: {load_before[0]:.2f}), {os.cpu_count()} cpus")
    print(
        f"per-video overhead at the {args.preset} preset ({spec.width}x{spec.height}, {spec.num_frames} frames, "
        f"{cfg.render.samples} spp), median of {args.repeats}, as a share of the video's wall time:"
    )
    for k, m in med.items():
        cpu = f", parent CPU {m['parent_cpu_s']:.2f} s" if m["parent_cpu_s"] is not None else ""
        print(
            f"  {k:17s} wall {m['wall_s']:6.2f} s, frames {m['frame_render_s']:6.2f} s, overhead {m['overhead_s']:5.2f} s "
            f"= {m['overhead_fraction']:.1%} (scene {m['scene_s']:.2f} s, Blender outside frames "
            f"{m['blender_outside_frames_s']:.2f} s, post {m['postprocess_s']:.2f} s{cpu})"
        )
    print(f"overlapped / serial worker wall time: {result['overlapped_over_serial_wall']:.2f}x")
    if not args.no_cli:
        print(f"cold render-one / overlapped worker wall time: {result['cold_over_worker_wall']:.2f}x")
    print(f"wrote {out_json}")


if __name__ == "__main__":
    main()
