"""Head landmarks of a baked character at rest: the head top and the COCO face points.

Pure numpy, computed from the rest mesh when a character is animated (so every baked or
imported character gets them without a re-bake), one rule for built-in and imported rigs.
Both ride rigidly with the Head bone afterwards (scene/animate.py).

Head vertices: vertices whose dominant skin weight belongs to the Head bone or a bone below
it (jaw, eyes), garments included (hair is part of the head as a camera sees it).

Head top (H36M `head`): the crown, i.e. the head vertex farthest along the Head bone's rest
axis (head -> tail), averaged over the vertices within `CROWN_CAP_M` of it, then moved
`CROWN_INSET_M` back into the head along that axis. It therefore lies just inside the top of
the head (hair included) and projects inside the subject's silhouette from every side; a
point on the bone or a fixed head length floats above thin heads or sinks into large ones
(built-in bodies: 1.7-3.7 cm above the mesh with the old 0.2 m head-length model).

Face points (COCO nose, eyes, ears): built-in bodies store them in `meta.face_points_rest`
(anny's keypoint regressor on the full body mesh, within ~5 mm of the skin). Other rigs use
the head-frame model of `motion/joints.py` snapped onto the head surface: nose and eyes are
moved straight forward (-Y at rest), ears straight sideways, to the outermost crossing of that
line with the head's triangles, so they are surface points like the annotated ones (the model
alone lands 1-4 cm inside or outside a stylised head).
"""

from __future__ import annotations

import numpy as np

from thfm_synth.assets.characters.format import Character

CROWN_CAP_M = 0.01
CROWN_INSET_M = 0.015
HEAD = "Head"


def head_joints(c: Character) -> np.ndarray:
    """Indices of the Head joint and every joint below it."""
    h = c.joint(HEAD)
    keep = np.zeros(len(c.joint_names), bool)
    keep[h] = True
    for j, p in enumerate(np.asarray(c.joint_parents)):
        if p >= 0 and keep[p]:  # parents come before children
            keep[j] = True
    return np.flatnonzero(keep)


def head_vertices(c: Character) -> np.ndarray:
    """Indices of the vertices whose dominant bone is the head (or a bone below it)."""
    return np.flatnonzero(np.isin(np.asarray(c.skin_indices)[:, 0], head_joints(c)))


def head_axis(c: Character) -> np.ndarray:
    """Unit rest direction of the Head bone (head -> tail): 'up' for the head."""
    axis = np.asarray(c.joint_rest_rotations[c.joint(HEAD)], np.float64)[:, 1]
    return axis / np.linalg.norm(axis)


def head_top_rest(c: Character) -> np.ndarray:
    """(3,) the head top at rest (module docstring), world metres."""
    v = np.asarray(c.vertices, np.float64)[head_vertices(c)]
    if not len(v):
        raise ValueError(f"character {c.meta.get('id', '?')!r} has no vertices skinned to its Head bone")
    axis = head_axis(c)
    height = v @ axis
    cap = v[height >= height.max() - CROWN_CAP_M]
    crown = cap.mean(axis=0)
    crown += (height.max() - crown @ axis) * axis  # on the crown's level, at the cap's centre
    return crown - CROWN_INSET_M * axis


def _ray_exit(origin: np.ndarray, direction: np.ndarray, tri: np.ndarray) -> float | None:
    """Largest t > 0 where origin + t * direction crosses a triangle (Moller-Trumbore), or None."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origin - tri[:, 0]
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    w = (q @ direction) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 0)
    return float(t[hit].max()) if hit.any() else None


def snap_to_head_surface(c: Character, points: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Move rest points (K, 3) along their directions (K, 3) onto the head's outer surface: the
    last crossing of the line through the point with the head's triangles (unchanged if none)."""
    idx = head_vertices(c)
    verts = np.asarray(c.vertices, np.float64)
    inside = np.zeros(len(verts), bool)
    inside[idx] = True
    faces = np.asarray(c.faces)
    tri = verts[faces[inside[faces].all(axis=1)]]
    reach = 2.0 * float(np.ptp(verts[idx], axis=0).max()) if len(idx) else 0.0
    out = np.array(points, np.float64)
    for k, (p, d) in enumerate(zip(out, np.asarray(directions, np.float64))):
        d = d / np.linalg.norm(d)
        t = _ray_exit(p - reach * d, d, tri) if len(tri) else None
        if t is not None:
            out[k] = p + (t - reach) * d
    return out


#: Directions in which each face point is snapped (rest frame: facing -Y, left = +X).
FACE_SNAP_DIRECTIONS = np.array([[0.0, -1, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [-1, 0, 0]])


def face_points_rest(c: Character) -> tuple[np.ndarray, str]:
    """((5, 3) COCO nose, left/right eye, left/right ear at rest, how they were made)."""
    stored = c.meta.get("face_points_rest")
    if stored is not None:
        return np.asarray(stored, np.float64), "regressor"
    from thfm_synth.assets.characters.skinning import motion_skeleton
    from thfm_synth.assets.motion.joints import head_model_face

    sk = motion_skeleton(c)
    model = head_model_face(sk, sk.rest_positions[None], sk.rest_orientations[None])[0]
    return snap_to_head_surface(c, model, FACE_SNAP_DIRECTIONS), "head_model_on_surface"
