"""Training data for THFM: ArrayRecord shards read with Grain, as fixed-shape numpy batches.

Pipeline (per host)::

    grain_dataset(shard_dir, seed, shuffle, jax.process_index(), jax.process_count())
        # global shuffle of all records of all shards, then this host's slice [i::n]
    .repeat()                      # endless; each epoch reshuffled (grain reseeds per epoch)
    .map_with_index(mix)           # task mixing by deterministic acceptance (see below) + to numpy
    .to_iter_dataset(ReadOptions)  # threads + prefetch; Nones (rejected records) are dropped
    .batch(per_host_batch, drop_remainder=True)
    ThreadPrefetchIterDataset      # data.prefetch_batches whole batches made ahead while the step runs

**Task mixing.** A record is one (video, task) pair. Record ``j`` of task ``t`` is kept when
``u(seed, j) < a_t`` with ``a_t = (w_t / n_t) / max_s (w_s / n_s)`` (``w`` the configured weights,
``n`` the per-task record counts of the shard index, ``u`` a splitmix64 hash in [0, 1)). The kept
stream has the tasks in proportion to ``w`` without reading a task index first; rejected reads
cost I/O only. Tasks with weight 0 (or not listed) are never used. Everything is a pure function
of (seed, index), so the Grain iterator state (saved in checkpoints) resumes it exactly.

Each example (one record) is a dict of numpy arrays (latents channels-last, float32):

    rgb (T', H', W', C), target (T', H', W', C) (zeros for keypoint tasks), task_id () int32,
    kp2d (T, K, 2), kp3d (T, K, 3), kp2d_valid (T, K), kp3d_valid (T, K) float32 (0 where not finite),

and with ``pixels=True`` (stage 2) also the pixel ground truth at model resolution
(:mod:`model.pixels`): ``pixels`` (T, H, W, 3) float16 target in [-1, 1] (depth tasks: the per-clip
normalised disparity derived from the stored metric depth) and ``valid`` (T, H, W) uint8 (zeros for
keypoint tasks). They are half precision and uint8 because a full-size clip's truth is 32 M pixels:
float32 would make every prefetched batch several GB.

:func:`write_synthetic_shards` writes a small structured shard set (targets a fixed function of the
inputs) for tests, benchmarks and ``jobs/train_tiny_cpu.yaml``.
"""

from __future__ import annotations

from thfm_synth.errors import MissingFileError
import dataclasses
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from model import pixels as px
from model.tasks import DENSE_TASKS, DEPTH_TASKS, KEYPOINT_TASKS, TASK_INDEX, TASKS
from thfm_synth.shards.record import Record
from thfm_synth.shards.store import ShardSet, build_index, write_shard

