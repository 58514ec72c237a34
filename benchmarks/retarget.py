"""Benchmark: retarget a 10 s, 120 fps clip onto a rig unlike its source.

Reports the median wall time of `retarget` (goal < 100 ms) and its ratio to plain
forward kinematics of the same clip measured in the same run, so the figure is
comparable across machines. Writes benchmarks/results/retarget.json.

    .venv/bin/python benchmarks/retarget.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from thfm_synth.assets.motion.builtin_motions import builtin_motion  # noqa: E402
from thfm_synth.assets.motion.bvh import read_bvh  # noqa: E402
from thfm_synth.assets.motion.retarget import build_retarget_map, retarget  # noqa: E402
from thfm_synth.assets.motion.testing import variant_target  # noqa: E402
from thfm_synth.assets.testassets import find_test_assets  # noqa: E402

CMU_CLIP = (find_test_assets() or REPO / "missing") / "mocap" / "cmu" / "01_14.bvh"
FRAMES = 1200  # 10 s at 120 fps


def _once(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000.0


def _time(fn, repeat: int) -> list[float]:
    fn()  # warm-up (imports, caches); cheap next to the measured calls
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "retarget.json")
    args = ap.parse_args()

    if CMU_CLIP.is_file():
        clip = read_bvh(CMU_CLIP).take(range(FRAMES))
        source = f"CMU {CMU_CLIP.name}, first {FRAMES} frames"
    else:
        clip = builtin_motion("builtin-walk", num_frames=FRAMES)
        source = f"builtin-walk, {FRAMES} frames"
    target = variant_target(clip.skeleton)
    rmap = build_retarget_map(clip.skeleton, target)

    # FK and retarget alternate within each repetition, so load from other processes
    # hits both alike and the per-pair ratio stays meaningful on a busy machine.
    retarget(clip, target, rmap=rmap)  # warm-up
    pairs = [
        (_once(clip.forward_kinematics), _once(lambda: retarget(clip, target, rmap=rmap))) for _ in range(args.repeat)
    ]
    fk_ms = [a for a, _ in pairs]
    rt_ms = [b for _, b in pairs]
    map_ms = _time(lambda: build_retarget_map(clip.skeleton, target), max(3, args.repeat // 5))
    rt_full_ms = _time(lambda: retarget(clip, target), max(3, args.repeat // 3))

    result = {
        "benchmark": "retarget",
        "clip": source,
        "frames": clip.num_frames,
        "fps": clip.fps,
        "source_joints": clip.skeleton.num_joints,
        "target_joints": target.num_joints,
        "repeat": args.repeat,
        "retarget_ms_median": statistics.median(rt_ms),
        "retarget_with_map_build_ms_median": statistics.median(rt_full_ms),
        "map_build_ms_median": statistics.median(map_ms),
        "baseline_fk_ms_median": statistics.median(fk_ms),
        "ratio_retarget_to_fk": statistics.median(b / a for a, b in pairs),
        "goal_ms": 100.0,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"retarget {clip.num_frames} frames ({source}) onto '{target.name}': "
        f"{result['retarget_ms_median']:.1f} ms median "
        f"({result['retarget_with_map_build_ms_median']:.1f} ms incl. map build), "
        f"= {result['ratio_retarget_to_fk']:.2f}x plain FK ({result['baseline_fk_ms_median']:.1f} ms); "
        f"goal < 100 ms -> {args.out}"
    )


if __name__ == "__main__":
    main()
