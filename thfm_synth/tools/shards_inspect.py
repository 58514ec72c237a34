"""What `thfm-synth shards ls|info|stats|show|verify|export SHARD_DIR` does, as plain functions.

Each function returns a :class:`Result`: ``data`` (JSON-serialisable, for ``--json``) and
``lines`` (what to print). None of them prints.

    ls(root)                         shards: files, sizes, records per task, done or partial
    info(root)                       schema with field docs, counts per task, codec, prompt provenance and
                                     the size of one video (its records, split into latents, pixel ground
                                     truth and the rest)
    stats(root)                      per task: mean/std/min/max per latent channel (RGB and target), the
                                     stored bytes per video and per record
    show(root, out_dir, index=0)     decode one record through its codec -> MP4 + PNG, side by side
                                     with the source frames and target when the render folder is there
    verify(root)                     every file digest and record checksum; names damaged records
    export(root, out_dir, count=4)   a sample of records -> PNG (RGB, targets), EXR (decoded targets,
                                     float), NPY (latents, keypoints, cameras) and record.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.tasks import DENSE_TASKS
from thfm_synth.errors import UserError
from thfm_synth.shards.record import ARRAYS, FIELD_DOCS, PIXEL_ARRAYS, SCALARS, Record
from thfm_synth.shards.store import INDEX, ShardSet, open_array_record, parquet_schema, read_array_record
from thfm_synth.shards.store import verify as verify_store

PROMPTS_FILE = "prompts.npz"
DENSE = DENSE_TASKS  # defined once, in model/tasks.py


@dataclass
class Result:
    data: Any
    lines: list[str] = field(default_factory=list)

    def text(self) -> str:
        return "\n".join(self.lines)


def _mb(n: int) -> str:
    return f"{n / 1e6:,.2f} MB"


# ----------------------------------------------------------------------------- ls / info


def ls(root: str | Path) -> Result:
    """Every shard: files and sizes, records (per task); unfinished shards are listed as partial."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"shard folder {root} not found", "point at the output folder of `thfm-synth preprocess`")
    rows = []
    names = sorted({p.name.split(".")[0] for p in root.glob("shard-*.*")})
    for name in names:
        meta_path = root / f"{name}.json"
        files = {fmt: root / f"{name}.{fmt}" for fmt in ("parquet", "array_record")}
        row = {
            "name": name,
            "done": meta_path.is_file(),
            "parquet_bytes": files["parquet"].stat().st_size if files["parquet"].is_file() else None,
            "array_record_bytes": files["array_record"].stat().st_size if files["array_record"].is_file() else None,
            "records": None,
            "tasks": {},
            "videos": None,
        }
        if row["done"]:
            meta = json.loads(meta_path.read_text())
            row.update(records=meta["num_records"], tasks=meta["tasks"], videos=len(meta.get("videos", [])) or None)
        rows.append(row)
    indexed = (root / INDEX).is_file()
    lines = [f"{'shard':<14}{'records':>8}{'videos':>8}{'parquet':>14}{'array_record':>15}  tasks"]
    for r in rows:
        tasks = " ".join(f"{t}:{n}" for t, n in sorted(r["tasks"].items())) if r["done"] else "PARTIAL (no .json)"
        lines.append(
            f"{r['name']:<14}{r['records'] if r['records'] is not None else '-':>8}"
            f"{r['videos'] or '-':>8}{_mb(r['parquet_bytes'] or 0):>14}{_mb(r['array_record_bytes'] or 0):>15}"
            f"  {tasks}"
        )
    total = sum((r["parquet_bytes"] or 0) + (r["array_record_bytes"] or 0) for r in rows)
    lines.append(
        f"{len(rows)} shards ({sum(r['done'] for r in rows)} done), "
        f"{sum(r['records'] or 0 for r in rows)} records, {_mb(total)}"
        + ("" if indexed else f"; no {INDEX}: the shard set is unfinished")
    )
    return Result({"shards": rows, "indexed": indexed, "bytes": total}, lines)


def _prompt_info(root: Path) -> dict | None:
    path = root / PROMPTS_FILE
    if not path.is_file():
        return None
    from model.prompts import PromptTable

    table = PromptTable.load(path)
    return {
        "provenance": table.provenance,
        "embeddings": {t: list(e.shape) for t, e in sorted(table.embeddings.items())},
    }


