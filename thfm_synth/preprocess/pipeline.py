"""`preprocess`: rendered videos -> training shards (Parquet + ArrayRecord), distributed with Ray Data.

    preprocess("OUT", "SHARDS")   # the render's own frames, fps and size; or num_frames=..., width=...

Input: a render output root (OUT/videos/<id>/ with DONE, from `thfm-synth render`), its
videos/ folder, or one video folder (`render-one`). Output, a shard set (shards/store.py):

    preprocess.json            settings, codec and the shard plan (guards resuming)
    shard-NNNNN.{parquet,array_record,json}
    prompts.npz                task prompt embeddings with provenance (once per shard set)
    index.json                 written last: a shard set without it is unfinished

How it runs:
* the shard plan is a pure function of the sorted finished video ids and the settings: every
  video of a run has the same output shapes, so its record bytes are known in advance and
  shards take consecutive videos up to `max_shard_bytes` (same input -> same shards);
* shards whose .json done marker exists are skipped, files of unfinished ones removed;
* Ray Data maps the videos of the unfinished shards over a pool of actors (each holds one codec:
  the DCT codec, or the WAN VAE loaded once per actor) with the input order preserved, so the
  driver receives each shard's records consecutively and writes the shard as soon as its last
  video arrives (memory: about one shard on the driver, a few videos per actor);
* `workers=0` runs the same per-video code in this process, without Ray (debugging).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from thfm_synth.atomic import write_text
from thfm_synth.errors import UserError
from thfm_synth.render.farm.folders import DONE
from model.prompts import UMT5_DIM, PromptTable, builtin_table, umt5_table
from model.tasks import TASKS
from thfm_synth.preprocess.video import PreprocessConfig, VideoSource, estimate_video_bytes, video_records
from thfm_synth.shards.record import Record
from thfm_synth.shards.store import INDEX, build_index, remove_partial, shard_done, write_shard

PLAN_FILE = "preprocess.json"
PROMPTS_FILE = "prompts.npz"
NUM_KEYPOINTS = {"smpl24": 24, "h36m17": 17, "coco17": 17}
REPO = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- inputs


def _qa_passed(video_dir: Path) -> bool:
    """A farm video's QA verdict from its DONE file; a `render-one` folder's from its metadata.json."""
    from thfm_synth.render.farm.index import qa_passed

    done = video_dir / DONE
    if done.is_file():
        return qa_passed(json.loads(done.read_text()))
    meta = json.loads((video_dir / "metadata.json").read_text())
    return bool(meta.get("qa", {}).get("passed", True))


def find_videos(
    render_dir: str | Path, include_qa_failed: bool = False, skipped: list[str] | None = None
) -> list[VideoSource]:
    """Finished videos under a render output root, a videos/ folder or one video folder, sorted by id.
    Videos that failed QA are left out (their ids appended to `skipped`) unless `include_qa_failed`."""
    root = Path(render_dir)
    if not root.is_dir():
        raise UserError(f"render folder {root} not found", "point at the --out folder of `thfm-synth render`")
    if (root / "metadata.json").is_file():
        dirs = [root]
    else:
        videos = root / "videos" if (root / "videos").is_dir() else root
        dirs = sorted(p for p in videos.iterdir() if p.is_dir() and (p / DONE).is_file())
        if not dirs:
            raise UserError(
                f"no finished videos in {videos} (folders with a DONE file)",
                "render first (`thfm-synth render --out DIR`) or wait for the render to finish",
            )
    if not include_qa_failed:
        failed = [d for d in dirs if not _qa_passed(d)]
        if skipped is not None:
            skipped += [d.name for d in failed]
        dirs = [d for d in dirs if d not in failed]
        if not dirs:
            raise UserError(
                f"every video in {root} failed QA ({len(failed)}; see their metadata.json qa)",
                "fix the cause and re-render them, or pass --include-qa-failed to use them anyway",
            )
    out = [VideoSource.open(d) for d in dirs]
    ids = [v.video_id for v in out]
    if len(set(ids)) != len(ids):
        raise UserError(f"{videos} holds two videos with one video_id", "preprocess one render output at a time")
    return sorted(out, key=lambda v: v.video_id)


def plan_shards(video_ids: list[str], bytes_per_video: int, max_shard_bytes: int) -> list[tuple[str, list[str]]]:
    """Consecutive videos per shard, at most `max_shard_bytes` each (at least one video per shard)."""
    per = max(1, int(max_shard_bytes // max(bytes_per_video, 1)))
    ids = sorted(video_ids)
    return [(f"shard-{i // per:05d}", ids[i : i + per]) for i in range(0, len(ids), per)]


# ----------------------------------------------------------------------------- summary


@dataclass
class PreprocessSummary:
    out_dir: str
    videos: int  # in the shard set
    videos_processed: int  # by this run
    records_per_task: dict[str, int]
    shards: int
    shards_written: int
    shards_skipped: int
    partial_files_removed: int
    bytes: int  # both formats, all shards
    seconds: float
    vae_id: str
    estimated_bytes_per_video: int
    shard_names_written: list[str] = field(default_factory=list)
    qa_failed_left_out: list[str] = field(default_factory=list)  # videos that failed QA, not in the shards

    @property
    def videos_per_second(self) -> float:
        return self.videos_processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def records(self) -> int:
        return sum(self.records_per_task.values())

    def to_dict(self) -> dict:
        return {**self.__dict__, "videos_per_second": self.videos_per_second, "records": self.records}

    def lines(self) -> list[str]:
        tasks = ", ".join(f"{t} {n}" for t, n in self.records_per_task.items())
        return [
            f"preprocessed {self.videos_processed} videos in {self.seconds:.1f} s "
            f"({self.videos_per_second:.2f} videos/s); shards: {self.shards_written} written, "
            f"{self.shards_skipped} already done"
            + (f", {self.partial_files_removed} partial files removed" if self.partial_files_removed else ""),
            f"shard set {self.out_dir}: {self.videos} videos, {self.records} records ({tasks}), "
            f"{self.shards} shards, {self.bytes / 1e6:.1f} MB (Parquet + ArrayRecord), codec {self.vae_id}",
        ] + (
            [
                f"left out {len(self.qa_failed_left_out)} videos that failed QA "
                f"({', '.join(self.qa_failed_left_out[:5])}{' ...' if len(self.qa_failed_left_out) > 5 else ''}"
                f"; --include-qa-failed uses them)"
            ]
            if self.qa_failed_left_out
            else []
        )


# ----------------------------------------------------------------------------- the per-video work


def _make_codec(vae_weights: str | None):
    from model.vae import make_codec

    return make_codec(vae_weights or None)


class VideoEncoder:
    """Ray Data actor: one codec per actor, one video per call -> one row per record (ArrayRecord bytes)."""

    def __init__(self, cfg: dict, vae_weights: str | None):
        self.cfg = PreprocessConfig(**cfg)
        self.codec = _make_codec(vae_weights)

    def __call__(self, item: dict) -> list[dict]:
        return _encode_item(item, self.cfg, self.codec)


def _encode_item(item: dict, cfg: PreprocessConfig, codec) -> list[dict]:
    base = {"shard": item["shard"], "video_id": item["video_id"]}
    try:
        recs = video_records(VideoSource(**item["video"]), cfg, codec)
    except UserError as exc:
        return [{**base, "task": "", "data": b"", "error": exc.one_line()}]
    except Exception as exc:  # reported by the driver, naming the video
        return [{**base, "task": "", "data": b"", "error": f"{type(exc).__name__}: {exc}"}]
    return [{**base, "task": r.task, "data": r.to_bytes(), "error": ""} for r in recs]


def _rows_local(items: list[dict], cfg: PreprocessConfig, vae_weights: str | None) -> Iterator[dict]:
    codec = _make_codec(vae_weights)
    for item in items:
        yield from _encode_item(item, cfg, codec)


def _init_ray(address: str | None, workers: int | None):
    """(ray, started): a Ray this call started is shut down again when the run ends."""
    import ray

    if ray.is_initialized():
        return ray, False
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    else:
        from thfm_synth.render.farm.local_ray import start_local_ray

        start_local_ray(workers or os.cpu_count() or 1)  # a killed preprocess leaves no Ray process behind
    return ray, True


def _rows_ray(
    items: list[dict],
    cfg: PreprocessConfig,
    vae_weights: str | None,
    workers: int | None,
    address: str | None,
    cpus_per_worker: float,
    gpus_per_worker: float,
) -> Iterator[dict]:
    ray, started = _init_ray(address, workers)
    try:
        yield from _ray_dataset(ray, items, cfg, vae_weights, workers, address, cpus_per_worker, gpus_per_worker)
    finally:
        if started:
            ray.shutdown()


def _ray_dataset(ray, items, cfg, vae_weights, workers, address, cpus_per_worker, gpus_per_worker):
    import ray.data

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # "Progress bars disabled" is a warning about our own choice (ours is per video), not a problem
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # each shard's records arrive consecutively
    ctx.enable_progress_bars = False  # ours is per video
    # never ask for more actors than the Ray we got can place (an existing Ray may be smaller)
    fit = max(1, int(ray.cluster_resources().get("CPU", 1) // max(cpus_per_worker, 1e-9)))
    workers = min(workers or fit, fit)
    remote_args: dict = {"num_cpus": cpus_per_worker}
    if gpus_per_worker:
        remote_args["num_gpus"] = gpus_per_worker
    if not address:  # local workers import `model` from this checkout even when it is not installed
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        remote_args["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
    ds = ray.data.from_items(items, override_num_blocks=len(items))
    ds = ds.flat_map(
        VideoEncoder,
        fn_constructor_kwargs={"cfg": cfg.to_dict(), "vae_weights": vae_weights},
        compute=ray.data.ActorPoolStrategy(size=min(workers, len(items))),
        **remote_args,
    )
    yield from ds.iter_rows()


# ----------------------------------------------------------------------------- driver


def _prompt_table(text_encoder: str | Path | None, prompt_dim: int | None) -> PromptTable:
    if text_encoder:
        return umt5_table(text_encoder)
    return builtin_table(dim=prompt_dim or UMT5_DIM)


def _vae_ref(vae_weights: str | Path | None) -> str:
    if not vae_weights:
        from model.vae import CODEC_ID

        return CODEC_ID
    p = Path(vae_weights)
    if not p.exists():
        raise UserError(f"VAE weights {p} not found", "give the WAN 2.1 VAE file/folder, or omit it for the DCT codec")
    return f"weights:{p.resolve()}"


def _check_resume(out: Path, plan: dict) -> None:
    path = out / PLAN_FILE
    if not path.is_file():
        stray = sorted(p.name for p in out.glob("shard-*.json"))
        if stray:
            raise UserError(f"{out} holds shards ({stray[0]}, ...) but no {PLAN_FILE}", "use an empty output folder")
        return
    old = json.loads(path.read_text())
    for key, what in (("config", "settings"), ("vae", "codec"), ("shards", "set of videos or shard size")):
        if old.get(key) != plan.get(key):
            raise UserError(
                f"{out} was preprocessed with another {what} (see {path})",
                "use a new output folder, or the same render folder and settings as before",
            )


def render_video_settings(videos: list[VideoSource]) -> dict:
    """The frame count, fps and size the videos were rendered with (they must all agree)."""
    found = {(v.num_frames, v.fps, v.width, v.height) for v in videos}
    if len(found) != 1:
        raise UserError(
            f"the rendered videos differ in frames/fps/size ({sorted(found)[:3]} ...)",
            "pass --num-frames, --fps, --width and --height to resample them all to one setting",
        )
    ((n, fps, w, h),) = found
    return {"num_frames": n, "fps": fps, "width": w, "height": h}


def preprocess(
    render_dir: str | Path,
    out_dir: str | Path,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    width: int | None = None,
    height: int | None = None,
    tasks: tuple[str, ...] | list[str] = TASKS,
    vae_weights: str | Path | None = None,
    text_encoder: str | Path | None = None,
    max_shard_bytes: int = 1 << 30,
    address: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    keypoint_convention: str = "smpl24",
    latent_dtype: str = "float16",
    prompt_dim: int | None = None,
    cpus_per_worker: float = 1.0,
    gpus_per_worker: float = 0.0,
    pixel_targets: bool = True,
    include_qa_failed: bool = False,
) -> PreprocessSummary:
    """Rendered videos -> a shard set in `out_dir` (see the module doc). Resumable; returns the summary.

    `workers`: parallel encoder actors (default: the CPUs of the local Ray, or of the cluster at
    `address`, divided by `cpus_per_worker`); 0 runs in this process without Ray.
    `prompt_dim`: width of the built-in prompt table (default 4096, umT5's) when no `text_encoder`.
    num_frames, fps, width, height: the model's clip; each left None is the render's own (from
    the videos' metadata), so a render is preprocessed as it was made unless asked otherwise.
    `pixel_targets`: also store each dense record's pixel ground truth and validity mask (stage 2 is
    supervised with them); False keeps the shards as small as stage 1 needs.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    qa_skipped: list[str] = []
    videos = find_videos(render_dir, include_qa_failed, qa_skipped)
    asked = {"num_frames": num_frames, "fps": fps, "width": width, "height": height}
    video = {**render_video_settings(videos), **{k: v for k, v in asked.items() if v is not None}}
    cfg = PreprocessConfig(
        **video,
        tasks=tuple(tasks),
        keypoint_convention=keypoint_convention,
        latent_dtype=latent_dtype,
        pixel_targets=pixel_targets,
    )
    for v in videos:  # fail before any work on a video that is too short
        v.frame_indices(cfg)
    vae = _vae_ref(vae_weights)

    from model.vae import latent_shape

    lat = latent_shape(cfg.num_frames, cfg.height, cfg.width)
    per_video = estimate_video_bytes(cfg, lat, NUM_KEYPOINTS[cfg.keypoint_convention])
    shards = plan_shards([v.video_id for v in videos], per_video, max_shard_bytes)
    plan = {
        "config": cfg.to_dict(),
        "vae": vae,
        "shards": [[n, ids] for n, ids in shards],
        "max_shard_bytes": int(max_shard_bytes),
        "estimated_bytes_per_video": per_video,
        "render_dir": str(Path(render_dir).resolve()),
    }
    out.mkdir(parents=True, exist_ok=True)
    _check_resume(out, plan)
    write_text(out / PLAN_FILE, json.dumps(plan, indent=1), "preprocess plan")

    removed = remove_partial(out)
    todo = [(name, ids) for name, ids in shards if not shard_done(out, name)]
    if todo and (out / INDEX).exists():
        (out / INDEX).unlink()  # the set is incomplete until this run writes the index again
    by_id = {v.video_id: v for v in videos}
    items = [{"shard": name, "video_id": vid, "video": by_id[vid].__dict__} for name, ids in todo for vid in ids]

    table = _prompt_table(text_encoder, prompt_dim)
    written: list[str] = []
    if items:
        rows = (
            _rows_local(items, cfg, str(vae_weights) if vae_weights else None)
            if workers == 0
            else _rows_ray(
                items,
                cfg,
                str(vae_weights) if vae_weights else None,
                workers,
                address,
                cpus_per_worker,
                gpus_per_worker,
            )
        )
        written = _write_shards(out, todo, rows, cfg, vae, progress, len(items))
    table.save(out / PROMPTS_FILE)

    metas = [json.loads((out / f"{name}.json").read_text()) for name, _ in shards]
    vae_ids = sorted({m.get("vae_id", "") for m in metas})
    if len(vae_ids) != 1:
        raise UserError(f"{out}: shards made by different codecs {vae_ids}", "use a new output folder")
    extra = {
        "preprocess": cfg.to_dict(),
        "vae_id": vae_ids[0],
        "prompts": table.provenance | {"file": PROMPTS_FILE},
        "render_dir": plan["render_dir"],
        "num_videos": len(videos),
        "latent_shape": list(lat),
        "num_keypoints": NUM_KEYPOINTS[cfg.keypoint_convention],
    }
    index = build_index(out, extra)
    nbytes = sum(f["bytes"] for s in index["shards"] for f in s["files"].values())
    return PreprocessSummary(
        out_dir=str(out),
        videos=len(videos),
        videos_processed=len(items),
        records_per_task=index["tasks"],
        shards=len(shards),
        shards_written=len(written),
        shards_skipped=len(shards) - len(written),
        partial_files_removed=removed,
        bytes=nbytes,
        seconds=time.perf_counter() - t0,
        vae_id=vae_ids[0],
        estimated_bytes_per_video=per_video,
        shard_names_written=written,
        qa_failed_left_out=qa_skipped,
    )


def _write_shards(
    out: Path,
    todo: list[tuple[str, list[str]]],
    rows: Iterator[dict],
    cfg: PreprocessConfig,
    vae: str,
    progress: bool,
    total: int,
) -> list[str]:
    """Consume the ordered record rows; write each shard when its last record has arrived."""
    from tqdm import tqdm

    written: list[str] = []
    want = {name: ids for name, ids in todo}
    per_video = len(cfg.tasks)
    buf: list[Record] = []
    current = None
    bar = tqdm(total=total, unit="video", desc="preprocessing", disable=not progress)

    def flush():
        ids = want[current]
        got = [buf[i].video_id for i in range(0, len(buf), per_video)]
        if got != ids or len(buf) != per_video * len(ids):
            raise RuntimeError(f"{current}: expected records of {ids}, got {got} ({len(buf)} records)")
        write_shard(
            out,
            current,
            buf,
            extra={"videos": ids, "vae_id": buf[0].vae_id, "vae_ref": vae, "preprocess": cfg.to_dict()},
        )
        written.append(current)

    try:
        for row in rows:
            if row["error"]:
                raise UserError(
                    f"preprocessing video {row['video_id']} failed: {row['error']}",
                    "fix or re-render that video, then rerun (finished shards are kept)",
                )
            if row["shard"] != current:
                if current is not None:
                    flush()
                current, buf = row["shard"], []
            buf.append(Record.from_bytes(row["data"], verify=True))  # what the encoder made, unchanged
            if len(buf) % per_video == 0:
                bar.update(1)
        if current is not None:
            flush()
    finally:
        bar.close()
    return written
