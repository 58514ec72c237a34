"""Step time, tokens/s and MFU of the JAX WAN DiT (model.wan) forward and forward+backward.

MFU = counted model FLOPs / step time / peak FLOP/s, where the FLOPs come from the analytic
counter ``model.wan.dit_flops`` (matmuls + attention; forward+backward = 3x forward; remat
recomputation is not counted) and the peak is MEASURED in the same run with a large jnp matmul of
the compute dtype on the same device (so the ratio is "fraction of achievable matmul throughput",
not of a datasheet number).

Video sizes are given in pixels like WAN (``--frames 81 --height 480 --width 832``) and mapped to
latents with the WAN 2.1 VAE factors: T_lat = (frames - 1) / 4 + 1, H_lat = height / 8, W_lat = width / 8.

    python benchmarks/model_dit.py                                  # small CPU config, fp32
    python benchmarks/model_dit.py --config wan21_1_3b --frames 81 --height 480 --width 832 --dtype bfloat16

Results are printed and merged into benchmarks/results/model_dit.json (one entry per
config/shape/dtype/device). Out-of-memory is reported as such (status "oom", exit code 3).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from model.wan import CONFIGS, WanTransformer3D, dit_flops, num_params  # noqa: E402

# A CPU-sized config whose matmuls are big enough for MFU to mean something (~5M params).
SMALL = CONFIGS["tiny"].replace(
    num_attention_heads=4,
    attention_head_dim=64,
    ffn_dim=1024,
    num_layers=4,
    in_channels=16,
    out_channels=16,
    text_dim=256,
    freq_dim=256,
    rope_max_seq_len=1024,
)
ALL_CONFIGS = {**CONFIGS, "small": SMALL}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
RESULTS = REPO / "benchmarks" / "results" / "model_dit.json"


def is_oom(e: BaseException) -> bool:
    s = f"{type(e).__name__}: {e}"
    return any(m in s for m in ("RESOURCE_EXHAUSTED", "Out of memory", "out of memory", "OOM", "Allocator"))


def timed(fn, *args, steps: int, warmup: int):
    """AOT-compile, warm up, then time `steps` calls; returns (compile_s, first_call_s, [step seconds])."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    first_s = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t0)
    return compile_s, first_s, times