def video_bytes(records) -> dict:
    """Stored array bytes of the records of one video, by kind: latents, pixel ground truth, other."""
    out = {"latents": 0, "pixels": 0, "other": 0, "records": 0}
    for rec in records:
        out["records"] += 1
        for name, a in rec.arrays.items():
            kind = "latents" if name.endswith("_latents") else "pixels" if name in PIXEL_ARRAYS else "other"
            out[kind] += int(np.asarray(a).nbytes)
    out["total"] = out["latents"] + out["pixels"] + out["other"]
    return out


def _first_video_bytes(shards: ShardSet) -> dict:
    recs, vid = [], None
    for rec in shards.records("array_record"):
        if vid is not None and rec.video_id != vid:
            break
        vid = rec.video_id
        recs.append(rec)
    return dict(video_bytes(recs), video_id=vid)


def _size_lines(shards: ShardSet, per: dict) -> list[str]:
    idx = shards.index
    files = sum(f["bytes"] for sh in idx.get("shards", []) for f in sh["files"].values())
    n = idx.get("num_videos") or None
    lines = []
    if n:
        lines.append(
            f"shard size per video: {_mb(files / n)} on disk (Parquet + ArrayRecord, {idx['num_shards']} "
            f"shards, {_mb(files)} for {n} videos)"
        )
    lines.append(
        f"arrays of one video ({per['video_id']}, {per['records']} records, one format): {_mb(per['total'])}"
        f" = latents {_mb(per['latents'])} + pixel ground truth {_mb(per['pixels'])}"
        f" + keypoints/cameras {_mb(per['other'])}"
        + ("" if per["pixels"] else " (no pixel ground truth: stage-1 shards)")
    )
    return lines


def info(root: str | Path) -> Result:
    """Schema (with field docs), counts per task, codec, preprocessing settings, prompt provenance."""
    shards = ShardSet.open(root)
    idx = shards.index
    first = next(iter(shards.records("array_record")), None)
    shapes = (
        {n: {"dtype": first.arrays[n].dtype.str, "shape": list(first.arrays[n].shape)} for n in ARRAYS}
        if first is not None
        else {}
    )
    schema = [{"name": f.name, "type": str(f.type)} for f in parquet_schema()]
    prompts = _prompt_info(shards.root)
    per_video = _first_video_bytes(shards) if first is not None else None
    data = {
        "root": str(shards.root),
        "schema_version": idx["schema_version"],
        "num_shards": idx["num_shards"],
        "bytes_per_video": per_video,
        "num_records": idx["num_records"],
        "num_videos": idx.get("num_videos"),
        "tasks": idx["tasks"],
        "vae_id": idx.get("vae_id") or (first.vae_id if first else None),
        "preprocess": idx.get("preprocess"),
        "render_dir": idx.get("render_dir"),
        "content_sha256": idx.get("content_sha256"),
        "fields": FIELD_DOCS,
        "parquet_schema": schema,
        "first_record": shapes,
        "prompts": prompts,
    }
    lines = [
        f"shard set {shards.root}: {idx['num_records']} records in {idx['num_shards']} shards"
        + (f" from {idx['num_videos']} videos" if idx.get("num_videos") else ""),
        "records per task: " + ", ".join(f"{t} {n}" for t, n in idx["tasks"].items()),
        f"codec (vae_id): {data['vae_id']}",
    ]
    if data["preprocess"]:
        p = data["preprocess"]
        lines.append(
            f"clips: {p['num_frames']} frames at {p['fps']:g} fps, {p['width']}x{p['height']}, "
            f"keypoints {p['keypoint_convention']}, latents {p['latent_dtype']}"
        )
    if data["render_dir"]:
        lines.append(f"rendered videos: {data['render_dir']}")
    if prompts:
        prov = prompts["provenance"]
        lines.append(
            f"prompts ({PROMPTS_FILE}): encoder {prov.get('encoder')}, dim {prov.get('dim')}"
            + (f", tokens {prov['tokens']}" if "tokens" in prov else "")
            + (f", weights digest {prov['weights_digest'][:16]}" if prov.get("weights_digest") else "")
        )
    else:
        lines.append(f"prompts: no {PROMPTS_FILE}")
    if per_video:
        lines += _size_lines(shards, per_video)
    lines.append(f"content sha256: {data['content_sha256']}")
    lines.append("fields (schema version %d):" % idx["schema_version"])
    for name in SCALARS + ARRAYS:
        shape = f"  [{shapes[name]['dtype']} {tuple(shapes[name]['shape'])}]" if name in shapes else ""
        lines.append(f"  {name:<22}{FIELD_DOCS[name]}{shape}")
    return Result(data, lines)


