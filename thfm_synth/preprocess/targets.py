"""Ground truth as the model sees it: 3-channel videos in [-1, 1], keypoints as arrays.

Following the paper: depth becomes disparity 1/z normalised to [0, 1] by the clip's own
min/max (one normalisation for the whole clip, so temporal consistency survives) and is
repeated to 3 channels; the soft mask is repeated; normals keep their xyz (already in
[-1, 1]); IUV is (part/24, U, V) and canonical coordinates are xyz in [0, 1], each mapped
to [-1, 1]. Pixels without a valid value (sky depth) get disparity 0 (infinitely far).
"""

from __future__ import annotations

import numpy as np

TASKS = ("depth", "normals", "mask", "iuv", "canonical", "keypoints_2d", "keypoints_3d")
DENSE_TASKS = TASKS[:5]


def to_signed(x01: np.ndarray) -> np.ndarray:
    return (np.asarray(x01, dtype=np.float32) * 2.0 - 1.0).astype(np.float32)


def depth_target(depth: np.ndarray) -> np.ndarray:
    """(T, H, W) metres -> (T, H, W, 3) in [-1, 1]; disparity normalised per clip."""
    valid = np.isfinite(depth) & (depth > 0)
    disp = np.zeros(depth.shape, dtype=np.float64)
    disp[valid] = 1.0 / depth[valid]
    lo, hi = (disp[valid].min(), disp[valid].max()) if valid.any() else (0.0, 1.0)
    norm = np.where(valid, (disp - lo) / max(hi - lo, 1e-12), 0.0)
    return np.repeat(to_signed(norm)[..., None], 3, axis=-1)


def mask_target(mask: np.ndarray) -> np.ndarray:
    return np.repeat(to_signed(np.clip(mask, 0, 1))[..., None], 3, axis=-1)


def normals_target(normals: np.ndarray) -> np.ndarray:
    return np.clip(normals, -1.0, 1.0).astype(np.float32)


def iuv_target(part: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """part (T, H, W) in 0..24, uv (T, H, W, 2) in [0, 1] -> (T, H, W, 3)."""
    return to_signed(np.concatenate([(part / 24.0)[..., None], np.clip(uv, 0, 1)], axis=-1))


def canonical_target(canonical: np.ndarray) -> np.ndarray:
    return to_signed(np.clip(canonical, 0, 1))


def keypoints_2d_normalised(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    return (np.asarray(uv) / np.array([width, height])).astype(np.float32)
