"""Garment geometry for built-in bodies (pure numpy/scipy).

Two kinds of garment, both skinned with the body's own weights so they follow any pose:

* **offset shells** (tops, trousers/shorts, shoes, hair, beanies): the body faces of a
  region are copied and pushed out along the vertex normals by the garment thickness,
  tapering to a quarter of it on the shell's border ring (so hems hug the skin). A shell
  vertex keeps the weights, UVs and body-part label of the body vertex it came from.
  Regions are cut with coordinates along the limbs (`arm_s`, `leg_s`: 0 at the shoulder /
  hip joint, 1 at the wrist / ankle), the torso (`torso_h`: 0 at the pelvis joint, 1 at
  the base of the neck) and angles about the head centre (hairlines);
* **skirts**: a flared tube from the waist to the hem, wide enough to enclose both legs
  at rest, whose weights are the nearest body vertex's weights averaged around each ring
  (so the cloth stretches between the legs instead of tearing).

Body faces entirely under an opaque garment are removed by the caller (nothing can see
them and they would poke through under skinning).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.spatial import ConvexHull, cKDTree

from thfm_synth.assets.characters.labels import SEGMENT_NAMES

SEG = {n: i for i, n in enumerate(SEGMENT_NAMES)}


@dataclass
class GarmentPiece:
    name: str  # top, bottom, skirt, shoes, hair, headwear
    material: int
    vertices: np.ndarray  # (n, 3)
    faces: np.ndarray  # (m, 3) indices into this piece's vertices
    uv: np.ndarray  # (u, 2)
    face_uv: np.ndarray  # (m, 3) indices into this piece's uv
    skin_indices: np.ndarray  # (n, K)
    skin_weights: np.ndarray  # (n, K)
    surface_source: np.ndarray  # (n,) body vertex under each garment vertex
    covers: np.ndarray | None = None  # (V_body,) bool: body vertices hidden under it (None: hides nothing)
    info: dict = field(default_factory=dict)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # area-weighted
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def _adjacency(faces: np.ndarray, n: int) -> sp.csr_matrix:
    f = np.asarray(faces, np.int64)
    i = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    j = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    return sp.csr_matrix((np.ones(len(i), np.float32), (i, j)), shape=(n, n))


@dataclass
class BodyFrame:
    """Everything the region rules need about a rest-pose body."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    segment: np.ndarray  # (V,) segment index
    arm_s: np.ndarray  # (V,) NaN off the arms
    leg_s: np.ndarray  # (V,) NaN off the legs
    torso_h: np.ndarray  # (V,) along the pelvis -> neck axis, for every vertex
    head_el: np.ndarray  # (V,) elevation (deg) about the head centre
    head_az: np.ndarray  # (V,) |azimuth| (deg) from the front
    joints: dict[str, np.ndarray]
    main: np.ndarray  # (V,) bool: vertex of the main skin surface (not eyes / tongue)