def measure_peak(dtype, sizes: list[int], reps: int = 7) -> float:
    """Best achieved FLOP/s of square matmuls in `dtype` (the trainer's own measurement, model/train/perf.py)."""
    from model.train.perf import measure_peak as trainer_peak

    return trainer_peak(dtype, sizes=sizes, reps=reps)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="small", choices=sorted(ALL_CONFIGS))
    p.add_argument("--frames", type=int, default=9, help="video frames in pixel space (4k+1)")
    p.add_argument("--height", type=int, default=128, help="pixels (multiple of 16)")
    p.add_argument("--width", type=int, default=192, help="pixels (multiple of 16)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--text-len", type=int, default=None, help="text tokens (default 512 for WAN configs, 64 else)")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="compute dtype (params stay fp32)")
    p.add_argument("--mode", default="both", choices=["fwd", "fwd_bwd", "both"])
    p.add_argument(
        "--remat",
        default="auto",
        choices=["auto", "on", "off"],
        help="per-layer rematerialisation for fwd_bwd (auto: on for the real WAN configs)",
    )
    p.add_argument("--no-scan", action="store_true", help="unrolled layers instead of lax.scan")
    p.add_argument(
        "--attention",
        default="auto",
        choices=["auto", "xla", "cudnn", "chunked"],
        help="auto: cudnn on GPU with bf16, else xla; chunked: blocked xla attention (low memory)",
    )
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument(
        "--peak-sizes",
        type=int,
        nargs="+",
        default=None,
        help="square matmul sizes for the peak measurement (default: 256..2048 CPU, 4096/8192 GPU)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)

    cfg = ALL_CONFIGS[a.config]
    dtype = DTYPES[a.dtype]
    wan = a.config.startswith("wan")
    text_len = a.text_len or (512 if wan else 64)
    if (a.frames - 1) % 4 or a.height % 16 or a.width % 16:
        p.error("need frames = 4k+1 and height/width multiples of 16 (VAE 4x/8x, then 1x2x2 patches)")
    lat = ((a.frames - 1) // 4 + 1, a.height // 8, a.width // 8)
    remat = a.remat == "on" or (a.remat == "auto" and wan)
    dev = jax.devices()[0]
    device = f"{dev.platform}:{getattr(dev, 'device_kind', '?')}"
    key = f"{a.config}|{a.batch}x{a.frames}x{a.height}x{a.width}|{a.dtype}|{device}"
    flops = dit_flops(cfg, a.batch, *lat, text_len=text_len)
    tokens = int(flops["tokens"])
    print(
        f"[model_dit] {a.config} on {device} (jax {jax.__version__}), dtype {a.dtype}, latents "
        f"{a.batch}x{cfg.in_channels}x{lat[0]}x{lat[1]}x{lat[2]} -> {tokens} tokens, text {text_len}, "
        f"scan={not a.no_scan}, remat={remat}, attention={a.attention}"
    )

    result: dict = {
        "config": a.config,
        "device": device,
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "dtype": a.dtype,
        "batch": a.batch,
        "video": [a.frames, a.height, a.width],
        "latent": list(lat),
        "tokens": tokens,
        "text_len": text_len,
        "scan_layers": not a.no_scan,
        "remat": remat,
        "attention": a.attention,
        "fwd_flops": flops["total"],
        "flops_breakdown": flops,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    status, code = "ok", 0
    try:
        accel = jax.default_backend() in ("gpu", "tpu")
        peak_sizes = a.peak_sizes or ([4096, 8192] if accel else [256, 512, 1024, 2048])
        peak = measure_peak(dtype, peak_sizes)
        result["peak_matmul_sizes"] = peak_sizes
        print(f"  measured peak ({a.dtype} matmuls {peak_sizes}): {peak / 1e12:.3f} TFLOP/s")

        # Random init (jitted: one compile instead of op-by-op dispatch); params fp32.
        model = nnx.jit(
            lambda: WanTransformer3D(
                cfg, rngs=nnx.Rngs(0), dtype=dtype, scan_layers=not a.no_scan, remat=remat, attention_impl=a.attention
            )
        )()
        graphdef, params = nnx.split(model)
        result["params"] = num_params(model)
        print(f"  params: {result['params'] / 1e6:.2f} M")
        k = jax.random.split(jax.random.key(1), 3)
        x = jax.random.normal(k[0], (a.batch, cfg.in_channels, *lat), dtype)
        t = jnp.full((a.batch,), 500.0, jnp.float32)
        ctx = jax.random.normal(k[1], (a.batch, text_len, cfg.text_dim), dtype)
        target = jax.random.normal(k[2], (a.batch, cfg.out_channels, *lat), jnp.float32)

        @jax.jit
        def fwd(params, x, t, ctx):
            return nnx.merge(graphdef, params)(x, t, ctx)

        @jax.jit
        def fwd_bwd(params, x, t, ctx, target):
            def loss(p):
                out = nnx.merge(graphdef, p)(x, t, ctx)
                return jnp.mean(jnp.square(out.astype(jnp.float32) - target))

            return jax.value_and_grad(loss)(params)

        modes = ["fwd", "fwd_bwd"] if a.mode == "both" else [a.mode]
        for mode in modes:
            fn, args, mult = (
                (fwd, (params, x, t, ctx), 1) if mode == "fwd" else (fwd_bwd, (params, x, t, ctx, target), 3)
            )
            try:
                compile_s, first_s, times = timed(fn, *args, steps=a.steps, warmup=a.warmup)
            except Exception as e:  # noqa: BLE001 - an OOM in one mode still reports the other
                if not is_oom(e):
                    raise
                status, code = "oom", 3
                result[mode] = {"status": "oom", "error": str(e).splitlines()[0][:500]}
                print(f"  {mode:8s} OUT OF MEMORY: {result[mode]['error'][:200]}", file=sys.stderr)
                continue
            step = statistics.median(times)
            result[mode] = {
                "status": "ok",
                "compile_s": compile_s,
                "first_call_s": first_s,
                "step_s_median": step,
                "step_s_min": min(times),
                "step_s_all": times,
                "model_flops": mult * flops["total"],
                "achieved_flops": mult * flops["total"] / step,
                "tokens_per_s": tokens / step,
            }  # `tokens` counts the whole batch
            print(
                f"  {mode:8s} step {step * 1e3:9.2f} ms (min {min(times) * 1e3:.2f}, compile {compile_s:.1f} s) "
                f"| {tokens / step:10.0f} tokens/s | {mult * flops['total'] / step / 1e12:8.4f} TFLOP/s"
            )
        # Measured before and after the model runs; the max is used (shared machines are noisy).
        peak = max(peak, measure_peak(dtype, peak_sizes))
        result["peak_flops_measured"] = peak
        for mode in modes:
            if result[mode]["status"] == "ok":
                result[mode]["mfu"] = result[mode]["achieved_flops"] / peak
                print(
                    f"  {mode:8s} MFU {100 * result[mode]['mfu']:5.1f}% of the measured peak {peak / 1e12:.3f} TFLOP/s"
                )
        if jax.default_backend() == "gpu":
            stats = dev.memory_stats() or {}
            result["peak_bytes_in_use"] = stats.get("peak_bytes_in_use")
    except Exception as e:  # noqa: BLE001 - report OOM clearly, re-raise anything else
        if not is_oom(e):
            if "cudnn" in f"{e}".lower() or "cudnn" in type(e).__name__.lower():
                print(
                    f"  cuDNN attention failed ({type(e).__name__}); rerun with --attention chunked "
                    "(or xla for short sequences)",
                    file=sys.stderr,
                )
            raise
        status, code = "oom", 3
        result["error"] = str(e).splitlines()[0][:500]
    if status == "oom":
        print(
            f"  OUT OF MEMORY on {device}: try --remat on, --dtype bfloat16, --batch 1, --attention chunked, "
            "fewer --frames / smaller --height/--width, or --mode fwd",
            file=sys.stderr,
        )
    result["status"] = status

    from bench_io import merge_result  # benchmarks/bench_io.py, beside this script

    merge_result(a.out, key, result)
    return code


if __name__ == "__main__":
    sys.exit(main())
