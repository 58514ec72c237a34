"""Shard read throughput vs raw sequential reads of the same files, codec encode speed, bytes per video.

Builds a shard set of paper-sized records (81 frames at 832x480 -> latents (16, 21, 60, 104), float16,
7 tasks per video) whose latents are real codec output (the DCT codec, or the WAN VAE with
--vae-weights) of smooth synthetic clips, then measures every reader with a cold page cache. Each
pass: evict the files (posix_fadvise(DONTNEED)), time a raw sequential read of the same bytes (the
baseline, itself cold), re-read them warm (the eviction is verified when the cold read was clearly
slower), evict again, time the reader. Readers, passes interleaved (`--repeats` each):

* ArrayRecord sequential, verified and unverified: `ShardSet.records("array_record")`;
* Grain/ArrayRecord: `grain_dataset(root, seed, shuffle=...)` through `to_iter_dataset` with reader
  threads, sequential and with the global shuffle (random access), records decoded and verified;
* Parquet: `ShardSet.records("parquet")` (pyarrow row groups -> Record), sequential, verified;

each as records/s, MB/s of file bytes, CPU s per GB and the ratio to the raw read (goal >= 0.7; the
median over verified passes). Also:
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
READERS = (
    "array_record_sequential_verified",
    "array_record_sequential_unverified",
    "grain_array_record_sequential",
    "grain_array_record_global_shuffle",
    "parquet_pyarrow_sequential",
)


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
    ap.add_argument("--repeats", type=int, default=3, help="cold passes per reader (the median is reported)")
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

    def cpu() -> float:
        t = os.times()
        return t.user + t.system

    def one_pass(paths: list[Path], nbytes: int, fn) -> dict:
        """Evict, time a raw read of the same bytes (the cold baseline), check the eviction worked by
        timing a warm re-read, evict again, time the reader."""
        evict(paths)
        raw_s, _ = raw_read(paths)
        warm_s, _ = raw_read(paths)
        evict(paths)
        t, c = time.perf_counter(), cpu()
        count = fn()
        dt, cpu_s = time.perf_counter() - t, cpu() - c
        return {
            "seconds": dt,
            "records": count,
            "records_per_s": count / dt,
            "mb_per_s": nbytes / 1e6 / dt,
            "cpu_s_per_gb": cpu_s / (nbytes / 1e9),
            "raw_cold_mb_per_s": nbytes / 1e6 / raw_s,
            "raw_warm_mb_per_s": nbytes / 1e6 / warm_s,
            # the page cache really was dropped: the cold raw read is clearly slower than the warm one
            "cold_cache_verified": bool(warm_s < 0.67 * raw_s),
            "ratio_to_raw": raw_s / dt,
            "load_average": os.getloadavg()[0],
        }

    def grain_pass(shuffle: bool):
        def run() -> int:
            ds = grain_dataset(root, seed=0, shuffle=shuffle).to_iter_dataset(
                grain.ReadOptions(num_threads=args.threads, prefetch_buffer_size=2 * args.threads)
            )
            return sum(1 for rec in ds if rec.arrays["rgb_latents"].size)

        return run

    def records_pass(fmt: str, verify: bool):
        return lambda: sum(1 for rec in s.records(fmt, verify=verify) if rec.arrays["rgb_latents"].size)

    runs = {
        "array_record_sequential_verified": (ar_paths, ar_bytes, records_pass("array_record", True)),
        "array_record_sequential_unverified": (ar_paths, ar_bytes, records_pass("array_record", False)),
        "grain_array_record_sequential": (ar_paths, ar_bytes, grain_pass(False)),
        "grain_array_record_global_shuffle": (ar_paths, ar_bytes, grain_pass(True)),
        "parquet_pyarrow_sequential": (pq_paths, pq_bytes, records_pass("parquet", True)),
    }
    passes: dict[str, list[dict]] = {name: [] for name in runs}
    for _ in range(args.repeats):  # interleaved, so a burst of load from elsewhere hits every reader alike
        for name, (paths, nbytes, fn) in runs.items():
            r = one_pass(paths, nbytes, fn)
            assert r["records"] == n_rec, (name, r["records"], n_rec)
            passes[name].append(r)
    for name, rs in passes.items():
        ok = [r for r in rs if r["cold_cache_verified"]]
        result[name] = {
            "passes": rs,
            "verified_passes": len(ok),
            # the figure: the median over the passes whose cold cache was verified (all passes if none was)
            "ratio_to_raw": float(np.median([r["ratio_to_raw"] for r in ok or rs])),
            "ratio_to_raw_all_passes": float(np.median([r["ratio_to_raw"] for r in rs])),
            "mb_per_s": float(np.median([r["mb_per_s"] for r in ok or rs])),
            "records_per_s": float(np.median([r["records_per_s"] for r in ok or rs])),
            "cpu_s_per_gb": float(np.median([r["cpu_s_per_gb"] for r in rs])),
            "raw_cold_mb_per_s": float(np.median([r["raw_cold_mb_per_s"] for r in ok or rs])),
        }
    result["raw"] = {
        "cold_mb_per_s": float(np.median([r["raw_cold_mb_per_s"] for rs in passes.values() for r in rs])),
        "warm_mb_per_s": float(np.median([r["raw_warm_mb_per_s"] for rs in passes.values() for r in rs])),
        "cold_cache_verified_passes": sum(r["cold_cache_verified"] for rs in passes.values() for r in rs),
        "passes": sum(len(rs) for rs in passes.values()),
    }

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
        f"raw sequential read: {raw['cold_mb_per_s']:,.0f} MB/s cold, {raw['warm_mb_per_s']:,.0f} MB/s warm "
        f"(medians); cold cache verified by timing in {raw['cold_cache_verified_passes']} of {raw['passes']} passes"
    )
    print(f"load average at start / end: {r['load_average_start']} / {r['load_average_end']}")
    print("readers, cold, each pass against a cold raw read of the same bytes just before it (goal >= 0.7x):")
    for name in READERS:
        x = r[name]
        print(
            f"  {name:<36} {x['records_per_s']:7.1f} records/s {x['mb_per_s']:7.0f} MB/s  {x['ratio_to_raw']:.2f}x raw "
            f"(verified passes {x['verified_passes']}/{len(x['passes'])}; all passes "
            f"{x['ratio_to_raw_all_passes']:.2f}x)  {x['cpu_s_per_gb']:.2f} CPU s/GB"
        )
    if "e2e_preprocess" in r:
        e = r["e2e_preprocess"]
        print(
            f"preprocess end to end: {e['videos']} videos in {e['seconds']:.1f} s = {e['videos_per_s']:.3f} "
            f"videos/s with {e['workers']} workers"
        )


if __name__ == "__main__":
    main()
