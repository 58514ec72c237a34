"""Shard read throughput vs raw sequential reads of the same files, codec encode speed, bytes per video.

Builds a shard set of paper-sized records (81 frames at 832x480 -> latents (16, 21, 60, 104), float16,
7 tasks per video) whose latents are real codec output (the DCT codec, or the WAN VAE with
--vae-weights) of smooth synthetic clips, then measures with a cold page cache (every file is
evicted with posix_fadvise(DONTNEED) before each pass; we check it worked by timing a re-read):

* raw: plain sequential `read()` of every shard file (16 MiB chunks) - the disk's own speed;
* Grain/ArrayRecord: `grain_dataset(root, seed, shuffle=True)` (global shuffle, random access,
  records decoded) through `to_iter_dataset` with reader threads, and a sequential pass;
* Parquet: `ShardSet.records("parquet")` (pyarrow row groups -> Record), sequential;

each as records/s and MB/s of file bytes, and as a ratio of the raw speed (goal >= 0.7). Also:
codec encode frames/s on the paper clip size, and bytes per video per task in both formats.

    python benchmarks/shards_read.py                      # 6 videos (~600 MB of shards in /tmp)
    python benchmarks/shards_read.py --videos 12 --dir /data/bench
    python benchmarks/shards_read.py --e2e-render OUT     # also time `preprocess` on rendered videos

Printed, and merged into benchmarks/results/shards_read.json under a key naming the clip size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from thfm_synth.preprocess.targets import DENSE_TASKS, TASKS  # noqa: E402
from thfm_synth.shards.record import Record  # noqa: E402
from thfm_synth.shards.store import ShardSet, build_index, write_shard  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "shards_read.json"


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the page cache (clean pages; no root needed)."""
    os.sync()
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def raw_read(paths: list[Path], chunk: int = 16 << 20) -> tuple[float, int]:
    t = time.perf_counter()
    n = 0
    buf = bytearray(chunk)
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while k := fh.readinto(buf):
                n += k
    return time.perf_counter() - t, n


