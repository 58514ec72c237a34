"""Benchmark: bake built-in characters (anny body + garments + labels + npz) and load one in Blender.

Reports seconds and MB per character and, as the comparable figure, the ratio of a full
bake to the bare anny forward pass (phenotype -> rest mesh) measured in the same run.
The Blender load (armature, mesh, vertex groups, materials, attributes) of a baked file is
timed in the render child when the render environment exists. Writes
benchmarks/results/build_characters.json.

    .venv/bin/python benchmarks/build_characters.py [--count 8] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from thfm_synth.assets.characters.anny_body import anny_model, bake_anny, sample_phenotype  # noqa: E402
from thfm_synth.assets.characters.format import save_character  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "build_characters.json")
    args = ap.parse_args()

    import torch

    t = time.perf_counter()
    model = anny_model()
    model_s = time.perf_counter() - t

    # baseline: the bare anny forward pass for the same phenotypes
    phens = [sample_phenotype(np.random.default_rng([args.seed, i])) for i in range(args.count)]
    fwd = []
    with torch.no_grad():
        for p in phens:
            kw = {k: torch.tensor([p[k]], dtype=torch.float64) for k in model.phenotype_labels}
            t = time.perf_counter()
            model(phenotype_kwargs=kw)
            fwd.append(time.perf_counter() - t)

    bake, save, sizes, verts = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.count):
            t = time.perf_counter()
            c = bake_anny(args.seed, i)
            t1 = time.perf_counter()
            p = save_character(Path(tmp) / f"c{i}.npz", c)
            t2 = time.perf_counter()
            bake.append(t1 - t)
            save.append(t2 - t1)
            sizes.append(p.stat().st_size / 1e6)
            verts.append(len(c.vertices))
        blender = None
        render_py = REPO / ".venv-render" / "bin" / "python"
        if render_py.exists():
            pose = Path(tmp) / "pose.npz"
            np.savez(pose, quats=np.tile([1.0, 0, 0, 0], (len(c.joint_names), 1)))
            proc = subprocess.run(
                [
                    str(render_py),
                    str(REPO / "blender_scripts" / "character_posecheck.py"),
                    "--",
                    str(p),
                    str(pose),
                    str(Path(tmp) / "out.npz"),
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode == 0:
                with np.load(Path(tmp) / "out.npz") as z:
                    blender = {"build_s": float(z["timing"][0]), "pose_eval_s": float(z["timing"][1])}

    per_char = [b + s for b, s in zip(bake, save)]
    med_fwd = statistics.median(fwd)
    med_total = statistics.median(per_char)
    result = {
        "benchmark": "build_characters",
        "count": args.count,
        "machine": {
            "python": platform.python_version(),
            "cpus": __import__("os").cpu_count(),
            "torch_threads": torch.get_num_threads(),
        },
        "anny_model_load_s": round(model_s, 3),
        "anny_forward_median_s": round(med_fwd, 4),
        "bake_median_s": round(statistics.median(bake), 4),
        "save_median_s": round(statistics.median(save), 4),
        "per_character_median_s": round(med_total, 4),
        "per_character_max_s": round(max(per_char), 4),
        "mb_per_character_mean": round(float(np.mean(sizes)), 3),
        "mb_per_character_max": round(float(np.max(sizes)), 3),
        "vertices_mean": int(np.mean(verts)),
        "ratio_bake_to_anny_forward": round(med_total / med_fwd, 1),
        "blender_load": blender,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"build_characters: {med_total:.3f} s/character (median of {args.count}), "
        f"{np.mean(sizes):.2f} MB/character; ratio to the bare anny forward pass "
        f"({med_fwd * 1000:.1f} ms): {med_total / med_fwd:.1f}x"
    )
    if blender:
        print(f"blender load of one baked character: {blender['build_s']:.3f} s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