# ----------------------------------------------------------------------------- stats


class _Moments:
    def __init__(self):
        self.n = self.s = self.s2 = self.lo = self.hi = None
        self.records = 0

    def add(self, a: np.ndarray) -> None:
        x = np.asarray(a, np.float64).reshape(a.shape[0], -1)  # (C, N)
        n, s, s2 = x.shape[1], x.sum(1), (x * x).sum(1)
        lo, hi = x.min(1), x.max(1)
        if self.n is None:
            self.n, self.s, self.s2, self.lo, self.hi = n, s, s2, lo, hi
        else:
            self.n += n
            self.s, self.s2 = self.s + s, self.s2 + s2
            self.lo, self.hi = np.minimum(self.lo, lo), np.maximum(self.hi, hi)
        self.records += 1

    def result(self) -> dict:
        mean = self.s / self.n
        std = np.sqrt(np.maximum(self.s2 / self.n - mean * mean, 0.0))
        return {
            "records": self.records,
            "values_per_channel": int(self.n),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "min": self.lo.tolist(),
            "max": self.hi.tolist(),
        }


def stats(root: str | Path, tasks: list[str] | None = None, max_records: int | None = None) -> Result:
    """Per task, per channel mean/std/min/max of the RGB and target latents (keypoint tasks: of the
    keypoint coordinates, non-finite values left out)."""
    shards = ShardSet.open(root)
    acc: dict[str, dict[str, _Moments]] = {}
    sizes: dict[str, list[int]] = {}
    per_video: dict[str, int] = {}
    seen = 0
    for rec in shards.records("parquet"):
        if tasks and rec.task not in tasks:
            continue
        if max_records is not None and seen >= max_records:
            break
        seen += 1
        b = video_bytes([rec])
        sizes.setdefault(rec.task, []).append(b["total"])
        per_video[rec.video_id] = per_video.get(rec.video_id, 0) + b["total"]
        slot = acc.setdefault(rec.task, {})
        slot.setdefault("rgb_latents", _Moments()).add(rec.arrays["rgb_latents"])
        if rec.arrays["target_latents"].size:
            slot.setdefault("target_latents", _Moments()).add(rec.arrays["target_latents"])
        if rec.task.startswith("keypoints"):
            name = rec.task
            kp = rec.arrays[name].reshape(-1, rec.arrays[name].shape[-1])
            kp = kp[np.isfinite(kp).all(1)]
            if len(kp):
                slot.setdefault(name, _Moments()).add(kp.T)
    data = {t: {k: m.result() for k, m in v.items()} for t, v in sorted(acc.items())}
    size = {
        "per_video_mean": float(np.mean(list(per_video.values()))) if per_video else 0.0,
        "videos": len(per_video),
        "per_record_mean": {t: float(np.mean(v)) for t, v in sorted(sizes.items())},
    }
    lines = [
        f"value statistics of {seen} records (per channel: mean / std / min / max)",
        f"stored arrays per video: {_mb(size['per_video_mean'])} (mean of {size['videos']} videos); per record: "
        + ", ".join(f"{t} {_mb(v)}" for t, v in size["per_record_mean"].items()),
    ]
    for task, parts in data.items():
        for what, r in parts.items():
            lines.append(f"{task} {what} ({r['records']} records, {r['values_per_channel']:,} values per channel):")
            for c in range(len(r["mean"])):
                lines.append(
                    f"  ch{c:<3} {r['mean'][c]:>9.4f} {r['std'][c]:>9.4f} {r['min'][c]:>9.4f} {r['max'][c]:>9.4f}"
                )
    return Result({"records": seen, "tasks": data, "bytes": size}, lines)


# ----------------------------------------------------------------------------- verify


def verify(root: str | Path) -> Result:
    """Re-check every file sha256 and record checksum in both formats; `data['ok']` is the verdict."""
    checked, problems = verify_store(root)
    lines = problems + [
        f"checked {checked} records (Parquet and ArrayRecord): "
        + ("all checksums match" if not problems else f"{len(problems)} problems")
    ]
    return Result({"checked": checked, "problems": problems, "ok": not problems}, lines)


# ----------------------------------------------------------------------------- decoding and pictures