def _chain_param(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Position along the polyline a -> b -> c in [0, 1] by arc length (first: on segment a-b)."""
    l1, l2 = np.linalg.norm(b - a), np.linalg.norm(c - b)
    t1 = (p - a) @ ((b - a) / l1)
    t2 = (p - b) @ ((c - b) / l2)
    return np.where(first, t1, l1 + t2) / (l1 + l2)


def body_frame(
    vertices: np.ndarray,
    faces: np.ndarray,
    segment: np.ndarray,
    joint_names: list[str],
    joint_heads: np.ndarray,
    joint_tails: np.ndarray,
    main: np.ndarray,
) -> BodyFrame:
    v = np.asarray(vertices, np.float64)
    jh = {n: np.asarray(joint_heads[i], np.float64) for i, n in enumerate(joint_names)}
    jt = {n: np.asarray(joint_tails[i], np.float64) for i, n in enumerate(joint_names)}
    nv = len(v)
    arm_s = np.full(nv, np.nan)
    leg_s = np.full(nv, np.nan)
    for side, x in (("Left", "L"), ("Right", "R")):
        sel = np.isin(segment, [SEG[f"upper_arm_{x}"], SEG[f"lower_arm_{x}"], SEG[f"hand_{x}"]])
        arm_s[sel] = _chain_param(
            v[sel], jh[f"{side}Arm"], jh[f"{side}ForeArm"], jh[f"{side}Hand"], segment[sel] == SEG[f"upper_arm_{x}"]
        )
        arm_s[sel & (segment == SEG[f"hand_{x}"])] = np.maximum(arm_s[sel & (segment == SEG[f"hand_{x}"])], 1.0)
        sel = np.isin(segment, [SEG[f"upper_leg_{x}"], SEG[f"lower_leg_{x}"], SEG[f"foot_{x}"]])
        leg_s[sel] = _chain_param(
            v[sel], jh[f"{side}UpLeg"], jh[f"{side}Leg"], jh[f"{side}Foot"], segment[sel] == SEG[f"upper_leg_{x}"]
        )
        foot = sel & (segment == SEG[f"foot_{x}"])
        leg_s[foot] = np.maximum(leg_s[foot], 1.0)
    hips, neck = jh["Hips"], jh["Neck"]
    axis = neck - hips
    torso_h = (v - hips) @ axis / float(axis @ axis)
    # head centre ~ at ear level: a little above the head joint, midway front-to-back of the skull
    skull = (np.asarray(segment) == SEG["head"]) & np.asarray(main, bool) & (v[:, 2] >= jh["Head"][2])
    crown = float(v[skull, 2].max())
    hc = np.array(
        [jh["Head"][0], 0.5 * (v[skull, 1].min() + v[skull, 1].max()), jh["Head"][2] + 0.12 * (crown - jh["Head"][2])]
    )
    rel = v - hc
    dist = np.maximum(np.linalg.norm(rel, axis=1), 1e-9)
    el = np.degrees(np.arcsin(np.clip(rel[:, 2] / dist, -1, 1)))
    az = np.degrees(np.abs(np.arctan2(rel[:, 0], -rel[:, 1])))
    return BodyFrame(
        v,
        np.asarray(faces, np.int64),
        vertex_normals(v, faces),
        np.asarray(segment),
        arm_s,
        leg_s,
        torso_h,
        el,
        az,
        {**jh, **{f"{k}.tail": t for k, t in jt.items()}},
        np.asarray(main, bool),
    )


def _shell(
    name: str,
    material: int,
    frame: BodyFrame,
    region: np.ndarray,
    thickness: np.ndarray | float,
    uv: np.ndarray,
    face_uv: np.ndarray,
    skin_indices: np.ndarray,
    skin_weights: np.ndarray,
    opaque: bool = True,
    extra_offset: np.ndarray | None = None,
    smooth: int = 0,
) -> GarmentPiece | None:
    region = region & frame.main
    fsel = np.flatnonzero(region[frame.faces].all(axis=1))
    if len(fsel) == 0:
        return None
    faces = frame.faces[fsel]
    used = np.unique(faces)
    remap = np.full(len(frame.vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    # border ring (vertices on an edge used by one shell face) and its neighbours get a thinner offset
    adj = _adjacency(faces, len(frame.vertices))
    edges = sp.triu(adj, 1).tocoo()  # symmetric edge counts: 2 = interior edge, 1 = border edge
    border = np.zeros(len(frame.vertices), bool)
    single = edges.data < 1.5
    border[edges.row[single]] = True
    border[edges.col[single]] = True
    ring1 = (adj @ border.astype(np.float32)) > 0
    thick = np.broadcast_to(np.asarray(thickness, np.float64), (len(frame.vertices),)).copy()
    scale = np.where(border, 0.25, np.where(ring1, 0.6, 1.0))
    offset = frame.normals * (thick * scale)[:, None]
    if extra_offset is not None:
        offset = offset + extra_offset
    verts = frame.vertices[used] + offset[used]
    if smooth:  # Taubin smoothing fills concavities (toes, ears) without shrinking; hems stay put
        a = adj[used][:, used]
        a.data[:] = 1.0
        deg = np.asarray(a.sum(axis=1)).ravel()
        free = ~border[used]
        for _ in range(smooth):
            for lam in (0.5, -0.53):
                avg = (a @ verts) / np.maximum(deg, 1)[:, None]
                verts[free] += lam * (avg[free] - verts[free])
        # never closer to the skin than half the thickness
        n = frame.normals[used]
        gap = np.einsum("ij,ij->i", verts - frame.vertices[used], n)
        want = 0.5 * thick[used] * scale[used]
        verts += np.maximum(want - gap, 0.0)[:, None] * n
    return GarmentPiece(
        name=name,
        material=material,
        vertices=verts,
        faces=remap[faces],
        uv=np.asarray(uv),
        face_uv=np.asarray(face_uv)[fsel],
        skin_indices=np.asarray(skin_indices)[used],
        skin_weights=np.asarray(skin_weights)[used],
        surface_source=used,
        covers=region if opaque else None,
        info={"kind": "shell", "vertices": int(len(used)), "faces": int(len(fsel))},
    )


def _seg_in(frame: BodyFrame, *names: str) -> np.ndarray:
    return np.isin(frame.segment, [SEG[n] for n in names])


def top_region(frame: BodyFrame, sleeve: float, hem: float, tank: bool, clavicle_dominant: np.ndarray) -> np.ndarray:
    # the hem is a plane across the trunk (torso and the tops of the thighs), never below the hips
    torso = _seg_in(frame, "torso", "upper_leg_L", "upper_leg_R") & (frame.torso_h >= max(hem, -0.05))
    if tank:
        torso &= ~clavicle_dominant
    arms = np.nan_to_num(frame.arm_s, nan=9.0) <= sleeve
    return torso | arms


def bottom_region(frame: BodyFrame, leg: float, waist_h: float) -> np.ndarray:
    torso = _seg_in(frame, "torso") & (frame.torso_h <= waist_h)
    legs = np.nan_to_num(frame.leg_s, nan=9.0) <= leg
    return torso | legs


def shoe_region(frame: BodyFrame, ankle: float) -> np.ndarray:
    return np.nan_to_num(frame.leg_s, nan=-9.0) >= ankle


def hair_region(frame: BodyFrame, front: float, side: float, back: float, down_back: bool = False) -> np.ndarray:
    az = frame.head_az
    thr = np.where(az <= 90, front + (side - front) * az / 90.0, side + (back - side) * (az - 90.0) / 90.0)
    region = _seg_in(frame, "head") & (frame.head_el >= thr)
    if down_back:  # long hair lying on the upper back
        neck = frame.joints["Neck"]
        region |= _seg_in(frame, "torso") & (frame.torso_h >= 0.72) & (frame.vertices[:, 1] > neck[1] + 0.02)
    return region


def _ring_smooth(w: np.ndarray, half_width: int) -> np.ndarray:
    """Circular moving average along axis 1 of (rings, around, J)."""
    acc = np.zeros_like(w)
    for k in range(-half_width, half_width + 1):
        acc += np.roll(w, k, axis=1)
    return acc / (2 * half_width + 1)


def skirt_piece(
    frame: BodyFrame,
    material: int,
    hem_s: float,
    flare: float,
    thickness: float,
    skin_indices: np.ndarray,
    skin_weights: np.ndarray,
    num_joints: int,
    waist_h: float,
    n_around: int = 64,
    n_rings: int = 14,
) -> GarmentPiece:
    """A flared tube from the waist (torso_h = waist_h) down to leg position hem_s."""
    v = frame.vertices
    jh = frame.joints
    hips, neck = jh["Hips"], jh["Neck"]
    z_top = float(hips[2] + waist_h * (neck[2] - hips[2]))
    # hem height along the mean of both legs' hip -> knee -> ankle lines
    zs = []
    for side in ("Left", "Right"):
        a, b, c = jh[f"{side}UpLeg"], jh[f"{side}Leg"], jh[f"{side}Foot"]
        l1, l2 = np.linalg.norm(b - a), np.linalg.norm(c - b)
        d = hem_s * (l1 + l2)
        zs.append(a[2] + (b[2] - a[2]) * d / l1 if d <= l1 else b[2] + (c[2] - b[2]) * (d - l1) / l2)
    z_hem = float(np.mean(zs))
    trunk = frame.main & ~_seg_in(
        frame, "upper_arm_L", "upper_arm_R", "lower_arm_L", "lower_arm_R", "hand_L", "hand_R", "head"
    )
    pts = v[trunk]
    near_top = pts[np.abs(pts[:, 2] - z_top) < 0.02]
    cx, cy = near_top[:, 0].mean(), near_top[:, 1].mean()
    phi = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    dirs = np.stack([np.cos(phi), np.sin(phi)], 1)
    ring_z = np.linspace(z_top, z_hem, n_rings)
    radii = np.zeros((n_rings, n_around))
    for k, z in enumerate(ring_z):
        band = pts[np.abs(pts[:, 2] - z) < 0.015]
        if len(band) == 0:
            radii[k] = radii[k - 1] if k else 0.15
            continue
        rel = band[:, :2] - [cx, cy]
        r = np.linalg.norm(rel, axis=1)
        ang = np.arctan2(rel[:, 1], rel[:, 0])
        # support-function style extent: the farthest body point within +-20 degrees of each direction
        cosd = np.cos(ang[None, :] - phi[:, None])
        proj = np.where(cosd > np.cos(np.radians(20)), r[None, :] * cosd, 0.0)
        radii[k] = proj.max(axis=1)
    radii = np.maximum.accumulate(radii, axis=0)  # never narrower below
    depth = (ring_z[0] - ring_z) / max(ring_z[0] - ring_z[-1], 1e-6)
    radii = radii + thickness + 0.006 + flare * depth[:, None] ** 1.2
    for _ in range(3):  # smooth around each ring
        radii = (np.roll(radii, 1, 1) + 2 * radii + np.roll(radii, -1, 1)) / 4
    verts = np.zeros((n_rings, n_around, 3))
    verts[..., 0] = cx + radii * dirs[None, :, 0]
    verts[..., 1] = cy + radii * dirs[None, :, 1]
    verts[..., 2] = ring_z[:, None]
    verts = verts.reshape(-1, 3)
    # faces: quads between rings, split in two; outward when seen from outside (counter-clockwise)
    r_i, a_i = np.meshgrid(np.arange(n_rings - 1), np.arange(n_around), indexing="ij")
    v00 = r_i * n_around + a_i
    v01 = r_i * n_around + (a_i + 1) % n_around
    v10 = v00 + n_around
    v11 = v01 + n_around
    faces = np.concatenate([np.stack([v00, v10, v11], -1).reshape(-1, 3), np.stack([v00, v11, v01], -1).reshape(-1, 3)])
    # UVs: a seam at phi = 0 needs a duplicated column
    uu, vv = np.meshgrid(np.linspace(0, 1, n_around + 1), np.linspace(1, 0, n_rings), indexing="xy")
    uv = np.stack([uu, vv], -1).reshape(-1, 2)
    uv_of = lambda r, a: r * (n_around + 1) + a  # noqa: E731
    a_next = a_i + 1
    f_uv = np.concatenate(
        [
            np.stack([uv_of(r_i, a_i), uv_of(r_i + 1, a_i), uv_of(r_i + 1, a_next)], -1).reshape(-1, 3),
            np.stack([uv_of(r_i, a_i), uv_of(r_i + 1, a_next), uv_of(r_i, a_next)], -1).reshape(-1, 3),
        ]
    )
    # weights: nearest trunk vertex, averaged around each ring
    tree = cKDTree(pts)
    trunk_idx = np.flatnonzero(trunk)
    _, nn = tree.query(verts)
    src = trunk_idx[nn]
    dense = np.zeros((len(verts), num_joints))
    rows = np.repeat(np.arange(len(verts)), skin_indices.shape[1])
    np.add.at(dense, (rows, np.asarray(skin_indices)[src].ravel()), np.asarray(skin_weights)[src].ravel())
    dense = dense.reshape(n_rings, n_around, num_joints)
    dense = _ring_smooth(dense, max(1, n_around // 16)).reshape(-1, num_joints)
    k = skin_indices.shape[1]
    top_k = np.argsort(-dense, axis=1)[:, :k]
    wk = np.take_along_axis(dense, top_k, 1)
    return GarmentPiece(
        name="skirt",
        material=material,
        vertices=verts,
        faces=faces,
        uv=uv,
        face_uv=f_uv,
        skin_indices=top_k,
        skin_weights=wk,
        surface_source=src,
        covers=None,
        info={
            "kind": "skirt",
            "z_top": round(z_top, 4),
            "z_hem": round(z_hem, 4),
            "vertices": int(len(verts)),
            "faces": int(len(faces)),
        },
    )


def hull_piece(
    name: str,
    material: int,
    frame: BodyFrame,
    region: np.ndarray,
    thickness: float,
    sole_m: float,
    skin_indices: np.ndarray,
    skin_weights: np.ndarray,
) -> GarmentPiece | None:
    """A closed convex shell around a region (shoes: no toes show through), skinned by nearest vertex."""
    region = region & frame.main
    idx = np.flatnonzero(region)
    if len(idx) < 8:
        return None
    pts = frame.vertices[idx]
    hull = ConvexHull(pts)
    hv_src = idx[hull.vertices]
    remap = np.full(len(pts), -1, np.int64)
    remap[hull.vertices] = np.arange(len(hull.vertices))
    faces = remap[hull.simplices]
    verts = pts[hull.vertices].copy()
    centre = verts.mean(axis=0)
    tri = verts[faces]
    fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    flip = np.einsum("ij,ij->i", fn, tri.mean(axis=1) - centre) < 0
    faces[flip] = faces[flip][:, ::-1]
    vn = vertex_normals(verts, faces)
    verts = verts + thickness * vn
    down = np.clip((-vn[:, 2] - 0.3) / 0.5, 0.0, 1.0)
    verts[:, 2] -= sole_m * down
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    uv = ((verts[:, :2] - lo[:2]) / np.maximum(hi[:2] - lo[:2], 1e-9)).astype(np.float32)
    return GarmentPiece(
        name=name,
        material=material,
        vertices=verts,
        faces=faces,
        uv=uv,
        face_uv=faces.copy(),
        skin_indices=np.asarray(skin_indices)[hv_src],
        skin_weights=np.asarray(skin_weights)[hv_src],
        surface_source=hv_src,
        covers=region,
        info={"kind": "hull", "vertices": int(len(verts)), "faces": int(len(faces))},
    )


def sole_offset(frame: BodyFrame, region: np.ndarray, sole_m: float) -> np.ndarray:
    """Push the downward-facing part of a shoe shell further down by the sole thickness."""
    down = np.clip((-frame.normals[:, 2] - 0.3) / 0.5, 0.0, 1.0) * region
    off = np.zeros_like(frame.vertices)
    off[:, 2] = -sole_m * down
    return off


def build_garments(
    app: dict,
    frame: BodyFrame,
    uv: np.ndarray,
    face_uv: np.ndarray,
    skin_indices: np.ndarray,
    skin_weights: np.ndarray,
    joint_names: list[str],
    material_index: dict[str, int],
) -> list[GarmentPiece]:
    """Every garment piece of the appearance `app` (see appearance.sample_appearance)."""
    pieces: list[GarmentPiece | None] = []
    dominant = np.asarray(skin_indices)[:, 0]
    clav = np.isin(dominant, [joint_names.index(n) for n in ("LeftShoulder", "RightShoulder") if n in joint_names])
    waist_h = 0.3
    bottom = app["bottom"]
    pieces.append(
        _shell(
            "bottom",
            material_index["bottom"],
            frame,
            bottom_region(frame, bottom["leg"], waist_h),
            bottom["thickness_m"],
            uv,
            face_uv,
            skin_indices,
            skin_weights,
        )
    )
    if bottom["type"] == "skirt":
        from thfm_synth.assets.characters.appearance import SKIRT_LENGTHS

        hem = SKIRT_LENGTHS[bottom["skirt_length"]]
        pieces.append(
            skirt_piece(
                frame,
                material_index["bottom"],
                hem,
                bottom["flare"],
                bottom["thickness_m"],
                skin_indices,
                skin_weights,
                len(joint_names),
                waist_h=waist_h - 0.05,
            )
        )
    top = app["top"]
    pieces.append(
        _shell(
            "top",
            material_index["top"],
            frame,
            top_region(frame, top["sleeve"], top["hem"], top["type"] == "tank", clav),
            top["thickness_m"],
            uv,
            face_uv,
            skin_indices,
            skin_weights,
        )
    )
    shoes = app["shoes"]
    if shoes["type"] != "barefoot":
        # the foot (below the ankle joint) as a convex shell; a boot adds a shaft shell up the shin
        foot = shoe_region(frame, 0.985)
        for x in ("L", "R"):
            side = foot & _seg_in(frame, f"lower_leg_{x}", f"foot_{x}")
            pieces.append(
                hull_piece(
                    "shoes",
                    material_index["shoes"],
                    frame,
                    side,
                    shoes["thickness_m"],
                    shoes["sole_m"],
                    skin_indices,
                    skin_weights,
                )
            )
        if shoes["ankle"] < 0.95:
            shaft = shoe_region(frame, shoes["ankle"]) & ~_seg_in(frame, "foot_L", "foot_R")
            pieces.append(
                _shell(
                    "shoes",
                    material_index["shoes"],
                    frame,
                    shaft,
                    shoes["thickness_m"],
                    uv,
                    face_uv,
                    skin_indices,
                    skin_weights,
                )
            )
    from thfm_synth.assets.characters.appearance import HAIR

    hair = HAIR[app["hair"]["style"]]
    headwear = app["headwear"]["type"]
    if hair is not None:
        front, side, back, thick = hair
        region = hair_region(frame, front, side, back, down_back=app["hair"]["style"] == "long")
        pieces.append(
            _shell(
                "hair", material_index["hair"], frame, region, thick, uv, face_uv, skin_indices, skin_weights, smooth=6
            )
        )
    if headwear == "beanie":
        under = hair[3] if hair is not None else 0.0
        pieces.append(
            _shell(
                "headwear",
                material_index["headwear"],
                frame,
                hair_region(frame, 44.0, 22.0, -8.0),
                under + 0.008,
                uv,
                face_uv,
                skin_indices,
                skin_weights,
            )
        )
    return [p for p in pieces if p is not None]
