"""The paper's benchmarks: loaders for the datasets as they ship, their protocols, and the tables.

    thfm-synth evaluate --benchmark hi4d --data /data/Hi4D --checkpoint runs/wan13b_stage2/checkpoints

    from model.benchmarks import run_benchmark
    result = run_benchmark("ppm100", "/data/PPM-100", checkpoint="runs/x/checkpoints")
    print(result.table)

=============  ==========================================  ===========================================
name           dataset, protocol                            metrics
=============  ==========================================  ===========================================
hi4d           Hi4D pairs 28, 32, 37, camera 4: normals     mean / median angle, % < 11.25/22.5/30 deg
               rendered from the scans (model/benchmarks/
               hi4d.py)
goliath        Goliath, the DAViD selection (4 subjects,     RMSE (m), AbsRel after scale-and-shift
               12 cameras, 16 frames; face / upper body /    alignment, per crop
               full body crops): depth from the scans
videomatte     VideoMatte240K composited test clips (the     MAD, MSE, Grad, Conn, dtSSD (RVM's units)
               static-background split of RVM)
photomatte85   PhotoMatte85 (85 RGBA portraits)              MAD, MSE, Grad, Conn
ppm100         PPM-100 (100 portraits with mattes)           MAD, MSE, Grad, Conn
emdb           EMDB 1 (SMPL 24 joints, pelvis-aligned)        MPJPE, PA-MPJPE (mm), Accel (mm/frame^2)
rich           RICH test split (24 joints from SMPL-X)       MPJPE, PA-MPJPE, Accel
h36m           Human3.6M S9/S11, camera 54138969 (14 joints) MPJPE, PA-MPJPE, Accel
=============  ==========================================  ===========================================

None of these datasets may be redistributed: each module's docstring says where to get it and
the folder layout it expects (the dataset's own, unpacked); a wrong or incomplete folder is a
one-line error naming the missing file and the layout.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from model.benchmarks.common import CheckpointMismatch, LayoutError, ModelPredictor, Sample, format_table


def registry() -> dict[str, Any]:
    """name -> benchmark object (imported lazily: each module is small, but scipy/PIL load on use)."""
    from model.benchmarks.goliath import GoliathDepth
    from model.benchmarks.hi4d import Hi4DNormals
    from model.benchmarks.keypoints import EMDB, H36M, RICH
    from model.benchmarks.matting import PPM100, PhotoMatte85, VideoMatte

    return {
        b.name: b
        for b in (Hi4DNormals(), GoliathDepth(), VideoMatte(), PhotoMatte85(), PPM100(), EMDB(), RICH(), H36M())
    }


NAMES = ("hi4d", "goliath", "videomatte", "photomatte85", "ppm100", "emdb", "rich", "h36m")


@dataclasses.dataclass
class BenchmarkResult:
    name: str
    task: str
    groups: dict[str, dict[str, float]]  # group -> metric -> value (raw units, see each module)
    samples: list[dict]  # per sample: key, group, metrics
    table: str
    seconds: float

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def run_benchmark(
    name: str,
    data: str | Path,
    *,
    checkpoint: str | Path | None = None,
    predictor=None,
    method: str | None = None,
    limit: int | None = None,
    progress: bool = True,
    vae_weights: str | None = None,
    keypoint_convention: str | None = None,
    model_size: str | None = None,
    **options,
) -> BenchmarkResult:
    """Score a checkpoint (or any ``predictor(sample, task) -> prediction``) on a benchmark.

    ``options`` go to the benchmark's loader (e.g. ``body_model=DIR`` for emdb/rich). ``limit``
    evaluates the first N samples only (a smoke test, not the protocol)."""
    benches = registry()
    if name not in benches:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(NAMES)}")
    bench = benches[name]
    root = Path(data)
    if not root.is_dir():
        raise LayoutError(name, root, bench.layout)
    t0 = time.perf_counter()
    # the first sample before the model: a wrong or incomplete folder fails before a checkpoint loads
    it = iter(bench.samples(root, **options))
    first = next(it, None)
    if first is None:
        raise LayoutError(name, root / "...", bench.layout)
    if predictor is None:
        if checkpoint is None:
            raise ValueError("give a checkpoint (or a predictor)")
        model = ModelPredictor(
            checkpoint, vae_weights=vae_weights, keypoint_convention=keypoint_convention, model_size=model_size
        )
        task = model.pick_task(bench.tasks)
        if bench.kind == "keypoints":
            bench.check_keypoints(model.keypoint_convention, model.num_keypoints, checkpoint)

        def predictor(sample: Sample, task: str):  # noqa: F811
            if bench.kind == "keypoints":
                return bench.adapt_keypoints(model.keypoints(sample.frames, task), model.keypoint_convention)
            return model.dense(sample.frames, task)

        method = method or f"this checkpoint ({Path(str(checkpoint)).name}, {model.size}, task {task})"
    else:
        task = bench.tasks[0]
        method = method or "predictor"
    scored = []

    def chained():
        yield first
        yield from it

    stream = chained()
    if progress:
        from tqdm import tqdm

        stream = tqdm(stream, desc=name, unit="sample")
    for sample in stream:
        pred = predictor(sample, task)
        scored.append((sample, bench.score(sample, pred)))
        if limit is not None and len(scored) >= limit:
            break
    groups = bench.aggregate(scored)
    notes = list(bench.notes) + [
        f"{len(scored)} samples" + (f" (limited to {limit}: not the protocol)" if limit is not None else "")
    ]
    table = format_table(
        bench.title,
        bench.groups,
        bench.columns,
        [(method, groups)],
        notes,
        getattr(bench, "group_titles", None),
        bench.references,
    )
    return BenchmarkResult(
        name=name,
        task=task,
        groups=groups,
        samples=[
            {"key": s.key, "group": s.group, **{k: v for k, v in m.items() if isinstance(v, (int, float))}}
            for s, m in scored
        ],
        table=table,
        seconds=time.perf_counter() - t0,
    )


def layout_help(name: str) -> str:
    """The dataset's expected layout and how to obtain it (the module docstring)."""
    import importlib

    benches = registry()
    if name not in benches:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(NAMES)}")
    mod = importlib.import_module(type(benches[name]).__module__)
    return (mod.__doc__ or "").strip()


__all__ = ["run_benchmark", "layout_help", "registry", "NAMES", "BenchmarkResult", "LayoutError", "CheckpointMismatch"]