def make_records(num_videos: int, frames: int, height: int, width: int, codec, seed: int = 0):
    """Paper-sized records with real codec latents; yields (video index, records, encode seconds, frames)."""
    from model.vae.codec import smooth_test_video

    rng = np.random.default_rng(seed)
    t = frames
    for v in range(num_videos):
        base = smooth_test_video(frames, height, width, seed=seed * 1000 + v)  # (1, 3, T, H, W)
        # the targets: cheap variations of the same smooth content (sign, colour order, flips, shifts)
        clips = [base, -base, base[:, ::-1], base[..., ::-1], base[..., ::-1, :], np.roll(base, width // 3, -1)]
        t0 = time.perf_counter()
        lat = [np.asarray(codec.encode(np.ascontiguousarray(c))[0])[0].astype(np.float16) for c in clips]
        enc_s = time.perf_counter() - t0
        kp = {
            "keypoints_2d": rng.random((t, 24, 2), dtype=np.float32),
            "keypoints_3d": rng.standard_normal((t, 24, 3)).astype(np.float32),
            "keypoints_visibility": rng.integers(0, 4, (t, 24)).astype(np.uint8),
            "camera_k": np.repeat(np.eye(3, dtype=np.float32)[None], t, 0),
            "camera_rt": rng.standard_normal((t, 3, 4)).astype(np.float32),
        }
        sums = json.dumps({f"rgb/{i:05d}.png": "%064x" % rng.integers(1 << 62) for i in range(t)}, sort_keys=True)
        recs = []
        for task in TASKS:
            target = (
                lat[1 + DENSE_TASKS.index(task) % (len(lat) - 1)] if task in DENSE_TASKS else np.zeros((0,), np.float16)
            )
            recs.append(
                Record(
                    video_id=f"v{v:06d}",
                    task=task,
                    prompt_id=task,
                    vae_id=codec.vae_id,
                    source_checksums=sums,
                    arrays={"rgb_latents": lat[0], "target_latents": target, **kp},
                )
            )
        yield v, recs, enc_s, len(clips) * frames


def bytes_per_task(root: Path) -> dict:
    """Mean bytes per record (= per video, one record per video and task) in each format, per task."""
    import pyarrow.parquet as pq
    from array_record.python.array_record_module import ArrayRecordReader

    out: dict[str, dict[str, list[int]]] = {t: {"parquet": [], "array_record_payload": []} for t in TASKS}
    s = ShardSet.open(root)
    for shard in s.index["shards"]:
        md = pq.ParquetFile(root / shard["files"]["parquet"]["path"]).metadata
        meta = json.loads((root / f"{shard['name']}.json").read_text())
        reader = ArrayRecordReader(str(root / shard["files"]["array_record"]["path"]))
        for i, (_, task) in enumerate(meta["records"]):
            out[task]["parquet"].append(md.row_group(i).total_byte_size)
            out[task]["array_record_payload"].append(len(reader.read([i])[0]))
        reader.close()
    return {t: {k: int(np.mean(v)) for k, v in d.items()} for t, d in out.items()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--videos-per-shard", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4, help="Grain reader threads")
    ap.add_argument("--dir", type=Path, default=None, help="where to build the shard set (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the shard set")
    ap.add_argument("--vae-weights", default=None, help="encode with the WAN VAE instead of the DCT codec")
    ap.add_argument(
        "--e2e-render",
        type=Path,
        default=None,
        help="a render output to preprocess end to end (its videos need >= --frames frames)",
    )
    ap.add_argument("--e2e-workers", type=int, default=2)
    args = ap.parse_args(argv)

    import grain

    from model.vae import make_codec
    from thfm_synth.shards.grain_source import grain_dataset

    codec = make_codec(args.vae_weights)
    base = args.dir or Path(tempfile.mkdtemp(prefix="thfm-shards-bench-"))
    root = base / "set"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    result: dict = {
        "clip": [args.frames, args.height, args.width],
        "videos": args.videos,
        "vae_id": codec.vae_id,
        "tasks": list(TASKS),
        "latent_dtype": "float16",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "dir": str(base),
        "load_average_start": os.getloadavg(),
    }
    # warm-up encode (compile), then build the shard set
    from model.vae.codec import smooth_test_video

    t = time.perf_counter()
    np.asarray(codec.encode(smooth_test_video(args.frames, args.height, args.width))[0])
    result["codec_first_call_s"] = time.perf_counter() - t
    enc_s = enc_frames = 0.0
    write_s = 0.0
    batch: list[Record] = []
    shard = 0
    for v, recs, es, nf in make_records(args.videos, args.frames, args.height, args.width, codec):
        enc_s += es
        enc_frames += nf
        batch += recs
        if (v + 1) % args.videos_per_shard == 0 or v == args.videos - 1:
            t = time.perf_counter()
            write_shard(root, f"shard-{shard:05d}", batch)
            write_s += time.perf_counter() - t
            batch, shard = [], shard + 1
    build_index(root)
    s = ShardSet.open(root)
    n_rec = s.index["num_records"]
    ar_paths, pq_paths = s.paths("array_record"), s.paths("parquet")
    ar_bytes, pq_bytes = sum(p.stat().st_size for p in ar_paths), sum(p.stat().st_size for p in pq_paths)
    result.update(
        codec_encode_frames_per_s=enc_frames / enc_s,
        codec_encode_s_per_video=enc_s / args.videos,
        shard_write_mb_per_s=(ar_bytes + pq_bytes) / 1e6 / write_s,
        records=n_rec,
        array_record_bytes=ar_bytes,
        parquet_bytes=pq_bytes,
        bytes_per_video={"array_record": ar_bytes / args.videos, "parquet": pq_bytes / args.videos},
        bytes_per_video_per_task=bytes_per_task(root),
    )

    def measure(name: str, paths: list[Path], nbytes: int, fn) -> dict:
        evict(paths)
        t = time.perf_counter()
        count = fn()
        dt = time.perf_counter() - t
        return {"seconds": dt, "records": count, "records_per_s": count / dt, "mb_per_s": nbytes / 1e6 / dt}

    # raw sequential reads (cold), and a warm re-read to show the eviction works
    evict(ar_paths + pq_paths)
    cold_s, n = raw_read(ar_paths + pq_paths)
    warm_s, _ = raw_read(ar_paths + pq_paths)
    raw_ar = measure("raw", ar_paths, ar_bytes, lambda: raw_read(ar_paths)[1] and n_rec)
    raw_pq = measure("raw", pq_paths, pq_bytes, lambda: raw_read(pq_paths)[1] and n_rec)
    result["raw"] = {
        "cold_mb_per_s": n / 1e6 / cold_s,
        "warm_mb_per_s": n / 1e6 / warm_s,
        "array_record_files_mb_per_s": raw_ar["mb_per_s"],
        "parquet_files_mb_per_s": raw_pq["mb_per_s"],
        # eviction is verified by timing: a cold pass must be clearly slower than the warm re-read
        "cold_cache_verified": bool(warm_s < 0.67 * cold_s),
    }

    def grain_shuffled() -> int:
        ds = grain_dataset(root, seed=0, shuffle=True).to_iter_dataset(
            grain.ReadOptions(num_threads=args.threads, prefetch_buffer_size=2 * args.threads)
        )
        return sum(1 for rec in ds if rec.arrays["rgb_latents"].size)

    def grain_sequential() -> int:
        ds = grain_dataset(root, seed=0, shuffle=False).to_iter_dataset(
            grain.ReadOptions(num_threads=args.threads, prefetch_buffer_size=2 * args.threads)
        )
        return sum(1 for rec in ds if rec.arrays["rgb_latents"].size)

    def parquet_records() -> int:
        return sum(1 for rec in s.records("parquet") if rec.arrays["rgb_latents"].size)

    def array_record_sequential() -> int:
        return sum(1 for rec in s.records("array_record") if rec.arrays["rgb_latents"].size)

    runs = {
        "grain_array_record_global_shuffle": (ar_paths, ar_bytes, grain_shuffled, raw_ar),
        "grain_array_record_sequential": (ar_paths, ar_bytes, grain_sequential, raw_ar),
        "array_record_reader_sequential_1_thread": (ar_paths, ar_bytes, array_record_sequential, raw_ar),
        "parquet_pyarrow_sequential": (pq_paths, pq_bytes, parquet_records, raw_pq),
    }
    for name, (paths, nbytes, fn, raw) in runs.items():
        r = measure(name, paths, nbytes, fn)
        assert r["records"] == n_rec, (name, r["records"], n_rec)
        r["ratio_to_raw"] = r["mb_per_s"] / raw["mb_per_s"]
        result[name] = r

    if args.e2e_render:
        from thfm_synth.preprocess.pipeline import preprocess

        out = base / "e2e"
        shutil.rmtree(out, ignore_errors=True)
        summ = preprocess(
            args.e2e_render,
            out,
            num_frames=args.frames,
            width=args.width,
            height=args.height,
            workers=args.e2e_workers,
            vae_weights=args.vae_weights,
            progress=False,
        )
        result["e2e_preprocess"] = {
            "videos": summ.videos_processed,
            "seconds": summ.seconds,
            "videos_per_s": summ.videos_per_second,
            "workers": args.e2e_workers,
            "bytes": summ.bytes,
            "render_dir": str(args.e2e_render),
            "estimated_bytes_per_video": summ.estimated_bytes_per_video,
        }
    if not args.keep and args.dir is None:
        shutil.rmtree(base, ignore_errors=True)

    result["load_average_end"] = os.getloadavg()
    key = f"{args.frames}x{args.height}x{args.width}_{args.videos}videos_{codec.vae_id.split(':')[0]}"
    old = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"benchmark": "shards_read", "runs": {}}
    old["runs"][key] = result
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    report(result)
    return result


def report(r: dict) -> None:
    mb = 1e6
    print(
        f"shard set: {r['videos']} videos x {len(r['tasks'])} tasks = {r['records']} records, clip "
        f"{'x'.join(map(str, r['clip']))}, codec {r['vae_id']}"
    )
    print(
        f"codec encode: {r['codec_encode_frames_per_s']:,.0f} frames/s ({r['codec_encode_s_per_video']:.2f} s per "
        f"video for RGB + 5 targets); shard writing {r['shard_write_mb_per_s']:,.0f} MB/s (both formats)"
    )
    print(
        f"bytes per video: ArrayRecord {r['bytes_per_video']['array_record'] / mb:.1f} MB, Parquet "
        f"{r['bytes_per_video']['parquet'] / mb:.1f} MB; per task (Parquet / ArrayRecord payload, MB):"
    )
    for t, d in r["bytes_per_video_per_task"].items():
        print(f"  {t:<13} {d['parquet'] / mb:6.2f} / {d['array_record_payload'] / mb:6.2f}")
    raw = r["raw"]
    print(
        f"raw sequential read: {raw['cold_mb_per_s']:,.0f} MB/s cold (re-read warm: {raw['warm_mb_per_s']:,.0f} "
        f"MB/s; cold cache verified by timing: {raw['cold_cache_verified']})"
    )
    print(f"load average at start / end: {r['load_average_start']} / {r['load_average_end']}")
    for name in (
        "grain_array_record_global_shuffle",
        "grain_array_record_sequential",
        "array_record_reader_sequential_1_thread",
        "parquet_pyarrow_sequential",
    ):
        x = r[name]
        print(
            f"{name:<42} {x['records_per_s']:8.1f} records/s {x['mb_per_s']:8.0f} MB/s  {x['ratio_to_raw']:.2f} x raw"
        )
    if "e2e_preprocess" in r:
        e = r["e2e_preprocess"]
        print(
            f"preprocess end to end: {e['videos']} videos in {e['seconds']:.1f} s = {e['videos_per_s']:.3f} "
            f"videos/s with {e['workers']} workers"
        )


if __name__ == "__main__":
    main()
