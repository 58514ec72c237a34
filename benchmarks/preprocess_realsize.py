"""The real-size preprocessing path: one 81x480x832 clip through `video_records` with the full-size
WAN 2.1 VAE (random weights unless --weights: timing does not depend on weight values), on CPU.

What is measured, per variant, each in its own child process (so peak RSS is that variant's):

- ``wan21``: the full WAN 2.1 VAE architecture encoding the RGB clip and the 7 dense targets
  (8 encodes), plus reading, resizing, targets and the compressed pixel ground truth;
- ``dct``: the same preprocessing with the parameter-free DCT codec - the baseline, measured in the
  same run: the ratio wan21 / dct is the cost of the real VAE, the rest is identical work;
- ``dct_stage1``: the baseline without pixel targets (the stage-1-only path's cost);
- ``wan21_encode1``: the full-size VAE encoding the RGB clip once (a video needs 8 encodes: the
  projection is printed) - for machines where the whole ``wan21`` variant takes hours.

Input: a synthetic rendered video folder in the render format (render/outputs.py: RGB PNG, float
EXR depth/normals, 16-bit mask, IUV/canonical EXR, annotations.npz, metadata.json) - a sky, a
ground plane and an ellipsoidal "person" with parts, UVs and canonical coordinates - written once
per run into a temporary folder (rendering 81 real frames at 832x480 costs ~10 min of Blender here).

    python benchmarks/preprocess_realsize.py                          # 81x480x832, all three variants
    python benchmarks/preprocess_realsize.py --frames 9 --height 64 --width 96 --variants dct wan21   # quick

Prints seconds, peak RSS and the ratios, the load average (the machine may be shared), and merges
the result into benchmarks/results/preprocess_realsize.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402


def write_video(folder: Path, frames: int, height: int, width: int, seed: int = 0) -> Path:
    """A synthetic rendered video folder (see the module doc)."""
    from thfm_synth.render import outputs
    from thfm_synth.render.video.annotations import write_annotations

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    f = 1.1 * width
    k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    rays = np.stack([(xx - k[0, 2]) / f, (yy - k[1, 2]) / f, np.ones_like(xx)], -1)
    cam_h = 1.4  # camera 1.4 m above a ground plane (y down): ground where the ray goes down
    for t in range(frames):
        cx = 0.3 * np.sin(t / 10.0)
        ground_t = np.where(rays[..., 1] > 1e-3, cam_h / np.maximum(rays[..., 1], 1e-3), np.inf)
        depth = np.where(np.isfinite(ground_t) & (ground_t < 60), ground_t, 0.0)  # sky: 0
        normal = np.where((depth > 0)[..., None], np.array([0.0, -1.0, 0.0]), 0.0)
        # the person: an ellipsoid 3 m ahead, 1.7 m tall, standing on the ground
        centre = np.array([cx, cam_h - 0.85, 3.0])
        radii = np.array([0.25, 0.85, 0.18])
        o = -centre / radii
        d = rays / radii
        a, b, c = (d * d).sum(-1), 2 * (o * d).sum(-1), (o * o).sum() - 1
        disc = b * b - 4 * a * c
        hit = disc > 0
        s = np.where(hit, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
        person = hit & (s > 0) & ((depth == 0) | (s < depth))
        p = rays * np.where(person, s, 0.0)[..., None]
        n = (p - centre) / radii**2
        n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12
        depth = np.where(person, s, depth).astype(np.float32)
        normal = np.where(person[..., None], n, normal).astype(np.float32)
        local = np.clip((p - centre) / radii * 0.5 + 0.5, 0, 1)
        part = np.where(
            person,
            1 + np.clip((local[..., 1] * 6).astype(int), 0, 5) * 4 + (local[..., 0] > 0.5) * 2 + (local[..., 2] > 0.5),
            0,
        ).astype(np.uint8)
        sky = np.array([0.55, 0.7, 0.95])
        ground = (0.35 + 0.1 * np.sin(xx / 13.0 + t))[..., None] * np.array([1, 0.9, 0.7])
        shade = 0.3 + 0.6 * np.clip(-normal[..., 2:3], 0, 1)
        img = np.where(
            person[..., None], shade * np.array([0.8, 0.6, 0.5]), np.where((depth > 0)[..., None], ground, sky)
        )
        img = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
        fr = outputs.Frame(
            rgb=(img * 255 + 0.5).astype(np.uint8),
            depth=depth,
            normal=normal,
            mask=person.astype(np.float32),
            part=part,
            part_uv=np.where(person[..., None], local[..., :2], 0).astype(np.float32),
            canonical=np.where(person[..., None], local, 0).astype(np.float32),
            instance=person.astype(np.uint16) * 2,
        )
        outputs.write_frame(folder, t, fr)
    n_kp = 24
    joints = np.zeros((frames, n_kp, 3)) + np.array([0, 0.5, 3.0])
    joints[..., 1] += np.linspace(-0.8, 0.8, n_kp)
    uv = joints[..., :2] / joints[..., 2:] * f + k[:2, 2]
    write_annotations(
        folder / "annotations.npz",
        {
            "K": np.repeat(k[None], frames, 0),
            "R": np.repeat(np.eye(3)[None], frames, 0),
            "t": np.zeros((frames, 3)),
            "joints3d_cam_smpl24": joints,
            "joints2d_smpl24": uv,
            "visibility_smpl24": np.zeros((frames, n_kp), np.uint8),
            "joints3d_world_smpl24": joints,
            "bbox": np.zeros((frames, 4), np.float32),
        },
    )
    (folder / "metadata.json").write_text(
        json.dumps(
            {
                "spec": {"video_id": "bench", "num_frames": frames, "fps": 24.0, "width": width, "height": height},
                "stats": {"frames": frames},
            }
        )
    )
    return folder


def run_encode_once(video: Path, frames: int, height: int, width: int, weights: str | None) -> dict:
    """The full-size VAE on the clip's RGB alone: load + resize + one encode (of the 8 a video needs)."""
    import jax
    from flax import nnx

    from model.vae import WAN21_VAE_CONFIG
    from model.vae.loading import load_wan_vae
    from model.vae.wan_vae import WanVAE
    from thfm_synth.preprocess.video import PreprocessConfig, encode, load_clip

    t0 = time.perf_counter()
    codec = load_wan_vae(weights) if weights else WanVAE(WAN21_VAE_CONFIG, rngs=nnx.Rngs(0))
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    clip = load_clip(video, PreprocessConfig(num_frames=frames, fps=24, width=width, height=height))
    rgb = clip.rgb()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lat = encode(codec, rgb, "float16")
    jax.block_until_ready(jax.numpy.zeros(()))
    return {
        "variant": "wan21_encode1",
        "seconds": time.perf_counter() - t0,
        "load_rgb_s": load_s,
        "codec_init_s": init_s,
        "vae_id": codec.vae_id,
        "records": 0,
        "record_bytes": int(lat.nbytes),
        "pixel_truth_bytes": 0,
        "latent_shape": list(lat.shape),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def run_variant(variant: str, video: Path, frames: int, height: int, width: int, weights: str | None) -> dict:
    import jax

    from thfm_synth.preprocess.video import PreprocessConfig, video_records

    if variant == "wan21_encode1":
        return run_encode_once(video, frames, height, width, weights)

    cfg = PreprocessConfig(num_frames=frames, fps=24, width=width, height=height, pixel_targets=variant != "dct_stage1")
    t0 = time.perf_counter()
    if variant == "wan21":
        from flax import nnx

        from model.vae import WAN21_VAE_CONFIG
        from model.vae.loading import load_wan_vae
        from model.vae.wan_vae import WanVAE

        codec = load_wan_vae(weights) if weights else WanVAE(WAN21_VAE_CONFIG, rngs=nnx.Rngs(0))
    else:
        from model.vae import DCTCodec

        codec = DCTCodec()
    init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recs = video_records(video, cfg, codec)
    jax.block_until_ready(jax.numpy.zeros(()))
    seconds = time.perf_counter() - t0
    nbytes = sum(int(np.asarray(a).nbytes) for r in recs for a in r.arrays.values())
    pixel_bytes = sum(int(np.asarray(r.arrays[n]).nbytes) for r in recs for n in ("target_pixels", "pixel_valid"))
    return {
        "variant": variant,
        "seconds": seconds,
        "codec_init_s": init_s,
        "records": len(recs),
        "record_bytes": nbytes,
        "pixel_truth_bytes": pixel_bytes,
        "vae_id": codec.vae_id,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "latent_shape": list(recs[0].arrays["rgb_latents"].shape),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["dct_stage1", "dct", "wan21"],
        choices=["dct_stage1", "dct", "wan21", "wan21_encode1"],
    )
    ap.add_argument("--weights", default=None, help="WAN 2.1 VAE weights (default: random, timing only)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--video", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "preprocess_realsize.json"))
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(run_variant(args.child, Path(args.video), args.frames, args.height, args.width, args.weights)))
        return {}
    with tempfile.TemporaryDirectory(prefix="thfm-realsize-") as tmp:
        t0 = time.perf_counter()
        video = write_video(Path(tmp) / "video", args.frames, args.height, args.width)
        write_s = time.perf_counter() - t0
        results = {}
        for v in args.variants:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                v,
                "--video",
                str(video),
                "--frames",
                str(args.frames),
                "--height",
                str(args.height),
                "--width",
                str(args.width),
            ]
            if args.weights:
                cmd += ["--weights", args.weights]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"variant {v} failed:\n{proc.stderr[-3000:]}")
            results[v] = json.loads(proc.stdout.strip().splitlines()[-1])
            r = results[v]
            print(
                f"{v:>10}: {r['seconds']:8.1f} s, peak RSS {r['peak_rss_mb']:8.0f} MB, records "
                f"{r['record_bytes'] / 1e6:7.1f} MB (pixel truth {r['pixel_truth_bytes'] / 1e6:.1f} MB), "
                f"codec {r['vae_id'][:40]}",
                flush=True,
            )
    load = os.getloadavg()
    out = {
        "clip": [args.frames, args.height, args.width],
        "variants": results,
        "write_input_s": write_s,
        "loadavg": list(load),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "weights": args.weights or "random (timing only)",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if "wan21" in results and "dct" in results:
        out["wan21_vs_dct_time_ratio"] = results["wan21"]["seconds"] / results["dct"]["seconds"]
        out["wan21_vs_dct_rss_ratio"] = results["wan21"]["peak_rss_mb"] / results["dct"]["peak_rss_mb"]
        print(
            f"full-size WAN 2.1 VAE / DCT codec: {out['wan21_vs_dct_time_ratio']:.1f}x the time, "
            f"{out['wan21_vs_dct_rss_ratio']:.1f}x the peak RSS"
        )
    if "wan21_encode1" in results and "dct" in results:
        e = results["wan21_encode1"]
        dense = 7  # the RGB clip and the 7 dense targets: 8 encodes per video
        out["wan21_projected_video_s"] = results["dct"]["seconds"] + (1 + dense) * e["seconds"]
        out["wan21_encode1_vs_dct_video_time_ratio"] = e["seconds"] / results["dct"]["seconds"]
        print(
            f"one full-size WAN 2.1 VAE encode: {e['seconds']:.1f} s ({out['wan21_encode1_vs_dct_video_time_ratio']:.1f}"
            f"x the DCT codec's whole video), peak RSS {e['peak_rss_mb']:.0f} MB; projected video with 8 encodes: "
            f"{out['wan21_projected_video_s']:.0f} s"
        )
    if "dct" in results and "dct_stage1" in results:
        out["pixel_truth_time_ratio"] = results["dct"]["seconds"] / results["dct_stage1"]["seconds"]
        print(
            f"with pixel truth / stage-1-only (DCT codec): {out['pixel_truth_time_ratio']:.2f}x the time, "
            f"{results['dct']['record_bytes'] / max(results['dct_stage1']['record_bytes'], 1):.2f}x the bytes"
        )
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    from bench_io import merge_result

    merge_result(Path(args.out), f"{args.frames}x{args.height}x{args.width}_cpu", out)
    return out


if __name__ == "__main__":
    main()
