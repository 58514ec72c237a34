"""Ground truth as the model sees it: 3-channel videos in [-1, 1], validity masks, keypoints.

The tasks, their prompts and the encodings are defined once in :mod:`model.tasks` (read its
docstring); this module computes them from the resized rendered labels. Following the paper:
depth becomes disparity 1/z normalised to [0, 1] by the clip's own min/max (one normalisation for
the whole clip, so temporal consistency survives) and is repeated to 3 channels; the soft mask is
repeated; normals keep their xyz (already in [-1, 1]); IUV is (part/24, U, V) and canonical
coordinates are xyz in [0, 1], each mapped to [-1, 1]. Pixels without a valid value (sky depth)
get disparity 0 (infinitely far). The human-only tasks apply the same rules to the pixels whose
pixel-centre ray hits the subject (DensePose part > 0) and put the "no value" background elsewhere.
"""

from __future__ import annotations

import numpy as np

from model.pixels import disparity_target
from model.tasks import DENSE_TASKS, HUMAN_ONLY_TASKS, KEYPOINT_TASKS, TASKS  # noqa: F401  (re-exported)


def to_signed(x01: np.ndarray) -> np.ndarray:
    return (np.asarray(x01, dtype=np.float32) * 2.0 - 1.0).astype(np.float32)


def depth_valid(depth: np.ndarray) -> np.ndarray:
    """Pixels with a surface: finite, positive planar depth (sky and misses are stored as 0)."""
    depth = np.asarray(depth)
    return np.isfinite(depth) & (depth > 0)


def subject_pixels(part: np.ndarray) -> np.ndarray:
    """(T, H, W) bool: the pixel-centre ray hits the subject (DensePose part 1..24). Point-sampled like
    depth and normals, so a human-only label never mixes the person with what lies behind an edge."""
    return np.asarray(part) > 0


def depth_target(depth: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(T, H, W) metres -> (T, H, W, 3) in [-1, 1]; disparity normalised per clip over `valid` pixels
    (default: every pixel with a surface)."""
    v = depth_valid(depth) if valid is None else (np.asarray(valid, bool) & depth_valid(depth))
    return disparity_target(depth, v)


def human_depth_target(depth: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """Depth of the person only: normalised over the subject's pixels, background -1 (model.tasks)."""
    return depth_target(depth, subject)


def mask_target(mask: np.ndarray) -> np.ndarray:
    return np.repeat(to_signed(np.clip(mask, 0, 1))[..., None], 3, axis=-1)


def normals_target(normals: np.ndarray) -> np.ndarray:
    return np.clip(normals, -1.0, 1.0).astype(np.float32)


def normals_valid(normals: np.ndarray) -> np.ndarray:
    """Pixels with a surface: the renderer stores (0, 0, 0) where the ray hits nothing."""
    return np.linalg.norm(np.asarray(normals, np.float32), axis=-1) > 0.5


def human_normals_target(normals: np.ndarray, subject: np.ndarray) -> np.ndarray:
    """Normals of the person only; background holds (0, 0, 0) (model.tasks)."""
    return np.where(np.asarray(subject, bool)[..., None], normals_target(normals), 0.0).astype(np.float32)


def iuv_target(part: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """part (T, H, W) in 0..24, uv (T, H, W, 2) in [0, 1] -> (T, H, W, 3)."""
    return to_signed(np.concatenate([(part / 24.0)[..., None], np.clip(uv, 0, 1)], axis=-1))


def canonical_target(canonical: np.ndarray) -> np.ndarray:
    return to_signed(np.clip(canonical, 0, 1))


def keypoints_2d_normalised(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    return (np.asarray(uv) / np.array([width, height])).astype(np.float32)
