"""Throughput accounting: model FLOPs per step and the per-device peak used for MFU.

MFU = (3 x forward FLOPs of the global batch, :func:`model.thfm.thfm_flops`) x steps/s
/ (peak FLOP/s per device x devices). Forward+backward = 3x forward; remat recomputation and the
stage-2 VAE decode are not counted (so MFU is "useful DiT FLOPs").

Peak per device: ``peak_flops_per_device`` from the config if a number; 'auto' uses the datasheet
dense bf16 numbers below for known accelerators when computing in bf16, and otherwise (CPU, fp32,
unknown device) measures the best jnp matmul throughput of the compute dtype at start-up
(:func:`measure_peak`; MFU is then "fraction of achievable matmul throughput").
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

# Dense bf16 tensor-core/MXU peaks (FLOP/s per device), matched against device_kind (first hit wins).
PEAK_BF16 = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
    ("L4", 121e12),
    ("TPU v6 lite", 918e12),
    ("TPU v6e", 918e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5e", 197e12),
    ("TPU v5p", 459e12),
    ("TPU v5", 459e12),
    ("TPU v4", 275e12),
)


def table_peak(device_kind: str, dtype) -> float | None:
    if jnp.dtype(dtype) != jnp.dtype(jnp.bfloat16):
        return None
    for name, peak in PEAK_BF16:
        if name.lower() in device_kind.lower():
            return peak
    return None


def measure_peak(dtype, sizes=None, reps: int = 3) -> float:
    """Best achieved FLOP/s of chained square matmuls in ``dtype`` on the default device."""
    accel = jax.default_backend() in ("gpu", "tpu")
    sizes = sizes or ([4096, 8192] if accel else [256, 512, 1024])
    best = 0.0
    for n in sizes:
        k1, k2 = jax.random.split(jax.random.PRNGKey(n))
        a = jax.random.normal(k1, (n, n), jnp.float32).astype(dtype)
        b = (jax.random.normal(k2, (n, n), jnp.float32) / np.sqrt(n)).astype(dtype)

        @jax.jit
        def chain(a, b):
            for _ in range(4):
                a = a @ b
            return a

        jax.block_until_ready(chain(a, b))
        for _ in range(reps):
            t0 = time.perf_counter()
            jax.block_until_ready(chain(a, b))
            best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0))
    return best


def peak_per_device(setting, dtype) -> tuple[float, str]:
    """(FLOP/s, source) for the MFU denominator."""
    if isinstance(setting, (int, float)):
        return float(setting), "config"
    if setting == "auto":
        kind = getattr(jax.devices()[0], "device_kind", "")
        peak = table_peak(kind, dtype)
        if peak is not None:
            return peak, f"table:{kind}"
    return measure_peak(dtype), "measured-matmul"
