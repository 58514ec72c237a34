"""Ground-truth QA: the exactness checks, as a library run on every rendered video.

Each check takes per-frame arrays in our stored conventions (depth = camera z in metres,
normals = unit vectors in the OpenCV camera frame, mask in [0, 1], joints in pixels)
and returns figures; `check_frame`/`summarize` turn them into pass/fail against the
thresholds below, recorded in metadata.json. A failing video is flagged, not dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from thfm_synth.conventions import project

THRESHOLDS = {
    "reprojection_px_max": 0.01,  # stored 2D joints vs projected 3D joints
    "visible_joints_in_mask_min": 0.95,  # fraction of visible joints where mask > 0.5
    "depth_normal_median_deg_max": 10.0,  # normals from depth gradients vs normal pass
    "silhouette_nearer_min": 0.9,  # subject nearer than what lies just outside its silhouette
    "normal_unit_err_max": 1e-2,
}


def reprojection_error(k, r, t, joints_world, joints_2d) -> float:
    uv, _ = project(k, r, t, joints_world)
    return float(np.abs(uv - joints_2d).max())


def sample(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest-pixel lookup at continuous pixel coordinates (pixel centres at +0.5)."""
    h, w = image.shape[:2]
    x = np.clip(np.floor(uv[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.floor(uv[:, 1]).astype(int), 0, h - 1)
    return image[y, x]


def joints_in_mask(joints_2d: np.ndarray, visible: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    """(visible joints, how many of them sit where the soft mask > 0.5)."""
    if not visible.any():
        return 0, 0
    return int(visible.sum()), int((sample(mask, joints_2d[visible]) > 0.5).sum())


def backproject(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(H, W, 3) camera-frame points of every pixel centre."""
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    x = (u - k[0, 2]) / k[0, 0] * depth
    y = (v - k[1, 2]) / k[1, 1] * depth
    return np.stack([x, y, depth], axis=-1)


def normals_from_depth(depth: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame unit normals from central differences of the back-projected depth."""
    with np.errstate(invalid="ignore"):  # inf depth (sky) gives nan normals there, never used
        return _normals_from_points(backproject(depth, k))


def _normals_from_points(p: np.ndarray) -> np.ndarray:
    dx = np.zeros_like(p)
    dy = np.zeros_like(p)
    dx[:, 1:-1] = p[:, 2:] - p[:, :-2]
    dy[1:-1] = p[2:] - p[:-2]
    n = np.cross(dy, dx)  # oriented towards the camera (negative z) for OpenCV axes
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return n / np.where(norm > 0, norm, 1.0)


def erode(mask: np.ndarray, iterations: int) -> np.ndarray:
    m = mask.copy()
    for _ in range(iterations):
        m[1:-1, 1:-1] = (m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:])
        m[0], m[-1], m[:, 0], m[:, -1] = False, False, False, False
    return m


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def depth_normal_agreement(depth, normals, k, mask, erosion: int = 2) -> float:
    """Median angle (deg) between normals derived from depth and the normal pass over the mask interior."""
    interior = erode(mask > 0.99, erosion)
    if not interior.any():
        return float("nan")
    est = normals_from_depth(depth, k)[interior]
    ok = np.isfinite(est).all(-1)  # pixels next to invalid depth are reported by label_invariants
    return float(np.median(angle_deg(est[ok], normals[interior][ok]))) if ok.any() else float("nan")


SILHOUETTE_MIN_PAIRS = 20


def silhouette_nearer(depth: np.ndarray, mask: np.ndarray) -> float:
    """Across the silhouette, the fraction of (inside, outside) neighbour pairs where inside is nearer.

    No surface (depth 0: sky) counts as infinitely far. NaN (no evidence) with fewer than
    SILHOUETTE_MIN_PAIRS pairs: in small frames almost every edge pixel is partly covered (the
    1.5 px filter), and a ratio of 2 of 3 pairs would flag a correct video."""
    depth = np.where(depth > 0, depth, np.inf)
    inside, outside = mask > 0.99, mask < 0.01
    wins = total = 0
    for a, b, da, db in ((inside[:, :-1], outside[:, 1:], depth[:, :-1], depth[:, 1:]),
                         (inside[:, 1:], outside[:, :-1], depth[:, 1:], depth[:, :-1]),
                         (inside[:-1], outside[1:], depth[:-1], depth[1:]),
                         (inside[1:], outside[:-1], depth[1:], depth[:-1])):
        pair = a & b
        total += int(pair.sum())
        wins += int((da[pair] < db[pair]).sum())
    return wins / total if total >= SILHOUETTE_MIN_PAIRS else float("nan")


def label_invariants(depth, normals, mask, part=None, canonical=None) -> dict[str, float]:
    # Fully covered pixels: their centre ray (which makes every label) hits the subject. A
    # pixel only partly covered (mask in (0, 1), the antialiased edge) may have its centre
    # ray on the background, so depth there legitimately belongs to what lies behind.
    fg = mask >= 1.0 - 1e-6
    out = {
        "depth_bad_in_subject": int((~np.isfinite(depth[fg]) | (depth[fg] <= 0)).sum()),
        "normal_unit_err": float(np.abs(np.linalg.norm(normals[fg], axis=-1) - 1).max()) if fg.any() else 0.0,
    }
    if part is not None:
        out["part_out_of_range"] = int(((part < 0) | (part > 24)).sum())
        out["part_bg_inside_mask"] = int((part[erode(mask > 0.99, 1)] == 0).sum())
    if canonical is not None:
        c = canonical[fg]
        out["canonical_out_of_range"] = int(((c < 0) | (c > 1)).sum())
    return out


@dataclass
class QaReport:
    frames: list[dict] = field(default_factory=list)

    def summarize(self) -> dict:
        if not self.frames:
            return {"passed": False, "failures": ["no frames"]}
        agg: dict[str, float] = {}
        seen = sum(f.get("visible_joints", 0) for f in self.frames)
        hits = sum(f.get("visible_joints_hit", 0) for f in self.frames)
        for key in self.frames[0]:
            if key in ("visible_joints", "visible_joints_hit"):
                continue
            vals = np.array([f[key] for f in self.frames], dtype=float)
            vals = vals[np.isfinite(vals)]
            if len(vals):
                worst = vals.min() if key == "silhouette_nearer" else vals.max()
                agg[key] = float(worst if key != "depth_normal_median_deg" else np.median(vals))
        # over the whole video: the fraction of visible joints (all frames) that fall in the mask
        agg["visible_joints_in_mask"] = hits / seen if seen else 1.0
        failures = []
        if agg.get("reprojection_px", 0) > THRESHOLDS["reprojection_px_max"]:
            failures.append("reprojection")
        if agg.get("visible_joints_in_mask", 1) < THRESHOLDS["visible_joints_in_mask_min"]:
            failures.append("joints_in_mask")
        if agg.get("depth_normal_median_deg", 0) > THRESHOLDS["depth_normal_median_deg_max"]:
            failures.append("depth_normal_agreement")
        if agg.get("silhouette_nearer", 1) < THRESHOLDS["silhouette_nearer_min"]:
            failures.append("silhouette_depth_order")
        if agg.get("depth_bad_in_subject", 0) > 0:
            failures.append("depth_invalid_in_subject")
        if agg.get("normal_unit_err", 0) > THRESHOLDS["normal_unit_err_max"]:
            failures.append("normals_not_unit")
        for key in ("part_out_of_range", "part_bg_inside_mask", "canonical_out_of_range"):
            if agg.get(key, 0) > 0:
                failures.append(key)
        return {"passed": not failures, "failures": failures, "figures": agg, "thresholds": THRESHOLDS}


def check_frame(depth, normals, mask, k, r, t, joints_world, joints_2d, visible,
                part=None, canonical=None) -> dict:
    """Figures of one frame. Stored depth uses 0 for "no surface"; here that means infinitely far."""
    depth = np.where(depth > 0, depth, np.inf) if np.any(depth == 0) else depth
    seen, hit = joints_in_mask(joints_2d, visible, mask)
    figures = {
        "reprojection_px": reprojection_error(k, r, t, joints_world, joints_2d),
        "visible_joints": seen,
        "visible_joints_hit": hit,
        "depth_normal_median_deg": depth_normal_agreement(depth, normals, k, mask),
        "silhouette_nearer": silhouette_nearer(depth, mask),
    }
    figures.update(label_invariants(depth, normals, mask, part, canonical))
    return figures
