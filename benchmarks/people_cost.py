"""Cost of realistic people: paper-preset render time, Blender memory and character baking.

    THFM_MAKEHUMAN=../shared/assets/makehuman .venv/bin/python benchmarks/people_cost.py \
        [--frames 5] [--count 16] [--skip-render] [--skip-build]

1. Render: the same planned video (paper preset: 832x480, 16 samples + OIDN; a procedural
   sky with its sun, full-body framing, the built-in walk) rendered with today's procedural
   bodies (the baseline, measured in the same run) and with MakeHuman-dressed bodies (skin
   with random-walk subsurface, normal maps, cloth sheen, alpha-card hair). Each look runs
   in its own process, so the peak RSS of its Blender child is `RUSAGE_CHILDREN.ru_maxrss`.
   Reported: CPU seconds per frame of the Blender child (all threads; median over frames
   after the first) and wall seconds per frame; goal: MakeHuman / procedural <= 1.3x.
2. Build: `build_characters` seconds (wall and CPU) and MB per character with MakeHuman
   assets (npz only; the shared texture store is reported apart), goal <= 1 s and <= 3 MB,
   against procedural bodies baked in the same run; also the steady state of a long build
   (the same people again: every asset and texture already read and checked once).
Prints the load average (the machine may be shared) and writes
benchmarks/results/people_cost.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
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

from bench_io import merge_result  # noqa: E402


def _look_env(look: str, work: Path) -> dict:
    env = dict(os.environ)
    env.setdefault("THFM_ANNY_CACHE", str(Path.home() / ".cache" / "thfm-synth" / "anny"))
    if look == "procedural":
        env.pop("THFM_MAKEHUMAN", None)
        env["XDG_CACHE_HOME"] = str(work / "no-makehuman-cache")  # no fetched folder there either
    elif not env.get("THFM_MAKEHUMAN"):
        raise SystemExit("set THFM_MAKEHUMAN to a MakeHuman folder (e.g. ../shared/assets/makehuman)")
    return env


def render_variant(frames: int, work: Path) -> dict:
    """Runs inside the per-look process: assemble + Blender render of one paper-preset clip."""
    from thfm_synth.assets.library import load_library
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan
    from thfm_synth.render.runner import render
    from thfm_synth.render.scene.assemble import assemble

    cfg = load_config("paper", overrides={"video": {"width": 832, "height": 480, "num_frames": frames}})
    library = load_library(builtin=True)
    spec = next(s for s in make_plan(cfg, library, 1, 40) if s.background_kind == "sky")
    spec = dataclasses.replace(spec, camera_framing="full_body", motion_id="builtin-walk", motion_start_frame=0)
    t = time.perf_counter()
    asm = assemble(spec, library, cfg.render, work / "cache")
    scene_s = time.perf_counter() - t
    asm.description.save(work / "scene")
    t = time.perf_counter()
    info = render(work / "scene", work / "out")
    wall = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: KiB, the largest child
    fr = info["frames"][1:] or info["frames"]
    return {
        "character": spec.character_id,
        "vertices": int(asm.vertices.shape[1]),
        "frames": frames,
        "cpu_seconds_per_frame": statistics.median(f["cpu_seconds"] for f in fr),
        "wall_seconds_per_frame": statistics.median(f["render_seconds"] for f in fr),
        "blender_wall_seconds": round(wall, 2),
        "scene_seconds": round(scene_s, 2),
        "blender_peak_rss_mb": round(peak_kb / 1024.0, 1),
        "setup_seconds": round(info["setup_seconds"], 2),
    }


def build_variant(count: int, seed: int, work: Path) -> dict:
    from thfm_synth.assets.characters import build_characters

    t = time.perf_counter()
    build_characters(1, seed + 1000, work / "warm")  # model load and first asset reads, not per character
    warm = time.perf_counter() - t
    t, c0 = time.perf_counter(), time.process_time()
    m = build_characters(count, seed, work / "lib")
    secs, cpu = time.perf_counter() - t, time.process_time() - c0
    # steady state, as in a long build: every asset and texture of these people already read once
    again = max(1, count // 2)
    t, c0 = time.perf_counter(), time.process_time()
    build_characters(again, seed, work / "again")
    steady, steady_cpu = (time.perf_counter() - t) / again, (time.process_time() - c0) / again
    sizes = [(work / "lib" / e.path).stat().st_size / 1e6 for e in m.characters]
    store = work / "lib" / "textures"
    tex = sum(p.stat().st_size for p in store.iterdir()) / 1e6 if store.is_dir() else 0.0
    return {
        "count": count,
        "seconds_per_character": secs / count,
        "cpu_seconds_per_character": cpu / count,
        "steady_seconds_per_character": steady,
        "steady_cpu_seconds_per_character": steady_cpu,
        "warm_up_seconds": round(warm, 2),
        "mb_per_character": sum(sizes) / count,
        "mb_per_character_max": max(sizes),
        "texture_store_mb": round(tex, 1),
        "textures": len(list(store.iterdir())) if store.is_dir() else 0,
    }


def _child(look: str, what: str, args, work: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        look,
        what,
        "--frames",
        str(args.frames),
        "--count",
        str(args.count),
        "--seed",
        str(args.seed),
        "--work",
        str(work),
    ]
    proc = subprocess.run(cmd, env=_look_env(look, work), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{look} {what} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=5, help="frames (4k+1) of the clip")
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-render", action="store_true")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "people_cost.json")
    ap.add_argument("--child", nargs=2, metavar=("LOOK", "WHAT"), help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        look, what = args.child
        args.work.mkdir(parents=True, exist_ok=True)
        res = (
            render_variant(args.frames, args.work)
            if what == "render"
            else build_variant(args.count, args.seed, args.work)
        )
        print(json.dumps(res))
        return

    tmp = Path(tempfile.mkdtemp(prefix="people-cost-"))
    try:
        if not args.skip_render:
            r = {look: _child(look, "render", args, tmp / f"render-{look}") for look in ("procedural", "makehuman")}
            ratio = r["makehuman"]["cpu_seconds_per_frame"] / r["procedural"]["cpu_seconds_per_frame"]
            wall_ratio = r["makehuman"]["wall_seconds_per_frame"] / r["procedural"]["wall_seconds_per_frame"]
            load = os.getloadavg()
            for look, v in r.items():
                print(
                    f"render {look:<10}: {v['cpu_seconds_per_frame']:.1f} CPU s/frame, "
                    f"{v['wall_seconds_per_frame']:.1f} wall s/frame at 832x480 16 spp + denoise "
                    f"({v['vertices']} vertices), Blender peak RSS {v['blender_peak_rss_mb']:.0f} MB"
                )
            print(
                f"render makehuman / procedural: {ratio:.2f}x CPU, {wall_ratio:.2f}x wall (goal <= 1.3x); "
                f"load average {load[0]:.2f}"
            )
            merge_result(
                args.out,
                "render",
                {**r, "ratio_cpu": round(ratio, 3), "ratio_wall": round(wall_ratio, 3), "load_average": load},
            )
        if not args.skip_build:
            b = {look: _child(look, "build", args, tmp / f"build-{look}") for look in ("procedural", "makehuman")}
            ratio = b["makehuman"]["seconds_per_character"] / b["procedural"]["seconds_per_character"]
            load = os.getloadavg()
            for look, v in b.items():
                print(
                    f"build {look:<10}: {v['seconds_per_character']:.2f} s ({v['cpu_seconds_per_character']:.2f} CPU s) "
                    f"and {v['mb_per_character']:.2f} MB per character over {v['count']} new people "
                    f"(max {v['mb_per_character_max']:.2f} MB); steady state {v['steady_seconds_per_character']:.2f} s "
                    f"({v['steady_cpu_seconds_per_character']:.2f} CPU s); texture store {v['texture_store_mb']} MB "
                    f"in {v['textures']} files, shared by the folder"
                )
            print(
                f"build makehuman / procedural: {ratio:.2f}x (goals: <= 1 s, <= 3 MB per character); "
                f"load average {load[0]:.2f}"
            )
            merge_result(args.out, "build", {**b, "ratio": round(ratio, 3), "load_average": load})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
