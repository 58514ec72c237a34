"""Analytic test scenes and their exact ground truth (pure numpy).

- `labelled_sphere_npz`: a sphere as a `mesh_npz` with DensePose-style labels whose true value
  at any surface point is known in closed form (part = octant, part UV = the octant's
  longitude/latitude chart, canonical = (p / r + 1) / 2).
- `mannequin_npz`: a human-sized figure of labelled ellipsoids (24 parts) - a stand-in
  subject for size and speed measurements until real characters are plugged in.
- `analytic_scene` / `raycast`: a sphere on a plane seen by a known camera, and the exact
  per-pixel depth, normal and object id from ray-sphere / ray-plane intersection at pixel
  centres (the pixel (u, v) centre is (u + 0.5, v + 0.5), see `thfm_synth.conventions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.conventions import intrinsics, look_at
from thfm_synth.render.description import (
    Camera,
    Light,
    Material,
    Object,
    RenderSettings,
    SceneDescription,
    World,
    pose_matrix,
)
from thfm_synth.render.meshes import icosphere


def octant_part(p: np.ndarray) -> np.ndarray:
    """Part 1..8 of unit-sphere points by octant: 1 + (x<0) + 2 (y<0) + 4 (z<0)."""
    return 1 + (p[..., 0] < 0) + 2 * (p[..., 1] < 0) + 4 * (p[..., 2] < 0)


def octant_uv(p: np.ndarray, part: np.ndarray) -> np.ndarray:
    """The chart of octant `part` at unit-sphere points p: U = longitude, V = |latitude|, both /90 deg."""
    q = part - 1
    sx = np.where(q & 1, -1.0, 1.0)
    sy = np.where(q & 2, -1.0, 1.0)
    sz = np.where(q & 4, -1.0, 1.0)
    lon = np.arctan2(sy * p[..., 1], sx * p[..., 0])  # 0..pi/2 inside the octant
    lat = np.arcsin(np.clip(sz * p[..., 2], -1.0, 1.0))  # 0..pi/2 inside the octant
    return np.stack([lon / (np.pi / 2), lat / (np.pi / 2)], axis=-1)


def labelled_sphere_arrays(radius: float = 0.5, levels: int = 6) -> dict[str, np.ndarray]:
    v, f = icosphere(levels)
    centroid = v[f].mean(axis=1)
    face_part = octant_part(centroid)
    corner_uv = np.clip(octant_uv(v[f], face_part[:, None]), 0.0, 1.0)
    lonlat = np.stack([np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi) + 0.5, np.arcsin(v[:, 2]) / np.pi + 0.5], 1)
    return {
        "vertices": (v * radius).astype(np.float32),
        "faces": f.astype(np.int32),
        "uv": lonlat.astype(np.float32),
        "face_uv": f.astype(np.int32),
        "face_part": face_part.astype(np.uint8),
        "corner_part_uv": corner_uv.astype(np.float32),
        "vertex_canonical": ((v + 1.0) / 2.0).astype(np.float32),
        "canonical_min": np.full(3, -radius, np.float32),
        "canonical_max": np.full(3, radius, np.float32),
    }


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


# ----------------------------------------------------------------------- mannequin
# (centre xyz, semi-axes xyz, part front/left, part back/right) - facing -Y, metres, feet at z=0
_MANNEQUIN = (
    ((0.0, 0.0, 1.22), (0.17, 0.11, 0.30), 2, 1),  # torso
    ((0.0, 0.0, 1.65), (0.09, 0.11, 0.12), 24, 23),  # head (left/right)
    ((0.24, 0.0, 1.32), (0.05, 0.05, 0.16), 15, 17),  # left upper arm
    ((-0.24, 0.0, 1.32), (0.05, 0.05, 0.16), 16, 18),  # right upper arm
    ((0.27, -0.02, 1.02), (0.04, 0.04, 0.15), 19, 21),  # left lower arm
    ((-0.27, -0.02, 1.02), (0.04, 0.04, 0.15), 20, 22),  # right lower arm
    ((0.28, -0.03, 0.82), (0.035, 0.05, 0.08), 4, 4),  # left hand
    ((-0.28, -0.03, 0.82), (0.035, 0.05, 0.08), 3, 3),  # right hand
    ((0.1, 0.0, 0.72), (0.08, 0.08, 0.22), 10, 8),  # left upper leg
    ((-0.1, 0.0, 0.72), (0.08, 0.08, 0.22), 9, 7),  # right upper leg
    ((0.1, 0.0, 0.30), (0.06, 0.06, 0.22), 14, 12),  # left lower leg
    ((-0.1, 0.0, 0.30), (0.06, 0.06, 0.22), 13, 11),  # right lower leg
    ((0.1, -0.05, 0.04), (0.05, 0.12, 0.04), 5, 5),  # left foot
    ((-0.1, -0.05, 0.04), (0.05, 0.12, 0.04), 6, 6),  # right foot
)


def mannequin_arrays(levels: int = 4) -> dict[str, np.ndarray]:
    """A 1.77 m figure of 14 labelled ellipsoids, parts numbered as in `characters.labels`."""
    unit_v, unit_f = icosphere(levels)
    verts, faces, parts, puv, can = [], [], [], [], []
    for i, (c, a, front, back) in enumerate(_MANNEQUIN):
        v = unit_v * a + c
        f = unit_f + sum(len(x) for x in verts)
        cen = unit_v[unit_f].mean(axis=1)
        is_head = i == 1
        first = cen[:, 0] > 0 if is_head else cen[:, 1] < 0
        part = np.where(first, front, back)
        # chart: U = angle around the vertical axis over the half, V = height, both in [0, 1]
        ang = np.arctan2(unit_v[unit_f][..., 0], -unit_v[unit_f][..., 1]) / np.pi  # -1..1, 0 at front
        u = np.clip(np.where(first[:, None], ang + 0.5, np.mod(ang + 2.0, 2.0) - 0.5), 0, 1)
        vv = (unit_v[unit_f][..., 2] + 1) / 2
        verts.append(v)
        faces.append(f)
        parts.append(part)
        puv.append(np.stack([u, vv], -1))
    v = np.concatenate(verts)
    lo, hi = v.min(axis=0), v.max(axis=0)
    can = (v - lo) / (hi - lo)
    f = np.concatenate(faces)
    return {
        "vertices": v.astype(np.float32),
        "faces": f.astype(np.int32),
        "uv": can[:, :2].astype(np.float32),
        "face_uv": f.astype(np.int32),
        "face_part": np.concatenate(parts).astype(np.uint8),
        "corner_part_uv": np.concatenate(puv).astype(np.float32),
        "vertex_canonical": can.astype(np.float32),
        "canonical_min": lo.astype(np.float32),
        "canonical_max": hi.astype(np.float32),
    }


# ----------------------------------------------------------------------- the analytic scene
@dataclass(frozen=True)
class SphereGT:
    name: str
    centre: np.ndarray
    radius: float
    instance: int


def analytic_scene(
    folder: str | Path,
    width: int = 160,
    height: int = 96,
    num_frames: int = 1,
    samples: int = 16,
    seed: int = 0,
    denoise: bool = True,
    fx_over_fy: float = 1.0,
    principal_offset_px: tuple[float, float] = (0.0, 0.0),
    subject_shift_per_frame: float = 0.0,
) -> tuple[SceneDescription, list[list[SphereGT]]]:
    """A labelled subject sphere (mesh_npz, r = 0.5, resting on z = 0) and a plain primitive sphere
    on a 20 m ground plane (z = 0), lit by a sun and a uniform sky; the camera circles 5 deg per
    frame. With `subject_shift_per_frame` the subject moves along +X by baked vertex animation.
    fx_over_fy and principal_offset_px make non-square pixels and an off-centre principal point.

    Returns (the description, saved in `folder`; per frame the spheres' ground truth).
    """
    folder = Path(folder)
    sphere = labelled_sphere_arrays(0.5, 6)
    write_npz(folder / "subject_sphere.npz", sphere)
    k = intrinsics(50.0, 36.0, width, height)
    k[1, 1] = k[0, 0] / fx_over_fy
    k[0, 2] += principal_offset_px[0]
    k[1, 2] += principal_offset_px[1]
    rs, ts = [], []
    for i in range(num_frames):
        ang = np.radians(-10.0 + 5.0 * i)
        eye = np.array([4.2 * np.sin(ang), -4.2 * np.cos(ang), 1.3])
        r, t = look_at(eye, np.array([0.25, 0.0, 0.45]))
        rs.append(r)
        ts.append(t)
    centre = np.array([0.0, 0.0, 0.5])
    ball = SphereGT("ball", np.array([0.95, 0.55, 0.3]), 0.3, 3)
    shifts = [np.array([subject_shift_per_frame * i, 0.0, 0.0]) for i in range(num_frames)]
    truth = [[SphereGT("subject", centre + s, 0.5, 2), ball] for s in shifts]
    extra, anim_key = {}, None
    if subject_shift_per_frame:
        anim_key = "subject_vertices"
        extra[anim_key] = np.stack([sphere["vertices"] + s.astype(np.float32) for s in shifts])
    desc = SceneDescription(
        camera=Camera(k=k, r=np.array(rs), t=np.array(ts), width=width, height=height),
        objects=[
            Object(
                "ground",
                "plane",
                size=(20.0, 20.0, 0.0),
                instance=1,
                materials=[
                    Material(
                        "ground",
                        (0.45, 0.45, 0.45),
                        roughness=0.8,
                        checker_color=(0.15, 0.15, 0.15),
                        checker_scale=40.0,
                    )
                ],
            ),
            Object(
                "subject",
                "mesh_npz",
                pose=pose_matrix(translation=centre),
                mesh_path="subject_sphere.npz",
                vertex_animation_key=anim_key,
                subject=True,
                instance=2,
                materials=[Material("skin", (0.7, 0.35, 0.25), roughness=0.4)],
            ),
            Object(
                "ball",
                "sphere",
                pose=pose_matrix(translation=ball.centre),
                radius=ball.radius,
                instance=3,
                materials=[Material("ball", (0.1, 0.3, 0.8), roughness=0.2)],
            ),
        ],
        world=World(kind="color", color=(0.4, 0.5, 0.7), strength=1.0),
        lights=[Light("sun", position=(3.0, -2.0, 6.0), target=(0.0, 0.0, 0.0), power_w=3.0, size_m=2.0)],
        render=RenderSettings(samples=samples, denoise=denoise),
        seed=seed,
        extra_arrays=extra,
    )
    desc.save(folder)
    return desc, truth


def pixel_rays(
    k: np.ndarray, r: np.ndarray, t: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera centre (3,), world ray directions (H,W,3) with camera-frame z = 1, camera-frame rays (H,W,3)."""
    u, v = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pix = np.stack([u, v, np.ones_like(u)], axis=-1)
    d_cam = pix @ np.linalg.inv(k).T
    d_cam /= d_cam[..., 2:3]
    return -r.T @ t, d_cam @ r, d_cam


def raycast(
    k,
    r,
    t,
    width,
    height,
    spheres: list[SphereGT],
    plane_z: float | None = 0.0,
    plane_half_size: float = 10.0,
    plane_instance: int = 1,
) -> dict[str, np.ndarray]:
    """Exact depth (camera z, 0 = miss), camera-frame unit normal, world hit point and instance per pixel."""
    c, d, _ = pixel_rays(k, r, t, width, height)
    best = np.full((height, width), np.inf)
    inst = np.zeros((height, width), np.int32)
    normal = np.zeros((height, width, 3))
    for s in spheres:
        oc = c - s.centre
        b = d @ oc
        a = np.einsum("hwi,hwi->hw", d, d)
        disc = b * b - a * (oc @ oc - s.radius**2)
        ok = disc >= 0
        z = np.where(ok, (-b - np.sqrt(np.where(ok, disc, 0))) / a, np.inf)
        z = np.where(z > 0, z, np.inf)
        closer = z < best
        best = np.where(closer, z, best)
        inst = np.where(closer, s.instance, inst)
        n = (c + d * np.where(np.isfinite(z), z, 0)[..., None] - s.centre) / s.radius
        normal = np.where(closer[..., None], n, normal)
    if plane_z is not None:
        z = np.where(np.abs(d[..., 2]) > 1e-12, (plane_z - c[2]) / np.where(d[..., 2] == 0, 1, d[..., 2]), np.inf)
        hit = c + d * np.where(np.isfinite(z), z, 0)[..., None]
        inside = (np.abs(hit[..., 0]) <= plane_half_size) & (np.abs(hit[..., 1]) <= plane_half_size)
        z = np.where((z > 0) & inside, z, np.inf)
        closer = z < best
        best = np.where(closer, z, best)
        inst = np.where(closer, plane_instance, inst)
        normal = np.where(closer[..., None], np.array([0.0, 0.0, 1.0 if c[2] > plane_z else -1.0]), normal)
    hit = c + d * np.where(np.isfinite(best), best, 0)[..., None]
    depth = np.where(np.isfinite(best), best, 0.0)
    return {"depth": depth, "normal": normal @ r.T, "point": hit, "instance": inst}


def mannequin_scene(
    folder: str | Path,
    width: int = 832,
    height: int = 480,
    num_frames: int = 3,
    samples: int = 16,
    seed: int = 0,
    hdri: str | Path | None = None,
    denoise: bool = True,
    framing: str = "full_body",
) -> SceneDescription:
    """A representative frame for size and speed measurements: the labelled mannequin on a
    textured ground under an HDRI (or a procedural sky when `hdri` is None), the camera orbiting
    2 degrees per frame. framing "full_body": the figure fills ~70% of the image height (about
    5% of the pixels); "upper_body": hips to head fill the frame (about 25% of the pixels)."""
    distance, target_z = {"full_body": (5.8, 0.9), "upper_body": (2.4, 1.3)}[framing]
    folder = Path(folder)
    write_npz(folder / "mannequin.npz", mannequin_arrays(4))
    k = intrinsics(50.0, 36.0, width, height)
    rs, ts = [], []
    for i in range(num_frames):
        ang = np.radians(20.0 + 2.0 * i)
        eye = np.array([distance * np.sin(ang), -distance * np.cos(ang), 1.3])
        r, t = look_at(eye, np.array([0.0, 0.0, target_z]))
        rs.append(r)
        ts.append(t)
    world = (
        World(kind="hdri", hdri_path=str(Path(hdri).resolve()), rotation_deg=30.0)
        if hdri
        else World(
            kind="sky", sky_model="MULTIPLE_SCATTERING", sun_elevation_deg=35.0, sun_azimuth_deg=-60.0, strength=0.3
        )
    )
    desc = SceneDescription(
        camera=Camera(k=k, r=np.array(rs), t=np.array(ts), width=width, height=height),
        objects=[
            Object(
                "ground",
                "plane",
                size=(30.0, 30.0, 0.0),
                materials=[
                    Material(
                        "ground", (0.35, 0.33, 0.3), roughness=0.9, checker_color=(0.2, 0.19, 0.17), checker_scale=60.0
                    )
                ],
            ),
            Object(
                "person",
                "mesh_npz",
                mesh_path="mannequin.npz",
                subject=True,
                materials=[Material("cloth", (0.5, 0.25, 0.15), roughness=0.6)],
            ),
        ],
        world=world,
        lights=[
            Light(
                "area",
                position=(2.0, -3.0, 3.5),
                target=(0.0, 0.0, 1.0),
                power_w=300.0,
                size_m=1.0,
                temperature_k=5500.0,
            )
        ],
        render=RenderSettings(samples=samples, denoise=denoise),
        seed=seed,
    )
    desc.save(folder)
    return desc
