"""Automatic exposure of the stored RGB: one gain per video, metered on the scene-linear render.

Cycles returns scene-referred radiance, and our light sources do not share a scale: Blender's
Nishita ("MULTIPLE_SCATTERING") sky is physically scaled (sky luminance 2-7, the sun disc ~100),
its Hosek-Wilkie sky ~0.05, HDRIs whatever their photographer captured. Encoding that radiance
straight to 8-bit sRGB blew whole videos out to white and left others nearly black. A camera
solves this with auto-exposure; so do we, outside Blender, on the float32 EXRs it writes:

    gain = key / exp(mean(log(eps + L)))        (Reinhard et al. 2002, "key value" metering)

over the pixels of a few frames spread over the clip (L = Rec.709 luminance), clamped to
[2^MIN_STOPS, 2^MAX_STOPS]. One gain for the whole clip, like a camera with locked exposure, so
brightness never flickers between frames. The log-average ignores a small bright sun disc or a
specular highlight that a plain mean would chase. The gain (and its stops) is recorded in each
video's metadata.json; labels are untouched by it.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

KEY = 0.18  # middle grey
MIN_STOPS, MAX_STOPS = -10.0, 5.0
EPS = 1e-4
METER_FRAMES = 5
REC709 = np.array([0.2126, 0.7152, 0.0722], np.float64)


def luminance(linear: np.ndarray) -> np.ndarray:
    return np.asarray(linear, np.float64)[..., :3] @ REC709


def metering_gain(frames: Iterable[np.ndarray], key: float = KEY) -> float:
    """The exposure gain that maps the log-average luminance of ``frames`` (scene-linear
    (H, W, 3) arrays) to ``key``, clamped to the stop range; 1.0 when no pixel is finite."""
    logs = []
    for f in frames:
        lum = luminance(f).ravel()
        lum = lum[np.isfinite(lum)]
        if lum.size:
            logs.append(np.log(EPS + np.maximum(lum, 0.0)))
    if not logs:
        return 1.0
    log_avg = float(np.concatenate(logs).mean())
    stops = math.log2(key) - log_avg / math.log(2.0)
    return float(2.0 ** min(MAX_STOPS, max(MIN_STOPS, stops)))


def meter_frame_indices(n: int, count: int = METER_FRAMES) -> list[int]:
    """Up to ``count`` frame positions spread evenly over ``n`` frames (first and last included)."""
    if n <= count:
        return list(range(n))
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})