def _codec_for(vae_id: str, vae_weights: str | Path | None):
    from model.vae import CODEC_ID, make_codec

    if vae_id == CODEC_ID:
        return make_codec(None)
    if not vae_weights:
        raise UserError(
            f"the records were encoded by {vae_id}; decoding them needs those VAE weights",
            "pass the WAN 2.1 VAE weights (--vae-weights)",
        )
    codec = make_codec(vae_weights)
    if codec.vae_id != vae_id:
        raise UserError(
            f"VAE weights {vae_weights} are {codec.vae_id}, the records were encoded by {vae_id}",
            "pass the weights the shard set was made with",
        )
    return codec


def decode(codec, latents: np.ndarray) -> np.ndarray:
    """(C, T', h, w) stored (normalised) latents -> (T, H, W, 3) float32 in [-1, 1]."""
    z = np.asarray(latents, np.float32).transpose(1, 2, 3, 0)[None]
    z = codec.denormalize_latents(z, channels_last=True)
    return np.asarray(codec.decode(z, channels_last=True))[0]


def _u8(x01: np.ndarray) -> np.ndarray:
    return (np.clip(x01, 0, 1) * 255 + 0.5).astype(np.uint8)


def visualise(task: str, video: np.ndarray) -> np.ndarray:
    """A (T, H, W, 3) target in [-1, 1] as uint8 RGB (depth in turbo colours, normals as
    (x, -y, -z), IUV as part colours shaded by U/V, the rest as RGB)."""
    from thfm_synth.tools.preview import PALETTE, turbo

    x01 = (np.asarray(video, np.float32) + 1) / 2
    if task in ("depth", "human_depth"):
        return turbo(x01.mean(-1))
    if task in ("normals", "human_normals"):
        n = np.asarray(video, np.float32) * np.array([1.0, -1.0, -1.0])
        return _u8(n * 0.5 + 0.5)
    if task == "iuv":
        part = np.clip(np.round(x01[..., 0] * 24), 0, 24).astype(int)
        return _u8(PALETTE[part] * (0.55 + 0.45 * x01[..., 1:].mean(-1, keepdims=True)))
    return _u8(x01)


