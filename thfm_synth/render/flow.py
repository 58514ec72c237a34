"""Exact optical flow from geometry (pure numpy): where each pixel's surface point is one frame later
and one frame earlier, in pixels.

The renderer's 1-sample label layer writes, at every pixel centre, the world position that the
surface point hit by the centre ray has at frame t+1 and at frame t-1 (AOVs from per-vertex
attributes of moving meshes, interpolated barycentrically; static surfaces keep their position).
Projecting those points with the cameras of frames t+1 and t-1 gives the flow exactly, with no
sample averaging (Blender's Vector pass averages over samples and mixes surfaces at edges):

    forward(u, v)  = project_{t+1}(P_next(u, v)) - (u + 0.5, v + 0.5)
    backward(u, v) = project_{t-1}(P_prev(u, v)) - (u + 0.5, v + 0.5)

Pixels that see no surface (sky) get the flow of their direction at infinity, which only the
camera's rotation moves. A flow vector is *valid* when its target lies inside the other image,
in front of that camera, and the point is not hidden there: its depth in the other frame is at most
the rendered depth at the target, plus 1% + 1 cm. The rendered depth at the target is interpolated
bilinearly in inverse depth from the 2x2 pixel centres around it (exact on a plane, and on a depth
edge a blend of both sides, so a point there only counts as visible if it is in front of the blend:
validity errs towards "invalid", never towards calling a hidden point visible). The first frame has
no backward flow and the last no forward flow (invalid, vectors 0).
"""

from __future__ import annotations

import numpy as np

REL_TOL = 0.01
ABS_TOL_M = 0.01


def pixel_centres(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    u, v = np.meshgrid(np.arange(width, dtype=np.float64) + 0.5, np.arange(height, dtype=np.float64) + 0.5)
    return u, v


def project(points: np.ndarray, k: np.ndarray, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) world points -> ((..., 2) pixels, (...) camera z)."""
    cam = points @ r.T + t
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (cam @ k.T)[..., :2] / z[..., None]
    return uv, z


def _sky_targets(k0, r0, k1, r1, width, height):
    """Where directions at infinity seen at pixel centres of camera 0 land in camera 1."""
    u, v = pixel_centres(width, height)
    rays = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(k0).T  # camera-0 directions
    d1 = rays @ (r1 @ r0.T).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (d1 @ k1.T)[..., :2] / d1[..., 2:3]
    return uv, d1[..., 2]


def flow_vectors(
    pos_other: np.ndarray, hit: np.ndarray, cam: tuple, cam_other: tuple | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flow (H,W,2) px, target depth (H,W) in the other camera (inf for sky), in-frame (H,W) bool).

    pos_other: (H,W,3) world positions at the other frame (used where `hit`); cam, cam_other:
    (K, R, t) of this frame and the other one (None: no such frame -> zeros, all invalid).
    """
    h, w = hit.shape
    if cam_other is None:
        return np.zeros((h, w, 2), np.float32), np.full((h, w), np.inf), np.zeros((h, w), bool)
    k1, r1, t1 = (np.asarray(a, np.float64) for a in cam_other)
    uv_hit, z = project(np.asarray(pos_other, np.float64), k1, r1, t1)
    uv_sky, zs = _sky_targets(np.asarray(cam[0], np.float64), np.asarray(cam[1], np.float64), k1, r1, w, h)
    uv = np.where(hit[..., None], uv_hit, uv_sky)
    z = np.where(hit, z, np.where(zs > 0, np.inf, -1.0))
    u, v = pixel_centres(w, h)
    flow = uv - np.stack([u, v], -1)
    inside = (
        (z > 0) & np.isfinite(uv).all(-1) & (uv[..., 0] >= 0) & (uv[..., 0] < w) & (uv[..., 1] >= 0) & (uv[..., 1] < h)
    )
    flow = np.where(inside[..., None] | (hit[..., None] & np.isfinite(flow)), flow, 0.0)
    return flow.astype(np.float32), z, inside


def visible_in(
    target_flow: np.ndarray, target_z: np.ndarray, inside: np.ndarray, depth_other: np.ndarray
) -> np.ndarray:
    """Valid flow: inside the other image and not hidden there (see the module doc). depth 0 = sky."""
    h, w = inside.shape
    u, v = pixel_centres(w, h)
    q = np.stack([u, v], -1) + target_flow
    # the 2x2 pixels whose centres surround the target
    x0 = np.clip(np.floor(q[..., 0] - 0.5).astype(np.int64), 0, w - 1)
    y0 = np.clip(np.floor(q[..., 1] - 0.5).astype(np.int64), 0, h - 1)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    disp = np.where(depth_other > 0, 1.0 / np.where(depth_other > 0, depth_other, 1.0), 0.0)  # sky: 0
    ax = np.clip(q[..., 0] - 0.5 - x0, 0.0, 1.0)
    ay = np.clip(q[..., 1] - 0.5 - y0, 0.0, 1.0)
    d = (1 - ay) * ((1 - ax) * disp[y0, x0] + ax * disp[y0, x1]) + ay * ((1 - ax) * disp[y1, x0] + ax * disp[y1, x1])
    with np.errstate(divide="ignore"):
        surface = np.where(d > 0, 1.0 / d, np.inf)
    return inside & (target_z <= surface * (1 + REL_TOL) + ABS_TOL_M)
