"""Frame selection and resizing that keep every label consistent with its image (pure numpy).

Images are resized with exact area filtering (each output pixel is the area-weighted mean
of the input pixels it covers); discrete labels with nearest neighbour (a label is never
a blend of two labels); intrinsics are updated with the same scale and crop, so 3D
joints still project onto the resized 2D joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from thfm_synth.errors import UserError


def frame_indices(src_frames: int, src_fps: float, dst_frames: int, dst_fps: float, what: str = "video") -> np.ndarray:
    """Source frame for each output frame (nearest in time, starting at the first frame)."""
    idx = np.round(np.arange(dst_frames) * (src_fps / dst_fps)).astype(np.int64)
    if idx[-1] >= src_frames:
        need = int(idx[-1]) + 1
        raise UserError(
            f"{what} has {src_frames} frames at {src_fps:g} fps; {dst_frames} frames at {dst_fps:g} fps need {need}",
            "render longer videos or lower the model's frame count",
        )
    return idx


@dataclass(frozen=True)
class Crop:
    """Scale the source by `scale`, then cut the window [x0, x0+width) x [y0, y0+height)."""

    scale: float
    x0: float
    y0: float
    width: int
    height: int


def cover_crop(src_w: int, src_h: int, dst_w: int, dst_h: int) -> Crop:
    """Resize to cover the target then centre-crop: no padding, no distortion."""
    scale = max(dst_w / src_w, dst_h / src_h)
    return Crop(scale, (src_w * scale - dst_w) / 2, (src_h * scale - dst_h) / 2, dst_w, dst_h)


def crop_intrinsics(k: np.ndarray, crop: Crop) -> np.ndarray:
    """K after the crop. Pixel corners map as u' = s u - x0 (corner convention of conventions.py)."""
    out = np.array(k, dtype=np.float64, copy=True)
    out[..., 0, :] *= crop.scale
    out[..., 1, :] *= crop.scale
    out[..., 0, 2] -= crop.x0
    out[..., 1, 2] -= crop.y0
    out[..., 2, :] = np.array([0.0, 0.0, 1.0])
    return out


def crop_points(uv: np.ndarray, crop: Crop) -> np.ndarray:
    return np.asarray(uv) * crop.scale - np.array([crop.x0, crop.y0])


def _area_matrix(n_src: int, scale: float, offset: float, n_dst: int) -> np.ndarray:
    """(n_dst, n_src) weights: output pixel j covers source interval [(j+off)/s, (j+1+off)/s)."""
    lo = (np.arange(n_dst) + offset) / scale
    hi = lo + 1.0 / scale
    edges = np.arange(n_src + 1, dtype=np.float64)
    overlap = np.clip(np.minimum(hi[:, None], edges[None, 1:]) - np.maximum(lo[:, None], edges[None, :-1]), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _band(n_src: int, scale: float, offset: float, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-zero weights of `_area_matrix` as (K, n_dst) source indices and weights (K <= 1/scale + 2)."""
    m = _area_matrix(n_src, scale, offset, n_dst)
    nz = m > 0
    k = int(nz.sum(axis=1).max())
    first = np.argmax(nz, axis=1)
    idx = np.minimum(first[None, :] + np.arange(k)[:, None], n_src - 1)
    w = np.take_along_axis(m, idx.T, axis=1).T
    w = np.where(first[None, :] + np.arange(k)[:, None] < n_src, w, 0.0)
    return idx, w


def _area_axis(x: np.ndarray, axis: int, scale: float, offset: float, n_dst: int) -> np.ndarray:
    idx, w = _band(x.shape[axis], scale, offset, n_dst)
    shape = [1] * x.ndim
    shape[axis] = n_dst
    out = np.zeros(x.shape[:axis] + (n_dst,) + x.shape[axis + 1 :], np.float32)
    for k in range(idx.shape[0]):
        out += np.take(x, idx[k], axis=axis) * w[k].astype(np.float32).reshape(shape)
    return out


def resize_area(images: np.ndarray, crop: Crop) -> np.ndarray:
    """(..., H, W, C) float images -> (..., crop.height, crop.width, C), exact area filter.

    Each output pixel is the area-weighted mean of the source pixels it covers (the weights of
    `_area_matrix`, applied separably as a few weighted gathers per axis - O(output pixels)).
    """
    x = np.asarray(images, np.float32)
    out = _area_axis(x, x.ndim - 3, crop.scale, crop.y0, crop.height)
    return _area_axis(out, x.ndim - 2, crop.scale, crop.x0, crop.width)


def resize_area_reference(images: np.ndarray, crop: Crop) -> np.ndarray:
    """The same filter as dense weight matrices (slow; kept as the reference for tests)."""
    h, w = images.shape[-3], images.shape[-2]
    ay = _area_matrix(h, crop.scale, crop.y0, crop.height)
    ax = _area_matrix(w, crop.scale, crop.x0, crop.width)
    out = np.einsum("yh,...hwc->...ywc", ay, images.astype(np.float64))
    return np.einsum("xw,...ywc->...yxc", ax, out).astype(np.float32)


def resize_nearest(labels: np.ndarray, crop: Crop) -> np.ndarray:
    """(..., H, W, C) labels -> the nearest source pixel of each output pixel centre (no blending)."""
    h, w = labels.shape[-3], labels.shape[-2]
    ys = np.clip(np.floor((np.arange(crop.height) + 0.5 + crop.y0) / crop.scale).astype(int), 0, h - 1)
    xs = np.clip(np.floor((np.arange(crop.width) + 0.5 + crop.x0) / crop.scale).astype(int), 0, w - 1)
    return labels[..., ys[:, None], xs[None, :], :]