def draw_keypoints(frames: np.ndarray, kp2d: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """Skeleton of normalised 2D keypoints on uint8 frames (SMPL-24 bones when there are 24 joints)."""
    from thfm_synth.tools.preview import SMPL24_BONES, VIS_COLOURS, _draw_dot, _draw_line

    out = frames.copy()
    h, w = out.shape[1:3]
    r = max(1, w // 150)
    for f in range(len(out)):
        uv = kp2d[f] * np.array([w, h])
        if kp2d.shape[1] == 24:
            for a, b in SMPL24_BONES:
                if vis[f, a] != 1 and vis[f, b] != 1 and np.isfinite(uv[[a, b]]).all():
                    _draw_line(out[f], uv[a], uv[b], (255, 255, 255))
        for p, v in zip(uv, vis[f]):
            if v != 1 and np.isfinite(p).all():
                _draw_dot(out[f], p, VIS_COLOURS[min(int(v), 3)], r)
    return out


def _labelled(panels: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """(T, H, W*n + gaps, 3): panels side by side with a 2-pixel white gap."""
    t, h = panels[0][1].shape[:2]
    gap = np.full((t, h, 2, 3), 255, np.uint8)
    parts = []
    for i, (_, p) in enumerate(panels):
        parts += ([gap] if i else []) + [p]
    return np.concatenate(parts, axis=2)


def _write_mp4(path: Path, frames: np.ndarray, fps: float) -> Path | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    h, w = frames.shape[1:3]
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (w, h),
        fps=float(fps),
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=2,
        quality=8,
        output_params=["-loglevel", "error"],
    )
    writer.send(None)
    for f in frames:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return path


def _locate(shards: ShardSet, index: int | None, video_id: str | None, task: str | None) -> tuple[int, Record]:
    """A record by global index (file order over the shards) or by video id (and task); verified."""
    total = shards.index["num_records"]
    if video_id is None and task is None:
        index = index or 0
        if not 0 <= index < total:
            raise UserError(f"record {index} is outside the shard set (0..{total - 1})", "choose another --index")
        base = 0
        for s in shards.index["shards"]:
            if index < base + s["num_records"]:
                path = shards.root / s["files"]["array_record"]["path"]
                reader = open_array_record(path)
                try:
                    return index, read_array_record(reader, path, index - base)
                finally:
                    reader.close()
            base += s["num_records"]
    base = 0
    for s in shards.index["shards"]:
        meta = json.loads((shards.root / f"{s['name']}.json").read_text())
        for i, (vid, t) in enumerate(meta.get("records", [])):
            if (video_id is None or vid == video_id) and (task is None or t == task):
                path = shards.root / s["files"]["array_record"]["path"]
                reader = open_array_record(path)
                try:
                    return base + i, read_array_record(reader, path, i)
                finally:
                    reader.close()
        base += s["num_records"]
    raise UserError(f"no record {video_id or '*'}/{task or '*'} in {shards.root}", "see `thfm-synth shards ls`")


def _source_clip(shards: ShardSet, rec: Record, render_dir: str | Path | None):
    """The record's video resampled like preprocessing did, when its render folder is reachable."""
    from thfm_synth.preprocess.video import PreprocessConfig, load_clip

    cfg = shards.index.get("preprocess")
    base = (
        Path(render_dir)
        if render_dir
        else (Path(shards.index["render_dir"]) if shards.index.get("render_dir") else None)
    )
    if base is None or cfg is None:
        return None
    for cand in (base / "videos" / rec.video_id, base / rec.video_id, base):
        if (cand / "metadata.json").is_file():
            try:
                meta = json.loads((cand / "metadata.json").read_text())
            except ValueError:
                continue
            if meta.get("spec", {}).get("video_id", cand.name) == rec.video_id:
                return load_clip(cand, PreprocessConfig(**cfg))
    return None


def show(
    root: str | Path,
    out_dir: str | Path | None = None,
    *,
    index: int | None = None,
    video_id: str | None = None,
    task: str | None = None,
    render_dir: str | Path | None = None,
    vae_weights: str | Path | None = None,
    sheet_frames: int = 4,
) -> Result:
    """Decode one record and write `<video>_<task>.mp4` and `.png` to `out_dir` (default ./shards-show).

    The record: `index` (global number in file order, default 0) or the first match of `video_id`
    and/or `task`. Panels: [source RGB] | decoded RGB | [source target] | decoded target; the source
    panels need the render folder (recorded in the index, or `render_dir`). Keypoint tasks show the
    record's keypoints on the RGB."""
    shards = ShardSet.open(root)
    i, rec = _locate(shards, index, video_id, task)
    codec = _codec_for(rec.vae_id, vae_weights)
    rgb = _u8((decode(codec, rec.arrays["rgb_latents"]) + 1) / 2)
    t = rgb.shape[0]
    kp, vis = rec.arrays["keypoints_2d"], rec.arrays["keypoints_visibility"]
    clip = _source_clip(shards, rec, render_dir)
    panels: list[tuple[str, np.ndarray]] = []
    if clip is not None:
        panels.append(("source rgb", _u8((clip.rgb() + 1) / 2)))
    panels.append(("decoded rgb", rgb))
    if rec.task in DENSE:
        if clip is not None:
            panels.append((f"source {rec.task}", visualise(rec.task, clip.target(rec.task))))
        panels.append((f"decoded {rec.task}", visualise(rec.task, decode(codec, rec.arrays["target_latents"]))))
    else:
        base = panels[0][1]
        panels.append((f"{rec.task} (record)", draw_keypoints(base, kp[:t], vis[:t])))
    grid = _labelled(panels)
    out = Path(out_dir) if out_dir else Path("shards-show")
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{rec.video_id}_{rec.task}"
    from thfm_synth.render.imagefiles import write_png

    pick = np.unique(np.linspace(0, t - 1, min(sheet_frames, t)).round().astype(int))
    png = out / f"{stem}.png"
    write_png(png, np.concatenate([grid[j] for j in pick], axis=0))
    fps = (shards.index.get("preprocess") or {}).get("fps", 24.0)
    mp4 = _write_mp4(out / f"{stem}.mp4", grid, fps)
    names = [n for n, _ in panels]
    data = {
        "record": i,
        "video_id": rec.video_id,
        "task": rec.task,
        "png": str(png),
        "mp4": str(mp4) if mp4 else None,
        "panels": names,
        "source_found": clip is not None,
        "frames": int(t),
        "vae_id": rec.vae_id,
    }
    lines = [
        f"record {i} ({rec.video_id}/{rec.task}) decoded with {rec.vae_id}: {' | '.join(names)}",
        f"wrote {png}" + (f" and {mp4}" if mp4 else " (no MP4: imageio-ffmpeg missing)"),
    ]
    if rec.body_model:  # SMPL-X ground truth of the record
        from thfm_synth.shards import body_params

        lines += body_params.describe(rec.body_model, rec.arrays["body_params"], rec.arrays["body_betas"])
        data["body_model"] = json.loads(rec.body_model)
        data["body_betas"] = rec.arrays["body_betas"].tolist()
        data["body_params_shape"] = list(rec.arrays["body_params"].shape)
    if clip is None:
        lines.append("source frames not shown: the render folder is not reachable (pass render_dir)")
    return Result(data, lines)


# ----------------------------------------------------------------------------- export


def export(
    root: str | Path,
    out_dir: str | Path,
    *,
    count: int = 4,
    indices: list[int] | None = None,
    tasks: list[str] | None = None,
    vae_weights: str | Path | None = None,
) -> Result:
    """Write a sample of records, one folder `<index>_<video>_<task>/` each:

        record.json              scalar fields, array dtypes/shapes, checksum
        rgb/NNNNN.png            decoded RGB frames
        target/NNNNN.png         decoded target, visualised (dense tasks)
        target/NNNNN.exr         decoded target, float32 X/Y/Z in [-1, 1] (dense tasks)
        rgb_latents.npy, target_latents.npy, keypoints_2d.npy, keypoints_3d.npy,
        keypoints_visibility.npy, camera_k.npy, camera_rt.npy      the record's arrays, as stored

    The sample is `indices` (global record numbers) or `count` records spread evenly over the set
    (restricted to `tasks` when given)."""
    from thfm_synth.render.imagefiles import write_exr, write_png

    shards = ShardSet.open(root)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if indices is None:
        cands = []
        base = 0
        for s in shards.index["shards"]:
            meta = json.loads((shards.root / f"{s['name']}.json").read_text())
            names = meta.get("records") or [[None, None]] * s["num_records"]
            cands += [base + i for i, (_, t) in enumerate(names) if not tasks or t in tasks]
            base += s["num_records"]
        if not cands:
            raise UserError(f"no records of tasks {tasks} in {shards.root}", "see `thfm-synth shards info`")
        pick = np.unique(np.linspace(0, len(cands) - 1, min(count, len(cands))).round().astype(int))
        indices = [cands[j] for j in pick]
    codecs: dict[str, Any] = {}
    written = []
    for i in indices:
        _, rec = _locate(shards, int(i), None, None)
        if rec.vae_id not in codecs:
            codecs[rec.vae_id] = _codec_for(rec.vae_id, vae_weights)
        codec = codecs[rec.vae_id]
        d = out / f"{i:06d}_{rec.video_id}_{rec.task}"
        (d / "rgb").mkdir(parents=True, exist_ok=True)
        rgb = _u8((decode(codec, rec.arrays["rgb_latents"]) + 1) / 2)
        for f, frame in enumerate(rgb):
            write_png(d / "rgb" / f"{f:05d}.png", frame)
        if rec.arrays["target_latents"].size:
            (d / "target").mkdir(exist_ok=True)
            tgt = decode(codec, rec.arrays["target_latents"])
            vis = visualise(rec.task, tgt)
            for f in range(len(tgt)):
                write_png(d / "target" / f"{f:05d}.png", vis[f])
                write_exr(
                    d / "target" / f"{f:05d}.exr", {c: tgt[f, ..., j].astype(np.float32) for j, c in enumerate("XYZ")}
                )
        for name in ARRAYS:
            np.save(d / f"{name}.npy", rec.arrays[name], allow_pickle=False)
        (d / "record.json").write_text(
            json.dumps(
                {
                    **rec.scalars(),
                    "source_checksums": _maybe_json(rec.source_checksums),
                    "record_sha256": rec.checksum(),
                    "arrays": {
                        n: {"dtype": rec.arrays[n].dtype.str, "shape": list(rec.arrays[n].shape)} for n in ARRAYS
                    },
                },
                indent=1,
            )
        )
        written.append({"index": int(i), "video_id": rec.video_id, "task": rec.task, "dir": str(d)})
    lines = [f"exported {len(written)} records to {out}:"] + [f"  {w['dir']}" for w in written]
    return Result({"records": written, "out_dir": str(out)}, lines)


def _maybe_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text
