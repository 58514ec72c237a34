"""Step time, tokens/s and MFU of the THFM train step (model.train), on synthetic shards.

Runs the real trainer set-up (mesh, shardings, Grain pipeline, jitted sharded step with gradient
clipping/dropping) on a structured synthetic shard set of the requested size, then times the step
alone (``step_s``: median of timed calls on prefetched device batches) and the whole loop as the
trainer runs it (``loop_step_s``: take a batch from the shards' pipeline + host->device transfer + step),
against the same loop over host batches held in memory (``in_memory_loop_step_s``); their ratio
``loop_over_in_memory_step`` is what the step waits on the input pipeline (issue 16: <= 1.1).

MFU = 3 x THFM forward FLOPs (``model.thfm.thfm_flops``: ``model.wan.dit_flops`` + keypoint
tokens + head) / step time / (peak FLOP/s per device x devices). The peak is MEASURED in the
same run with chained jnp matmuls of the compute dtype (``--peak measure``, default on CPU), so the
ratio is "fraction of achievable matmul throughput"; ``--peak table`` uses the datasheet bf16
number for known GPUs/TPUs (``model.train.perf.PEAK_BF16``); both are reported when available.

    python benchmarks/train_step.py                                 # tiny CPU config
    python benchmarks/train_step.py --config small                  # WAN_SMALL, ~0.8M params (train_from_synth)
    python benchmarks/train_step.py --config wan21_1_3b --frames 81 --height 480 --width 832 \\
        --batch 8 --dtype bfloat16 --remat --fsdp 8                  # GPUs / TPUs

Results are printed and merged into benchmarks/results/train_step.json (one entry per
config/shape/dtype/device/mesh).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from model.train.config import load_config  # noqa: E402
from model.train.mesh import global_batch  # noqa: E402
from model.train.perf import measure_peak, table_peak  # noqa: E402
from model.train.trainer import Trainer  # noqa: E402

RESULTS = REPO / "benchmarks" / "results" / "train_step.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="tiny", choices=["tiny", "small", "wan21_1_3b", "wan21_14b"])
    p.add_argument("--frames", type=int, default=9, help="video frames (4k+1)")
    p.add_argument("--height", type=int, default=64, help="pixels (multiple of 16)")
    p.add_argument("--width", type=int, default=64, help="pixels (multiple of 16)")
    p.add_argument("--batch", type=int, default=4, help="global batch")
    p.add_argument("--keypoints", type=int, default=17)
    p.add_argument("--text-dim", type=int, default=None, help="prompt dim (default 4096 for WAN configs, 64 else)")
    p.add_argument("--text-len", type=int, default=None, help="prompt tokens (default 512 for WAN configs, 8 else)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--stage", type=int, default=1, choices=[1, 2])
    p.add_argument("--remat", action="store_true")
    p.add_argument("--attention", default="auto", choices=["auto", "xla", "cudnn", "chunked"])
    p.add_argument("--fsdp", type=int, default=1)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the real / in-memory loops")
    p.add_argument("--prefetch-batches", type=int, default=2, help="data.prefetch_batches")
    p.add_argument(
        "--peak",
        default="auto",
        choices=["auto", "measure", "table"],
        help="MFU denominator (auto: table for known accelerators in bf16, else measured)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    if (a.frames - 1) % 4 or a.height % 16 or a.width % 16:
        p.error("need frames = 4k+1 and height/width multiples of 16")

    wan = a.config.startswith("wan")
    text_dim = a.text_dim or (4096 if wan else 64)
    text_len = a.text_len or (512 if wan else 8)
    size = a.config
    tmp = tempfile.TemporaryDirectory(prefix="thfm_bench_")
    shard_dir = Path(tmp.name) / "shards"
    from model.data import write_synthetic_shards

    n_videos = max(2, -(-2 * a.batch // 7) + 1)
    write_synthetic_shards(
        shard_dir,
        num_videos=n_videos,
        num_frames=a.frames,
        height=a.height,
        width=a.width,
        num_keypoints=a.keypoints,
        text_dim=text_dim,
        prompt_tokens=text_len,
    )
    cfg = load_config(
        {
            "model": {"size": size, "dit": {}, "remat": a.remat, "attention_impl": a.attention},
            "data": {
                "shard_dir": str(shard_dir),
                "num_threads": 2,
                "prefetch": 4,
                "prefetch_batches": a.prefetch_batches,
            },
            "batch_size": a.batch,
            "steps": a.warmup + a.steps + 1,
            "stage": a.stage,
            "dtype": a.dtype,
            "mesh": {"data": -1, "fsdp": a.fsdp},
            "run_dir": str(Path(tmp.name) / "run"),
            "resume": False,
            "peak_flops_per_device": 1.0,
            "log_every": 1000,
        }
    )
    dev = jax.devices()[0]
    device = f"{dev.platform}:{getattr(dev, 'device_kind', '?')}"
    print(
        f"[train_step] {a.config} on {jax.device_count()} x {device} (jax {jax.__version__}), "
        f"{a.batch}x{a.frames}x{a.height}x{a.width}, stage {a.stage}, fsdp {a.fsdp}"
    )
    tr = Trainer(cfg, quiet=True)
    s = tr.setup
    dtype_name = str(np.dtype(s.dtype))
    state = tr.state
    batches = [global_batch(next(tr.data_iter), s.batch_sharding) for _ in range(2)]

    t0 = time.perf_counter()
    state, m = s.step_fn(state, s.consts, tr.vae_state, batches[0])
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    for i in range(a.warmup):
        state, m = s.step_fn(state, s.consts, tr.vae_state, batches[i % 2])
    jax.block_until_ready(state)
    times = []
    for i in range(a.steps):
        t0 = time.perf_counter()
        state, m = s.step_fn(state, s.consts, tr.vae_state, batches[i % 2])
        jax.block_until_ready(m)
        times.append(time.perf_counter() - t0)
    # The loop as the trainer runs it (take a batch, transfer, dispatch the step), with batches from the
    # shards (read, verified, decoded, stacked by the pipeline's threads) vs the same host batches kept
    # in memory: the difference is what the step waits on the input pipeline. Rounds are interleaved so
    # load from elsewhere hits both alike.
    host = [next(tr.data_iter) for _ in range(2)]

    def loop(source) -> float:
        nonlocal state
        t0 = time.perf_counter()
        for i in range(a.steps):
            batch = global_batch(source(i), s.batch_sharding)
            state, m = s.step_fn(state, s.consts, tr.vae_state, batch)
        jax.block_until_ready(state)
        return (time.perf_counter() - t0) / a.steps

    real, memory = [], []
    for _ in range(a.rounds):
        memory.append(loop(lambda i: host[i % 2]))
        real.append(loop(lambda i: next(tr.data_iter)))
    loop_step, memory_step = statistics.median(real), statistics.median(memory)
    tr.close()

    step = statistics.median(times)
    n_dev = s.mesh.devices.size
    measured = max(measure_peak(s.dtype), 0.0)
    table = table_peak(getattr(dev, "device_kind", ""), s.dtype)
    if a.peak == "table" and table is None:
        p.error(f"no datasheet peak for {device} in {dtype_name}; use --peak measure")
    peak = table if (a.peak == "table" or (a.peak == "auto" and table is not None)) else measured
    achieved = tr.step_flops / step
    result = {
        "config": a.config,
        "device": device,
        "devices": n_dev,
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "python": platform.python_version(),
        "dtype": dtype_name,
        "stage": a.stage,
        "batch": a.batch,
        "video": [a.frames, a.height, a.width],
        "latent": list(tr.spec.latent_shape),
        "tokens_per_step": tr.tokens_per_step,
        "text_len": text_len,
        "remat": a.remat,
        "fsdp": a.fsdp,
        "params": int(sum(x.size for x in jax.tree.leaves(state["params"]))),
        "step_flops": tr.step_flops,
        "flops_breakdown_fwd": tr.flops,
        "compile_s": compile_s,
        "step_s_median": step,
        "step_s_min": min(times),
        "step_s_all": times,
        "loop_step_s": loop_step,
        "loop_step_s_all": real,
        "in_memory_loop_step_s": memory_step,
        "in_memory_loop_step_s_all": memory,
        "prefetch_batches": a.prefetch_batches,
        # issue 16: the loop on real shards vs the same loop on in-memory batches (goal <= 1.1: the step
        # never waits on the input pipeline)
        "loop_over_in_memory_step": loop_step / memory_step,
        "loop_over_blocking_step": loop_step / step,
        "load_average": os.getloadavg(),
        "tokens_per_s": tr.tokens_per_step / step,
        "achieved_flops": achieved,
        "peak_flops_per_device_measured": measured,
        "peak_flops_per_device_table": table,
        "peak_used": "table" if peak == table else "measured",
        "mfu": achieved / (peak * n_dev),
        "mfu_vs_measured": achieved / (measured * n_dev),
        "skips": int(jax.device_get(state["skips"])),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    print(f"  params {result['params'] / 1e6:.3f} M | tokens/step {tr.tokens_per_step:.0f} | compile {compile_s:.1f} s")
    print(
        f"  step {step * 1e3:.2f} ms (min {min(times) * 1e3:.2f}) | loop {loop_step * 1e3:.2f} ms/step | "
        f"{result['tokens_per_s']:.0f} tokens/s | {achieved / 1e9:.3f} GFLOP/s"
    )
    print(
        f"  loop on real shards {loop_step * 1e3:.2f} ms/step / on in-memory batches {memory_step * 1e3:.2f} ms/step: "
        f"{loop_step / memory_step:.2f}x (goal <= 1.1; prefetch_batches {a.prefetch_batches}, medians of "
        f"{a.rounds} interleaved rounds); load average {os.getloadavg()}"
    )
    print(
        f"  MFU {100 * result['mfu']:.2f}% of {result['peak_used']} peak {peak / 1e12:.3f} TFLOP/s/device "
        f"(measured matmul peak {measured / 1e12:.3f} TFLOP/s -> {100 * result['mfu_vs_measured']:.2f}%)"
    )

    key = (
        f"{a.config}|{a.batch}x{a.frames}x{a.height}x{a.width}|{dtype_name}|stage{a.stage}|{device}x{n_dev}"
        f"|fsdp{a.fsdp}" + (f"|prefetch{a.prefetch_batches}" if a.prefetch_batches != 2 else "")
    )
    from bench_io import merge_result  # benchmarks/bench_io.py, beside this script

    merge_result(a.out, key, result)
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
