"""Ground-truth QA: the exactness checks, as a library run on every rendered video.

Each check takes per-frame arrays in our stored conventions (depth = camera z in metres,
normals = unit vectors in the OpenCV camera frame, mask in [0, 1], joints in pixels)
and returns figures; `check_frame`/`motion_figures`/`QaReport.summarize` turn them into
pass/fail against the thresholds of the dataset config's `qa:` section
(`thfm_synth.config.schema.QaSettings`, documented there with units), recorded in
metadata.json. A video fails when its ground truth is inexact (reprojection, joints outside
the mask, normals vs depth, depth order at the silhouette, label ranges) and when it is not
training data at all: the person is visible in too few frames (or no joint is visible), the
motion is physically implausible (joint speeds or heights: a broken clip), or the background
did not load (pure black or missing-texture magenta). The farm commits such a video but records
it as `qa_failed`; preprocess leaves it out unless asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from thfm_synth.conventions import project

# The defaults of `QaSettings` (kept here too for callers without a config).
THRESHOLDS = {
    "reprojection_px_max": 0.01,  # stored 2D joints vs projected 3D joints
    "visible_joints_in_mask_min": 0.95,  # fraction of visible joints within a pixel of mask > 0.5
    "depth_normal_median_deg_max": 10.0,  # normals from depth gradients vs normal pass
    "silhouette_nearer_min": 0.9,  # subject nearer than what lies just outside its silhouette
    "silhouette_on_depth_edge_min": 0.5,  # the mask's edge lies on depth steps (aligned with the subject)
    "normal_unit_err_max": 1e-2,
    "depth_bad_in_subject_max": 0.05,  # fully covered pixels whose centre ray found no surface, worst frame
    "subject_min_coverage": 0.001,  # mask area / image area for "the person is visible in this frame"
    "visible_frames_min": 0.8,  # fraction of frames where the person is visible
    "root_speed_max_mps": 15.0,
    "joint_speed_max_mps": 50.0,
    "joint_height_m": (-0.5, 5.0),
    "background_failed_max": 0.5,  # fraction of background pixels pure black or magenta, worst frame
    "subject_clipped_max": 0.05,  # fraction of the person's pixels at 8-bit white, worst frame
}


def thresholds_of(settings=None) -> dict:
    """THRESHOLDS overridden by a `QaSettings` (or a dict of some of its fields)."""
    if settings is None:
        return dict(THRESHOLDS)
    values = settings.model_dump() if hasattr(settings, "model_dump") else dict(settings)
    return {**THRESHOLDS, **values}


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
    """(visible joints, how many of them sit within one pixel of where the soft mask > 0.5).

    One pixel of slack because a wrist or ankle of a small or distant person lies in a limb one or
    two pixels wide, whose coverage at the joint's own pixel can be below one half; a joint label
    that is off by more than a pixel still counts as a miss."""
    if not visible.any():
        return 0, 0
    solid = mask > 0.5
    near = solid.copy()
    near[1:] |= solid[:-1]
    near[:-1] |= solid[1:]
    near[:, 1:] |= near[:, :-1].copy()
    near[:, :-1] |= near[:, 1:].copy()
    return int(visible.sum()), int(sample(near, joints_2d[visible]).sum())


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
        m[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
        m[0], m[-1], m[:, 0], m[:, -1] = False, False, False, False
    return m


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


DEPTH_NORMAL_MIN_PIXELS = 400


def depth_normal_agreement(depth, normals, k, mask, erosion: int = 2) -> float:
    """Median angle (deg) between normals derived from depth and the normal pass over the mask interior.

    NaN (no evidence) with fewer than DEPTH_NORMAL_MIN_PIXELS interior pixels: in a tiny frame the
    interior is a few pixels of limbs two or three pixels wide, where finite differences of depth
    say little about the surface (a correct 64x64 render measured 20 deg there, 3-6 deg at 128x128;
    a correct 128x80 render of a dressed body 10.2-11.4 deg over 200-235 interior pixels)."""
    interior = erode(mask > 0.99, erosion)
    if interior.sum() < DEPTH_NORMAL_MIN_PIXELS:
        return float("nan")
    est = normals_from_depth(depth, k)[interior]
    ok = np.isfinite(est).all(-1)  # pixels next to invalid depth are reported by label_invariants
    return float(np.median(angle_deg(est[ok], normals[interior][ok]))) if ok.any() else float("nan")


# On a correct render, normals from depth differences see the flat triangles while the normal
# pass is the smooth shading normal interpolated across them: their median disagreement is
# bounded by the mesh's own shading-vs-facet angle (`shading_facet_deg`; an exact numpy ray-cast
# of built-in bodies decimated to 335-1231 vertices and of the 4k-vertex Quaternius characters at
# 128-480 px measured 0.3-0.78 of it, a 256x160 Cycles render 0.35), plus pixel noise (2-3 deg on dense
# meshes, which the configured limit already covers): 2 deg of margin.
DEPTH_NORMAL_NOISE_DEG = 2.0


# barycentric sample points per triangle: the centres of its 16 sub-triangles at 4 subdivisions
# (uniform over the area, so the median is the one a render's pixels see)
def _uniform_barycentrics(n: int) -> np.ndarray:
    pts = []
    for i in range(n):
        for j in range(n - i):
            pts.append((i + 1 / 3, j + 1 / 3))  # upward sub-triangle centre
            if i + j < n - 1:
                pts.append((i + 2 / 3, j + 2 / 3))  # downward one
    uv = np.array(pts) / n
    return np.column_stack([1 - uv.sum(1), uv])


_FACET_SAMPLES = _uniform_barycentrics(4)


def shading_facet_deg(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Area-weighted median angle (deg) between a mesh's smooth shading normal (corner-angle weighted
    vertex normals, as Blender computes them, interpolated) and its flat triangle normals: what a
    depth-derived normal can differ from the normal pass on a correct render of this mesh when its
    triangles span many pixels. ~5 deg for built-in bodies and the 4k-vertex Quaternius characters,
    10-18 for bodies decimated to 1200-300 vertices; 0 for a flat-shaded mesh."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    tri = v[f]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(fn, axis=1) / 2
    keep = area > 1e-14
    f, tri, fn, area = f[keep], tri[keep], fn[keep], area[keep]
    if not len(f):
        return 0.0
    fn /= (2 * area)[:, None]
    vn = np.zeros_like(v)
    for k in range(3):
        e1, e2 = tri[:, (k + 1) % 3] - tri[:, k], tri[:, (k + 2) % 3] - tri[:, k]
        cos = (e1 * e2).sum(1) / np.maximum(np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1), 1e-30)
        np.add.at(vn, f[:, k], fn * np.arccos(np.clip(cos, -1, 1))[:, None])
    vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-30)
    n = np.einsum("sk,fkc->fsc", _FACET_SAMPLES, vn[f])
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-30)
    ang = np.degrees(np.arccos(np.clip((n * fn[:, None]).sum(-1), -1.0, 1.0))).ravel()
    w = np.repeat(area, len(_FACET_SAMPLES))
    order = np.argsort(ang)
    cum = np.cumsum(w[order])
    return float(ang[order][np.searchsorted(cum, cum[-1] / 2)])


def depth_normal_limit(base_deg: float, facet_deg: float | None) -> float:
    """The depth/normal agreement limit for a mesh: the configured one, raised only where the mesh's
    own facets explain more (a low-poly character, or a hard-edged one shaded smooth): facet angle +
    noise margin. A dense body (facet angle ~5 deg) keeps the configured limit."""
    if facet_deg is None or not np.isfinite(facet_deg):
        return float(base_deg)
    return float(max(base_deg, facet_deg + DEPTH_NORMAL_NOISE_DEG))


SILHOUETTE_MIN_PAIRS = 20
SILHOUETTE_TIE = 0.05  # relative depth step across the silhouette below which a pair is a tie


def silhouette_pairs(depth: np.ndarray, mask: np.ndarray) -> tuple[int, int, int]:
    """(pairs, steps, violations) over the (inside, outside) neighbour pairs across the silhouette:
    `steps` have a depth step of more than SILHOUETTE_TIE (relative) between the two pixels, and
    `violations` are steps where the outside pixel is the nearer one. No surface (sky) is infinitely far."""
    depth = np.where(depth > 0, depth, np.inf)
    inside, outside = mask > 0.99, mask < 0.01
    pairs = steps = violations = 0
    for a, b, da, db in (
        (inside[:, :-1], outside[:, 1:], depth[:, :-1], depth[:, 1:]),
        (inside[:, 1:], outside[:, :-1], depth[:, 1:], depth[:, :-1]),
        (inside[:-1], outside[1:], depth[:-1], depth[1:]),
        (inside[1:], outside[:-1], depth[1:], depth[:-1]),
    ):
        pair = a & b
        da, db = da[pair], db[pair]
        with np.errstate(invalid="ignore"):
            step = ~(np.abs(da - db) <= SILHOUETTE_TIE * np.minimum(da, db))  # inf - x: a step
        pairs += int(pair.sum())
        steps += int(step.sum())
        violations += int((step & (db < da)).sum())
    return pairs, steps, violations


def silhouette_nearer(depth: np.ndarray, mask: np.ndarray) -> float:
    """Across the silhouette, the fraction of neighbour pairs where the outside pixel is not decisively
    nearer than the inside one (silhouette_pairs). Depths within SILHOUETTE_TIE are a tie, not a
    violation: where a foot stands on the floor, the floor just in front of the toe is legitimately a
    hair nearer than the foot (at 160 px height one pixel of sloped floor is a few percent of depth).
    A background drawn in front of the subject is a decisive violation. NaN (no evidence) with fewer
    than SILHOUETTE_MIN_PAIRS pairs: in small frames almost every edge pixel is partly covered (the
    1.5 px filter), and a ratio of 2 of 3 pairs would flag a correct video."""
    pairs, _, violations = silhouette_pairs(depth, mask)
    return 1.0 - violations / pairs if pairs >= SILHOUETTE_MIN_PAIRS else float("nan")


def silhouette_on_depth_edge(depth: np.ndarray, mask: np.ndarray) -> float:
    """The fraction of silhouette pairs that lie on a depth step: a mask aligned with its subject has
    its edge where depth jumps (measured 0.8-0.94 on preview renders: the rest is feet on the floor),
    a mask shifted by even 2 px has it on continuous depth (0.13 on the analytic sphere; 0.01 at 10 px)."""
    pairs, steps, _ = silhouette_pairs(depth, mask)
    return steps / pairs if pairs >= SILHOUETTE_MIN_PAIRS else float("nan")


def label_invariants(depth, normals, mask, part=None, canonical=None) -> dict[str, float]:
    # Fully covered pixels: their centre ray (which makes every label) hits the subject. A
    # pixel only partly covered (mask in (0, 1), the antialiased edge) may have its centre
    # ray on the background, so depth there legitimately belongs to what lies behind.
    # Such a pixel can still have no surface at its centre where the subject has holes finer than a
    # pixel: a hair card's alpha-composited matte counts every sample that passed the card's alpha,
    # while the labels take the first surface with alpha >= its cutoff at the centre (measured: up to
    # ~3% of fully covered pixels on a 128x80 render with long hair). So that is a fraction with a
    # tolerance (a label layer off the subject misses most of them); a non-finite depth never passes.
    fg = mask >= 1.0 - 1e-6
    d = depth[fg]
    surface = fg & np.isfinite(depth) & (depth > 0)
    out = {
        # the stored depth: 0 = no surface; anything not finite or negative is never a valid label
        "depth_bad_in_subject": float((d == 0).mean()) if fg.any() else 0.0,
        "depth_nonfinite_in_subject": int((~np.isfinite(d) | (d < 0)).sum()),
        "normal_unit_err": float(np.abs(np.linalg.norm(normals[surface], axis=-1) - 1).max()) if surface.any() else 0.0,
    }
    if part is not None:
        out["part_out_of_range"] = int(((part < 0) | (part > 24)).sum())
        out["part_bg_inside_mask"] = int((part[erode(mask > 0.99, 1)] == 0).sum())
    if canonical is not None:
        c = canonical[fg]
        out["canonical_out_of_range"] = int(((c < 0) | (c > 1)).sum())
    return out


SUBJECT_CLIP_MIN_PIXELS = 50


def subject_clipped(rgb: np.ndarray, mask: np.ndarray) -> float:
    """The fraction of the person's fully covered pixels with a channel at 8-bit white (254+): a
    blown-out person is a white silhouette, not a person. NaN (no evidence) under
    SUBJECT_CLIP_MIN_PIXELS such pixels."""
    solid = np.asarray(mask) >= 0.99
    if solid.sum() < SUBJECT_CLIP_MIN_PIXELS:
        return float("nan")
    return float((np.asarray(rgb)[solid][:, :3].max(-1) >= 254).mean())


def background_failed(rgb: np.ndarray, mask: np.ndarray, black_is_failure: bool = True) -> float:
    """Fraction of the background (mask < 0.01) that is Blender's missing-texture magenta or, with
    `black_is_failure` (an HDRI background, which lights and fills the whole view), pure black: what a
    texture or HDRI that did not load renders as. (Pure black is legitimate in a 3D scene's dark corners.)"""
    bg = mask < 0.01
    if not bg.any():
        return 0.0
    px = np.asarray(rgb)[bg].astype(np.int16)
    bad = (px[:, 0] >= 250) & (px[:, 1] <= 5) & (px[:, 2] >= 250)
    if black_is_failure:
        bad |= (px <= 0).all(-1)
    return float(bad.mean())


def motion_figures(joints_world: np.ndarray, fps: float) -> dict:
    """Speeds (m/s) and heights (m) of (T, J, 3) world joints; joint 0 is the root (pelvis).
    A broken clip (a jump of metres between frames, a root at 1e30) shows here even when every
    number is finite."""
    j = np.asarray(joints_world, np.float64)
    finite = bool(np.isfinite(j).all())
    out = {"joints_finite": finite}
    if not finite or j.size == 0:
        return {
            **out,
            "root_speed_max_mps": float("inf"),
            "joint_speed_max_mps": float("inf"),
            "joint_height_min_m": float("-inf"),
            "joint_height_max_m": float("inf"),
        }
    speed = np.linalg.norm(np.diff(j, axis=0), axis=-1) * float(fps) if len(j) > 1 else np.zeros((0, j.shape[1]))
    out["root_speed_max_mps"] = float(speed[:, 0].max()) if speed.size else 0.0
    out["joint_speed_max_mps"] = float(speed.max()) if speed.size else 0.0
    out["joint_height_min_m"] = float(j[..., 2].min())
    out["joint_height_max_m"] = float(j[..., 2].max())
    return out


# Per-frame figures where "not finite" is no evidence (nothing to compare), not a failure.
NO_EVIDENCE_IS_NAN = ("depth_normal_median_deg", "silhouette_nearer", "silhouette_on_depth_edge", "subject_clipped")
WORST_IS_LOWEST = ("silhouette_nearer", "silhouette_on_depth_edge")
PER_FRAME_SPECIAL = ("visible_joints", "visible_joints_hit", "subject_coverage", "background_failed")


@dataclass
class QaReport:
    frames: list[dict] = field(default_factory=list)
    motion: dict | None = None  # motion_figures() of the video's joints
    mesh_facet_deg: float | None = None  # shading_facet_deg() of the subject's mesh (raises the limit)

    def summarize(self, settings=None) -> dict:
        th = thresholds_of(settings)
        if not self.frames:
            return {"passed": False, "failures": ["no frames"], "figures": {}, "thresholds": th}
        agg: dict[str, float | None] = {}
        seen = sum(f.get("visible_joints", 0) for f in self.frames)
        hits = sum(f.get("visible_joints_hit", 0) for f in self.frames)
        for key in self.frames[0]:
            if key in PER_FRAME_SPECIAL:
                continue
            vals = np.array([f[key] for f in self.frames], dtype=float)
            if key not in NO_EVIDENCE_IS_NAN and not np.isfinite(vals).all():
                agg[key] = float("inf")  # a non-finite error is the worst error, never a pass
                continue
            vals = vals[np.isfinite(vals)]
            if len(vals):
                worst = vals.min() if key in WORST_IS_LOWEST else vals.max()
                agg[key] = float(worst if key != "depth_normal_median_deg" else np.median(vals))
        failures = []
        # over the whole video: the fraction of visible joints (all frames) that fall in the mask;
        # no visible joint at all is no evidence of a person, and fails
        agg["visible_joints_in_mask"] = hits / seen if seen else None
        if not seen:
            failures.append("no_visible_joints")
        elif agg["visible_joints_in_mask"] < th["visible_joints_in_mask_min"]:
            failures.append("joints_in_mask")
        if "subject_coverage" in self.frames[0]:
            cover = np.array([f["subject_coverage"] for f in self.frames], dtype=float)
            cover = np.where(np.isfinite(cover), cover, 0.0)
            agg["subject_coverage_min"] = float(cover.min())
            agg["visible_frames"] = float((cover >= th["subject_min_coverage"]).mean())
            if agg["visible_frames"] < th["visible_frames_min"]:
                failures.append("person_not_visible")
        if "background_failed" in self.frames[0]:
            agg["background_failed"] = float(max(f["background_failed"] for f in self.frames))
            if agg["background_failed"] > th["background_failed_max"]:
                failures.append("background_not_loaded")
        if agg.get("subject_clipped") is not None and agg["subject_clipped"] > th["subject_clipped_max"]:
            failures.append("subject_overexposed")
        if agg.get("reprojection_px", 0) > th["reprojection_px_max"]:
            failures.append("reprojection")
        limit = depth_normal_limit(th["depth_normal_median_deg_max"], self.mesh_facet_deg)
        if self.mesh_facet_deg is not None:
            agg["mesh_facet_deg"] = float(self.mesh_facet_deg)
            agg["depth_normal_limit_deg"] = limit
        if agg.get("depth_normal_median_deg", 0) > limit:
            failures.append("depth_normal_agreement")
        if agg.get("silhouette_nearer", 1) < th["silhouette_nearer_min"]:
            failures.append("silhouette_depth_order")
        if agg.get("silhouette_on_depth_edge", 1) < th["silhouette_on_depth_edge_min"]:
            failures.append("mask_off_depth_edge")
        if (
            agg.get("depth_bad_in_subject", 0) > th["depth_bad_in_subject_max"]
            or agg.get("depth_nonfinite_in_subject", 0) > 0
        ):
            failures.append("depth_invalid_in_subject")
        if agg.get("normal_unit_err", 0) > th["normal_unit_err_max"]:
            failures.append("normals_not_unit")
        for key in ("part_out_of_range", "part_bg_inside_mask", "canonical_out_of_range"):
            if agg.get(key, 0) > 0:
                failures.append(key)
        if self.motion is not None:
            m = self.motion
            agg.update({k: v for k, v in m.items() if k != "joints_finite"})
            lo, hi = th["joint_height_m"]
            if not m["joints_finite"]:
                failures.append("joints_not_finite")
            elif (
                m["root_speed_max_mps"] > th["root_speed_max_mps"]
                or m["joint_speed_max_mps"] > th["joint_speed_max_mps"]
            ):
                failures.append("implausible_joint_speed")
            if m["joints_finite"] and (m["joint_height_min_m"] < lo or m["joint_height_max_m"] > hi):
                failures.append("implausible_joint_height")
        agg = {k: (v if v is None or np.isfinite(v) else ("inf" if v > 0 else "-inf")) for k, v in agg.items()}
        return {"passed": not failures, "failures": failures, "figures": agg, "thresholds": th}


def check_frame(
    depth,
    normals,
    mask,
    k,
    r,
    t,
    joints_world,
    joints_2d,
    visible,
    part=None,
    canonical=None,
    rgb=None,
    black_is_failure: bool = True,
) -> dict:
    """Figures of one frame. Stored depth uses 0 for "no surface"; here that means infinitely far.
    `rgb` (uint8, optional) adds the background check (`background_failed`)."""
    stored = depth
    depth = np.where(depth > 0, depth, np.inf) if np.any(depth == 0) else depth
    seen, hit = joints_in_mask(joints_2d, visible, mask)
    with np.errstate(invalid="ignore", over="ignore"):
        reproj = reprojection_error(k, r, t, joints_world, joints_2d)
    figures = {
        "reprojection_px": reproj,
        "visible_joints": seen,
        "visible_joints_hit": hit,
        "subject_coverage": float(np.mean(mask)),
        "depth_normal_median_deg": depth_normal_agreement(depth, normals, k, mask),
        "silhouette_nearer": silhouette_nearer(depth, mask),
        "silhouette_on_depth_edge": silhouette_on_depth_edge(depth, mask),
    }
    figures.update(label_invariants(stored, normals, mask, part, canonical))
    if rgb is not None:
        figures["background_failed"] = background_failed(rgb, mask, black_is_failure)
        figures["subject_clipped"] = subject_clipped(rgb, mask)
    return figures