PROMPTS_FILE = "prompts.npz"
_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def uniform_hash(seed: int, index: int) -> float:
    """Deterministic u in [0, 1) from (seed, index)."""
    return (_splitmix64((_splitmix64(seed & _MASK64) ^ index) & _MASK64) >> 11) / float(1 << 53)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Shapes and provenance of a shard set (from its index and first record)."""

    root: str
    latent_shape: tuple[int, int, int, int]  # (T', H', W', C) channels-last
    num_frames: int  # T
    num_keypoints: int  # K
    vae_id: str
    task_counts: dict[str, int]
    num_records: int
    pixel_shape: tuple[int, int, int] | None = None  # (T, H, W) of the pixel ground truth; None: none stored
    keypoint_convention: str | None = None  # smpl24 / h36m17 / coco17 when the shard index records it

    @property
    def latent_channels(self) -> int:
        return self.latent_shape[-1]

    @property
    def has_pixels(self) -> bool:
        return self.pixel_shape is not None


def inspect_shards(root: str | Path) -> DataSpec:
    shards = ShardSet.open(root)
    records = shards.records("array_record")
    first = next(records, None)
    if first is None:
        raise ValueError(f"{root}: the shard set holds no records")
    c, t_lat, h, w = first.arrays["rgb_latents"].shape
    kp = first.arrays["keypoints_2d"]
    if kp.ndim != 3:
        raise ValueError(f"{root}: keypoints_2d has shape {kp.shape}, expected (T, K, 2)")
    # pixel truth: from the first dense record (a video's records are consecutive, so a few suffice)
    pixel_shape, rec = None, first
    for _ in range(2 * len(TASKS)):
        if rec is None:
            break
        if rec.task in DENSE_TASKS:
            if rec.has_pixels():
                pixel_shape = tuple(int(x) for x in px.decode(rec.arrays["pixel_valid"]).shape)
            break
        rec = next(records, None)
    pre = shards.index.get("preprocess") or {}
    return DataSpec(
        root=str(root),
        latent_shape=(t_lat, h, w, c),
        num_frames=int(kp.shape[0]),
        num_keypoints=int(kp.shape[1]),
        vae_id=first.vae_id,
        task_counts={k: int(v) for k, v in shards.index.get("tasks", {}).items()},
        num_records=int(shards.index["num_records"]),
        pixel_shape=pixel_shape,
        keypoint_convention=pre.get("keypoint_convention"),
    )


def load_prompt_table(
    root: str | Path | None, text_dim: int | None = None, path: str | Path | None = None, tokens: int = 8
) -> tuple[dict[str, np.ndarray], dict]:
    """The shard set's ``prompts.npz`` (or ``path``); without one, the deterministic built-in table of
    ``text_dim`` (provenance says so)."""
    from model.prompts import UMT5_DIM, PromptTable, builtin_table

    cand = Path(path) if path else (Path(root) / PROMPTS_FILE if root else None)
    if cand is not None and cand.is_file():
        table = PromptTable.load(cand)
        return dict(table.embeddings), dict(table.provenance, path=str(cand))
    if path:
        raise MissingFileError(
            f"prompt table {path} not found",
            "give the prompts.npz of a shard folder, or omit it for the built-in prompts",
        )
    table = builtin_table(dim=text_dim or UMT5_DIM, tokens=tokens)
    return dict(table.embeddings), dict(table.provenance, path=None)


def record_to_example(rec: Record, spec: DataSpec, pixels: bool = False) -> dict[str, np.ndarray]:
    """One record as model inputs/targets (see the module doc); ``pixels`` adds the pixel ground truth."""
    t_lat, h, w, c = spec.latent_shape
    rgb = np.asarray(rec.arrays["rgb_latents"], np.float32).transpose(1, 2, 3, 0)
    if rgb.shape != (t_lat, h, w, c):
        raise ValueError(
            f"record {rec.video_id}/{rec.task}: rgb_latents {rgb.shape} (channels-last) differs from the "
            f"shard set's {spec.latent_shape}; all clips of one run must share one size"
        )
    tgt = rec.arrays["target_latents"]
    target = np.asarray(tgt, np.float32).transpose(1, 2, 3, 0) if tgt.size else np.zeros_like(rgb)
    tk = (spec.num_frames, spec.num_keypoints)

    def kp(name, d):
        a = np.asarray(rec.arrays[name], np.float32)
        if a.size == 0:
            return np.zeros((*tk, d), np.float32), np.zeros(tk, np.float32)
        if a.shape != (*tk, d):
            raise ValueError(f"record {rec.video_id}/{rec.task}: {name} {a.shape} != {(*tk, d)}")
        valid = np.isfinite(a).all(-1)
        return np.where(np.isfinite(a), a, 0.0).astype(np.float32), valid.astype(np.float32)

    kp2d, v2 = kp("keypoints_2d", 2)
    kp3d, v3 = kp("keypoints_3d", 3)
    if rec.task not in TASK_INDEX:
        raise ValueError(f"record {rec.video_id}: unknown task {rec.task!r}")
    ex = {
        "rgb": rgb,
        "target": target,
        "task_id": np.int32(TASK_INDEX[rec.task]),
        "kp2d": kp2d,
        "kp3d": kp3d,
        "kp2d_valid": v2,
        "kp3d_valid": v3,
    }
    if pixels:
        ex.update(pixel_example(rec, spec))
    return ex


def pixel_example(rec: Record, spec: DataSpec) -> dict[str, np.ndarray]:
    """``pixels`` (T, H, W, 3) float16 and ``valid`` (T, H, W) uint8 of a record (zeros for keypoint tasks)."""
    if spec.pixel_shape is None:
        raise ValueError(
            f"{spec.root}: the shards hold no pixel ground truth, which stage 2 is supervised with; "
            "preprocess again with pixel targets on (the default)"
        )
    shape = spec.pixel_shape
    if rec.task not in DENSE_TASKS:
        return {"pixels": np.zeros((*shape, 3), np.float16), "valid": np.zeros(shape, np.uint8)}
    truth = px.decode_truth(rec.task, rec.arrays["target_pixels"], rec.arrays["pixel_valid"])
    if not truth:
        raise ValueError(f"record {rec.video_id}/{rec.task} has no pixel ground truth (made without pixel targets)")
    if truth["valid"].shape != shape:
        raise ValueError(
            f"record {rec.video_id}/{rec.task}: pixel truth {truth['valid'].shape} differs from the shard set's {shape}"
        )
    return {"pixels": truth["target"].astype(np.float16), "valid": truth["valid"].astype(np.uint8)}


def acceptance(weights: Mapping[str, float], counts: Mapping[str, int]) -> dict[str, float]:
    """Per-task keep probability so that kept records follow ``weights`` (see module doc)."""
    rates = {t: float(w) / counts[t] for t, w in weights.items() if w > 0 and counts.get(t, 0) > 0}
    if not rates:
        raise ValueError(
            f"no records for the configured tasks {sorted(t for t, w in weights.items() if w > 0)}; "
            f"the shard set has {dict(counts)}"
        )
    top = max(rates.values())
    return {t: r / top for t, r in rates.items()}


def make_dataset(
    spec: DataSpec,
    *,
    batch_size: int,
    seed: int,
    weights: Mapping[str, float],
    shuffle: bool = True,
    shard_index: int = 0,
    shard_count: int = 1,
    num_threads: int = 2,
    prefetch: int = 4,
    prefetch_batches: int = 2,
    repeat: bool = True,
    pixels: bool = False,
):
    """The per-host grain IterDataset of batches (see the module doc); ``pixels``: with pixel ground truth."""
    if pixels and not spec.has_pixels:
        pixel_example(None, spec)  # raises the one-line error
    import grain

    from thfm_synth.shards.grain_source import grain_dataset

    accept = acceptance(weights, spec.task_counts)
    ds = grain_dataset(spec.root, seed=seed, shuffle=shuffle, shard_index=shard_index, shard_count=shard_count)
    if repeat:
        ds = ds.repeat(None)

    def mix(index: int, rec: Record):
        a = accept.get(rec.task, 0.0)
        if a <= 0.0 or (a < 1.0 and uniform_hash(seed, index) >= a):
            return None
        return record_to_example(rec, spec, pixels=pixels)

    ds = ds.map_with_index(mix)
    ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))
    ds = ds.batch(batch_size, drop_remainder=True)
    if prefetch_batches <= 0:
        return ds
    # whole batches are made on a background thread, `prefetch_batches` ahead, while the jitted step runs:
    # the loop only takes a finished batch (the iterator stays checkpointable: Grain saves the state of
    # the batches handed out, not of those prepared ahead, so a resume neither skips nor repeats one)
    return grain.experimental.ThreadPrefetchIterDataset(ds, prefetch_buffer_size=prefetch_batches)


def eval_examples(
    root: str | Path, spec: DataSpec | None = None, tasks: Sequence[str] | None = None, limit: int | None = None
):
    """Records of a (held-out) shard set in file order as (Record, example) pairs (no pixel truth in the
    example; decode it from the record with :func:`model.pixels.decode_truth`)."""
    spec = spec or inspect_shards(root)
    n = 0
    for rec in ShardSet.open(root).records("array_record"):
        if tasks is not None and rec.task not in tasks:
            continue
        yield rec, record_to_example(rec, spec)
        n += 1
        if limit is not None and n >= limit:
            return


# ------------------------------------------------------------------------------ synthetic shards


def synthetic_maps(channels: int, num_keypoints: int, seed: int = 1234) -> dict[str, np.ndarray]:
    """Fixed random maps that define the synthetic targets (a function of the RGB latents)."""
    rng = np.random.default_rng(seed)
    maps = {t: rng.standard_normal((channels, channels)).astype(np.float32) / np.sqrt(channels) for t in DENSE_TASKS}
    maps["keypoints_2d"] = rng.standard_normal((channels, num_keypoints * 2)).astype(np.float32) / np.sqrt(channels)
    maps["keypoints_3d"] = rng.standard_normal((channels, num_keypoints * 3)).astype(np.float32) / np.sqrt(channels)
    return maps


def synthetic_record(
    i: int,
    task: str,
    *,
    num_frames: int = 9,
    height: int = 32,
    width: int = 32,
    channels: int = 16,
    num_keypoints: int = 5,
    seed: int = 0,
    maps: Mapping[str, np.ndarray] | None = None,
    pixel_targets: bool = True,
) -> Record:
    """One structured record: random RGB latents (a per-clip offset plus noise); the dense target is
    ``tanh(rgb @ M_task)``; keypoints are fixed functions of the per-latent-frame channel means. The
    pixel ground truth is the target latents decoded with the parameter-free codec (depth tasks: a
    metric depth whose disparity is affine in that decoded video), with the two leftmost pixel
    columns invalid."""
    maps = maps or synthetic_maps(channels, num_keypoints)
    t_lat, h, w = 1 + (num_frames - 1) // 4, height // 8, width // 8
    rng = np.random.default_rng([seed, i])
    base = rng.standard_normal((1, 1, 1, channels))
    rgb = (base + 0.5 * rng.standard_normal((t_lat, h, w, channels))).astype(np.float32)  # (T', H', W', C)
    target = np.tanh(rgb @ maps[task]) if task in DENSE_TASKS else None
    frame_lat = np.ceil(np.arange(num_frames) / 4).astype(int)  # frame i -> latent frame containing it
    feat = rgb.mean(axis=(1, 2))[frame_lat]  # (T, C)
    kp2d = (1.0 / (1.0 + np.exp(-(feat @ maps["keypoints_2d"])))).reshape(num_frames, num_keypoints, 2)
    kp3d = (feat @ maps["keypoints_3d"]).reshape(num_frames, num_keypoints, 3) + np.array([0, 0, 4.0])
    t = num_frames
    arrays = {
        "rgb_latents": rgb.transpose(3, 0, 1, 2).astype(np.float16),
        "target_latents": (
            target.transpose(3, 0, 1, 2).astype(np.float16) if target is not None else np.zeros((0,), np.float16)
        ),
        "keypoints_2d": kp2d.astype(np.float32),
        "keypoints_3d": kp3d.astype(np.float32),
        "keypoints_visibility": np.zeros((t, num_keypoints), np.uint8),
        "camera_k": np.repeat(np.eye(3, dtype=np.float32)[None], t, 0),
        "camera_rt": np.repeat(np.eye(3, 4, dtype=np.float32)[None], t, 0),
    }
    from model.vae import CODEC_ID

    if pixel_targets and target is not None:
        arrays.update(_synthetic_truth(task, arrays["target_latents"]))

    return Record(
        video_id=f"synth{i:06d}",
        task=task,
        prompt_id=task,
        vae_id=CODEC_ID,
        source_checksums=json.dumps({"synthetic": f"seed={seed}"}),
        arrays=arrays,
    )


def _synthetic_truth(task: str, target_latents: np.ndarray) -> dict[str, np.ndarray]:
    from model.vae import DCTCodec

    codec = DCTCodec()
    z = np.asarray(target_latents, np.float32).transpose(1, 2, 3, 0)[None]
    video = np.clip(np.asarray(codec.decode(z, channels_last=True))[0], -1.0, 1.0)  # (T, H, W, 3)
    valid = np.ones(video.shape[:3], bool)
    valid[:, :, :2] = False
    if task in DEPTH_TASKS:
        return px.encode_truth(task, 1.0 / (1.5 + video.mean(-1)), valid)
    return px.encode_truth(task, video, valid)


def write_synthetic_shards(
    root: str | Path,
    *,
    num_videos: int = 16,
    tasks: Sequence[str] = TASKS,
    num_frames: int = 9,
    height: int = 32,
    width: int = 32,
    channels: int = 16,
    num_keypoints: int = 5,
    text_dim: int = 32,
    prompt_tokens: int = 4,
    records_per_shard: int = 32,
    seed: int = 0,
    pixel_targets: bool = True,
) -> DataSpec:
    """A structured synthetic shard set (with ``prompts.npz`` from the built-in table of ``text_dim``)."""
    from model.prompts import builtin_table

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    maps = synthetic_maps(channels, num_keypoints)
    recs = [
        synthetic_record(
            i,
            task,
            num_frames=num_frames,
            height=height,
            width=width,
            channels=channels,
            num_keypoints=num_keypoints,
            seed=seed,
            maps=maps,
            pixel_targets=pixel_targets,
        )
        for i in range(num_videos)
        for task in tasks
    ]
    for s in range(0, len(recs), records_per_shard):
        write_shard(root, f"shard-{s // records_per_shard:05d}", recs[s : s + records_per_shard])
    build_index(root, {"synthetic": True})
    builtin_table(dim=text_dim, tokens=prompt_tokens).save(root / PROMPTS_FILE)
    return inspect_shards(root)


__all__ = [
    "DataSpec",
    "inspect_shards",
    "load_prompt_table",
    "record_to_example",
    "pixel_example",
    "acceptance",
    "make_dataset",
    "eval_examples",
    "write_synthetic_shards",
    "synthetic_record",
    "uniform_hash",
    "KEYPOINT_TASKS",
]
