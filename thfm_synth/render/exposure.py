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

The person decides, as a photographer would have it. Metering the whole frame, where the person is
2-7% of the pixels, turned a person lit by strong lamps in a dim studio HDRI into a pure-white
silhouette (+4.4 stops; 99% of the person's pixels clipped). So, with the soft mask:
- the log-average is taken with the person's pixels given SUBJECT_WEIGHT of the weight however
  small the person is (spot metering blended with the frame), and
- the gain is capped so that the person's bright pixels (the HIGHLIGHT_PERCENTILE of their
  brightest channel) stay at HIGHLIGHT_WHITE, below white: a bright background may clip, the
  person does not.
QA (render/qa.py, `subject_clipped`) fails a video whose person still clips.
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
SUBJECT_WEIGHT = 0.7  # the person's share of the metering, however few pixels they cover
HIGHLIGHT_PERCENTILE = 99.0  # of the person's brightest channel, over the metered frames
HIGHLIGHT_WHITE = 0.9  # scene-linear value that percentile may reach after the gain (sRGB 243)


def luminance(linear: np.ndarray) -> np.ndarray:
    return np.asarray(linear, np.float64)[..., :3] @ REC709


def metering_gain(
    frames: Iterable[np.ndarray], key: float = KEY, masks: Iterable[np.ndarray | None] | None = None
) -> float:
    """The exposure gain that maps the log-average luminance of ``frames`` (scene-linear
    (H, W, 3) arrays) to ``key``, clamped to the stop range; 1.0 when no pixel is finite.

    ``masks``: the person's soft coverage per frame (H, W) in [0, 1] (None: meter the frame alone):
    the person gets SUBJECT_WEIGHT of the metering and the gain keeps their highlights below white
    (see the module doc)."""
    logs, weights, highs = [], [], []
    masks = iter(masks) if masks is not None else None
    for f in frames:
        m = next(masks, None) if masks is not None else None
        rgb = np.asarray(f, np.float64)[..., :3]
        lum = luminance(rgb)
        ok = np.isfinite(lum)
        if not ok.any():
            continue
        logs.append(np.log(EPS + np.maximum(lum[ok], 0.0)))
        cover = np.zeros(ok.sum()) if m is None else np.clip(np.asarray(m, np.float64)[ok], 0.0, 1.0)
        weights.append(cover)
        if m is not None:
            solid = (np.asarray(m) > 0.5) & np.isfinite(rgb).all(-1)
            if solid.any():
                highs.append(rgb[solid].max(-1))
    if not logs:
        return 1.0
    log_l, cover = np.concatenate(logs), np.concatenate(weights)
    log_avg = float(log_l.mean())
    if cover.sum() > 0:
        log_avg = (1.0 - SUBJECT_WEIGHT) * log_avg + SUBJECT_WEIGHT * float((log_l * cover).sum() / cover.sum())
    stops = math.log2(key) - log_avg / math.log(2.0)
    gain = 2.0 ** min(MAX_STOPS, max(MIN_STOPS, stops))
    if highs:
        bright = float(np.percentile(np.concatenate(highs), HIGHLIGHT_PERCENTILE))
        if bright > 0:
            gain = min(gain, HIGHLIGHT_WHITE / bright)
    return float(max(gain, 2.0**MIN_STOPS))


def meter_frame_indices(n: int, count: int = METER_FRAMES) -> list[int]:
    """Up to ``count`` frame positions spread evenly over ``n`` frames (first and last included)."""
    if n <= count:
        return list(range(n))
    return sorted({round(i * (n - 1) / (count - 1)) for i in range(count)})
