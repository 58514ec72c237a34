"""Video-encode throughput of the WAN 2.1 VAE (flax nnx port) and the default DCT codec.

Frames/s of ``encode`` (after a warm-up call that compiles; compile time is reported separately),
with baselines measured in the same run on the same clip: a plain memory copy of the clip and the
parameter-free DCT codec, so the ratios are comparable across machines. Also records the DCT
codec's round-trip PSNR on a smooth clip of the same size.

    python benchmarks/vae_encode.py                                   # tiny config, CPU-sized clip
    python benchmarks/vae_encode.py --config wan21 --frames 81 --height 480 --width 832   # GPU
    python benchmarks/vae_encode.py --config wan21 --weights /path/Wan2.1_VAE.pth ...

Without ``--weights`` the VAE has random weights, which is fine for timing (the numbers do not
depend on weight values) and is recorded as such. Results are printed and merged into
benchmarks/results/vae_encode.json under a key naming config, clip, device and dtype.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from model.vae.codec import DCTCodec, psnr, smooth_test_video  # noqa: E402
from model.vae.config import TINY_VAE_CONFIG, WAN21_VAE_CONFIG, check_num_frames  # noqa: E402

CONFIGS = {"tiny": TINY_VAE_CONFIG, "wan21": WAN21_VAE_CONFIG}


def _time(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=96)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--conv-impl",
        choices=("auto", "conv3d", "sum2d"),
        default="auto",
        help="causal conv implementation (auto: sum2d on CPU, conv3d on GPU/TPU)",
    )
    ap.add_argument("--weights", default=None, help="optional WAN 2.1 VAE weights (else random: timing only)")
    ap.add_argument(
        "--diffusers",
        action="store_true",
        help="also time diffusers' AutoencoderKLWan (torch, CPU) on the same clip and config",
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "vae_encode.json"))
    args = ap.parse_args(argv)
    check_num_frames(args.frames, who="--frames")

    from flax import nnx

    from model.vae.layers import resolve_conv_impl
    from model.vae.loading import load_wan_vae
    from model.vae.wan_vae import WanVAE, count_params

    dtype = jnp.dtype(args.dtype)
    cfg = CONFIGS[args.config]
    dev = jax.devices()[0]
    shape = (args.batch, 3, args.frames, args.height, args.width)
    frames = args.batch * args.frames
    video_np = smooth_test_video(args.frames, args.height, args.width, batch=args.batch)
    video = jax.device_put(jnp.asarray(video_np))

    # baseline 1: a plain copy of the clip (host memory)
    copy_s = min(_time(lambda: np.copy(video_np), max(args.repeats, 5)))

    # baseline 2: the DCT codec (on the default device)
    codec = DCTCodec()
    t = time.perf_counter()
    mean_c, _ = codec.encode(video)
    jax.block_until_ready(mean_c)
    codec_compile_s = time.perf_counter() - t
    codec_s = min(_time(lambda: codec.encode(video)[0], args.repeats))
    codec_psnr = psnr(video_np, np.asarray(codec.decode(mean_c)))

    # the VAE
    t = time.perf_counter()
    if args.weights:
        vae = load_wan_vae(args.weights, cfg if args.config != "wan21" else None)
    else:
        vae = WanVAE(cfg, rngs=nnx.Rngs(0))
    init_s = time.perf_counter() - t
    t = time.perf_counter()
    conv_impl = resolve_conv_impl(args.conv_impl)
    mean_v, _ = vae.encode(video, dtype=dtype, conv_impl=conv_impl)
    jax.block_until_ready(mean_v)
    first_s = time.perf_counter() - t
    vae_s = min(_time(lambda: vae.encode(video, dtype=dtype, conv_impl=conv_impl)[0], args.repeats))
    assert mean_v.shape == mean_c.shape, (mean_v.shape, mean_c.shape)

    torch_s = None
    if args.diffusers:
        import torch
        from diffusers import AutoencoderKLWan

        ref = AutoencoderKLWan(**cfg.to_dict()).eval()
        xt = torch.from_numpy(video_np)
        with torch.no_grad():
            ref.encode(xt)  # warm-up
            torch_s = min(_time(lambda: ref.encode(xt).latent_dist.mean.numpy(), args.repeats))

    result = {
        "config": args.config,
        "clip": list(shape),
        "latents": list(mean_v.shape),
        "dtype": args.dtype,
        "conv_impl": conv_impl,
        "device": f"{dev.platform}:{getattr(dev, 'device_kind', '?')}",
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "weights": vae.vae_id,
        "vae_params": count_params(vae),
        "memcpy_frames_per_s": frames / copy_s,
        "codec_frames_per_s": frames / codec_s,
        "codec_compile_s": codec_compile_s,
        "codec_vae_id": codec.vae_id,
        "codec_roundtrip_psnr_db_smooth_clip": codec_psnr,
        "vae_init_s": init_s,
        "vae_first_call_s_incl_compile": first_s,
        "vae_encode_s": vae_s,
        "vae_frames_per_s": frames / vae_s,
        "vae_vs_codec_speed_ratio": codec_s / vae_s,
        "vae_vs_memcpy_speed_ratio": copy_s / vae_s,
        "codec_vs_memcpy_speed_ratio": copy_s / codec_s,
        "diffusers_torch_cpu_frames_per_s": None if torch_s is None else frames / torch_s,
        "vae_vs_diffusers_torch_cpu_speed_ratio": None if torch_s is None else torch_s / vae_s,
        "timing": f"best of {args.repeats} after a warm-up call; frames = batch x clip frames",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    key = f"{args.config}_b{args.batch}x{args.frames}x{args.height}x{args.width}_{dev.platform}_{args.dtype}"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(out.read_text()).get("runs", {}) if out.is_file() else {}
    runs[key] = result
    out.write_text(json.dumps({"benchmark": "vae_encode", "runs": runs}, indent=2, sort_keys=True) + "\n")

    print(
        f"{key}: VAE ({vae.vae_id}) {result['vae_frames_per_s']:.2f} frames/s, "
        f"DCT codec {result['codec_frames_per_s']:.1f} frames/s, memcpy {result['memcpy_frames_per_s']:.0f} frames/s"
    )
    print(
        f"  VAE/codec speed {result['vae_vs_codec_speed_ratio']:.4f}, "
        f"VAE/memcpy {result['vae_vs_memcpy_speed_ratio']:.2e}; "
        f"first call (compile) {first_s:.1f} s; codec PSNR on a smooth clip {codec_psnr:.1f} dB -> {out}"
    )
    if torch_s is not None:
        print(
            f"  diffusers (torch {torch.__version__}, CPU) {frames / torch_s:.2f} frames/s: "
            f"this port is {torch_s / vae_s:.2f}x its speed"
        )
    return result


if __name__ == "__main__":
    main()
