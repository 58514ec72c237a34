"""A stand-in SMPL-X model file for tests (no real SMPL-X files exist here).

`write_model(folder, gender)` writes `SMPLX_<GENDER>.npz` in the official layout - the real key
names, shapes and dtypes, SMPL-X's 55-joint kinematic tree, shape directions with the expression
directions appended, pose correctives, a dense joint regressor, skinning weights, texture
coordinates, hand means/components and landmark arrays - built from an anny body:

* mesh, UVs and skin weights: anny's default body (MakeHuman topology, A-pose rest), moved into the
  SMPL-X model frame (Y up, facing +Z); its cmu_mb bones map onto SMPL-X joints, hand vertices are
  split between synthetic finger joints by the nearest finger bone;
* J_regressor: per joint, the vertices around it (within k times the distance to the nearest one,
  the k in 2..6 with the smallest total |weight|) with equal weights, plus the smallest correction
  that reproduces the joint exactly (rows sum to 1, weights mostly positive, so joints stay inside
  the body under any shape);
* shapedirs: 6 real shape directions (anny's gender, age, muscle, weight, height, proportions, by
  central differences) + 4 smooth random fields, then 10 expression fields on the face;
* posedirs: smooth, joint-local random correctives (a few mm per unit of R - I).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from thfm_synth.assets.characters.smplx_model import NUM_POSE_BASIS, SMPLX_JOINT_NAMES, SMPLX_PARENTS

# world (Z up, facing -Y) -> SMPL-X model frame (Y up, facing +Z)
WORLD_TO_MODEL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

ANNY_TO_SMPLX = {
    "Hips": "pelvis",
    "LHipJoint": "pelvis",
    "RHipJoint": "pelvis",
    "LowerBack": "spine1",
    "Spine": "spine2",
    "Spine1": "spine3",
    "Neck": "neck",
    "Neck1": "neck",
    "Head": "head",
}
for _s, _x in (("Left", "left"), ("Right", "right")):
    ANNY_TO_SMPLX.update(
        {
            f"{_s}UpLeg": f"{_x}_hip",
            f"{_s}Leg": f"{_x}_knee",
            f"{_s}Foot": f"{_x}_ankle",
            f"{_s}ToeBase": f"{_x}_foot",
            f"{_s}Shoulder": f"{_x}_collar",
            f"{_s}Arm": f"{_x}_shoulder",
            f"{_s}ForeArm": f"{_x}_elbow",
            f"{_s}Hand": f"{_x}_wrist",
            f"{_s}FingerBase": f"{_x}_wrist",
            f"{_s}HandFinger1": f"{_x}_wrist",
            f"{_x[0].upper()}Thumb": f"{_x}_wrist",
        }
    )
FINGERS = ("index", "middle", "pinky", "ring", "thumb")


def _smooth_field(rng, points, centres, sigma, amp, symmetric=False):
    """Sum of Gaussian bumps; symmetric: mirrored across x = 0 (as body shape is)."""
    coef = rng.normal(0, amp, (len(centres), 3))

    def field(p):
        d2 = ((p[:, None, :] - centres[None]) ** 2).sum(-1)
        return np.exp(-d2 / (2 * sigma**2)) @ coef

    if not symmetric:
        return field(points)
    flip = np.array([-1.0, 1.0, 1.0])
    return 0.5 * (field(points) + field(points * flip) * flip)


@functools.lru_cache(maxsize=None)
def _anny_arrays():
    import torch

    from thfm_synth.assets.characters.anny_body import anny_model

    model = anny_model()
    labels = list(model.phenotype_labels)

    def rest(**changes):
        kw = {k: torch.tensor([0.5 + changes.get(k, 0.0)], dtype=torch.float64) for k in labels}
        with torch.no_grad():
            out = model(phenotype_kwargs=kw)
        return out

    base = rest()
    verts = base["rest_vertices"][0].numpy().astype(np.float64)
    heads = base["rest_bone_heads"][0].numpy().astype(np.float64)
    tails = base["rest_bone_tails"][0].numpy().astype(np.float64)
    dirs = []
    for k in labels:
        plus = rest(**{k: 0.12})["rest_vertices"][0].numpy()
        minus = rest(**{k: -0.12})["rest_vertices"][0].numpy()
        dirs.append((plus - minus) / 2.0)
    return dict(
        verts=verts,
        heads=heads,
        tails=tails,
        dirs=np.stack(dirs, -1),
        bones=list(model.bone_labels),
        faces=model.faces.numpy().astype(np.int64),
        uv=model.texture_coordinates.numpy().astype(np.float64),
        face_uv=model.face_texture_coordinate_indices.numpy().astype(np.int64),
        w_idx=model.vertex_bone_indices.numpy().astype(np.int64),
        w_val=model.vertex_bone_weights.numpy().astype(np.float64),
    )


def _finger_joints(heads, tails, bones, side):
    """(15, 3) world positions of the finger joints of one hand, SMPL-X order (index, middle, pinky, ring, thumb)."""
    b = {n: i for i, n in enumerate(bones)}
    s = "Left" if side == "left" else "Right"
    wrist = heads[b[f"{s}Hand"]]
    tip = tails[b[f"{s}HandFinger1"]]
    axis = tip - wrist
    length = np.linalg.norm(axis)
    axis /= length
    lateral = np.cross(axis, [0.0, 0.0, 1.0])
    lateral /= np.linalg.norm(lateral)
    out = []
    for f, off in zip(FINGERS, (1.5, 0.5, -1.5, -0.5, 0.0)):
        if f == "thumb":
            base = wrist + 0.18 * length * axis + 0.03 * lateral * (1 if side == "left" else -1)
            step = 0.13 * length
            d = axis + 0.6 * lateral * (1 if side == "left" else -1)
        else:
            base = wrist + 0.5 * length * axis + 0.018 * off * lateral
            step = 0.17 * length
            d = axis
        d = d / np.linalg.norm(d)
        out += [base, base + step * d, base + 2 * step * d]
    return np.array(out)


def build_arrays(gender: str = "neutral", seed: int = 0) -> dict[str, np.ndarray]:
    """Every array of the model file (float64 like the official files, except posedirs: float32)."""
    a = _anny_arrays()
    rng = np.random.default_rng([seed, len(gender)])
    scale = {"neutral": 1.0, "male": 1.04, "female": 0.95}[gender]
    verts_w = a["verts"] * scale
    heads_w, tails_w = a["heads"] * scale, a["tails"] * scale
    bones = a["bones"]
    b = {n: i for i, n in enumerate(bones)}
    nv = len(verts_w)

    # joints (world)
    jw = np.zeros((55, 3))
    for bone, joint in ANNY_TO_SMPLX.items():
        if joint.endswith("_wrist") and bone not in ("LeftHand", "RightHand"):
            continue
        if bone in ("LHipJoint", "RHipJoint", "Neck1"):
            continue
        jw[SMPLX_JOINT_NAMES.index(joint)] = heads_w[b[bone]]
    head = heads_w[b["Head"]]
    jw[22] = head + np.array([0.0, -0.05, 0.0])  # jaw
    jw[23] = head + np.array([0.032, -0.085, 0.07])
    jw[24] = head + np.array([-0.032, -0.085, 0.07])
    jw[25:40] = _finger_joints(heads_w, tails_w, bones, "left")
    jw[40:55] = _finger_joints(heads_w, tails_w, bones, "right")

    # skin weights: anny bones -> SMPL-X joints; hand weight split by the nearest finger bone
    w = np.zeros((nv, 55))
    for k in range(a["w_idx"].shape[1]):
        joint = np.array([SMPLX_JOINT_NAMES.index(ANNY_TO_SMPLX[bones[i]]) for i in a["w_idx"][:, k]])
        np.add.at(w, (np.arange(nv), joint), a["w_val"][:, k])
    for side, wrist in (("left", 20), ("right", 21)):
        hand = w[:, wrist] > 0
        segs = [(wrist, wrist)] + [
            (j, j + 1) if (j - 25) % 3 < 2 else (j, j) for j in range(25 + 15 * (wrist - 20), 40 + 15 * (wrist - 20))
        ]
        p = verts_w[hand]
        dist = []
        for j0, j1 in segs:
            a0, a1 = jw[j0], jw[j1]
            if j0 == j1:
                a1 = a0 + (a0 - jw[SMPLX_PARENTS[j0]]) * 0.8
            d = a1 - a0
            t = np.clip((p - a0) @ d / max(d @ d, 1e-12), 0, 1)
            dist.append(np.linalg.norm(p - (a0 + t[:, None] * d), axis=1))
        owner = np.array([j for j, _ in segs])[np.argmin(np.stack(dist, 1), 1)]
        moved = w[hand, wrist].copy()
        w[hand, wrist] = 0.0
        w[np.flatnonzero(hand), owner] += moved
    w /= w.sum(1, keepdims=True)

    # J_regressor: exact minimum-norm affine weights of nearby vertices
    jr = np.zeros((55, nv))
    for j in range(55):
        dist = np.linalg.norm(verts_w - jw[j], axis=1)
        best = None
        for k in (2.0, 3.0, 4.0, 5.0, 6.0):
            near = np.flatnonzero(dist <= max(k * dist.min(), 0.02))
            A = np.vstack([verts_w[near].T, np.ones(len(near))])
            w0 = np.full(len(near), 1.0 / len(near))
            rhs = np.append(jw[j], 1.0)
            wr = w0 + A.T @ np.linalg.solve(A @ A.T, rhs - A @ w0)
            if best is None or np.abs(wr).sum() < best[0]:
                best = (np.abs(wr).sum(), near, wr)
        jr[j, best[1]] = best[2]

    to_m = WORLD_TO_MODEL
    v_m = verts_w @ to_m.T
    centres = v_m[rng.choice(nv, 40, replace=False)]
    shape = [(a["dirs"][:, :, k] * scale) @ to_m.T for k in range(a["dirs"].shape[-1])]
    while len(shape) < 10:
        shape.append(_smooth_field(rng, v_m, centres, 0.15, 0.004, symmetric=True))
    face = (w[:, 15] > 0.5) & (verts_w[:, 1] < head[1])
    face_centres = v_m[face][rng.choice(face.sum(), 12, replace=False)] if face.sum() >= 12 else centres[:12]
    expr = [_smooth_field(rng, v_m, face_centres, 0.02, 0.003) * face[:, None] for _ in range(10)]
    shapedirs = np.stack(shape + expr, -1)  # (V, 3, 20): 10 betas + 10 expressions, like SMPL-X v1.1

    posedirs = np.zeros((nv, 3, NUM_POSE_BASIS), np.float32)
    for j in range(1, 55):
        near = w[:, j] + w[:, SMPLX_PARENTS[j]] * 0.3
        for e in range(9):
            posedirs[:, :, 9 * (j - 1) + e] = (near[:, None] * rng.normal(0, 0.004, 3)).astype(np.float32)

    # relaxed hands: a gentle curl of every finger joint about the hand's lateral axis (model frame)
    hands = []
    for side, wrist in (("left", 20), ("right", 21)):
        lat = np.cross(jw[25 + 15 * (wrist - 20) + 3] - jw[wrist], [0.0, 0.0, 1.0])
        lat = to_m @ (lat / np.linalg.norm(lat))
        curl = np.array([0.25, 0.35, 0.3] * 4 + [0.1, 0.2, 0.15])
        hands.append((curl[:, None] * lat[None]).reshape(-1))

    faces = a["faces"]
    kintree = np.stack([np.where(SMPLX_PARENTS < 0, 4294967295, SMPLX_PARENTS), np.arange(55)]).astype(np.int64)
    comps = np.linalg.qr(rng.normal(size=(45, 45)))[0]
    return {
        "v_template": v_m,
        "f": faces.astype(np.uint32),
        "shapedirs": shapedirs,
        "posedirs": posedirs,
        "J_regressor": jr,
        "weights": w,
        "kintree_table": kintree,
        "vt": a["uv"],
        "ft": a["face_uv"].astype(np.uint32),
        "hands_meanl": hands[0],
        "hands_meanr": hands[1],
        "hands_componentsl": comps,
        "hands_componentsr": comps.copy(),
        "hands_coeffsl": rng.normal(size=(30, 45)) * 0.1,
        "hands_coeffsr": rng.normal(size=(30, 45)) * 0.1,
        "lmk_faces_idx": rng.choice(len(faces), 51).astype(np.int64),
        "lmk_bary_coords": np.full((51, 3), 1 / 3),
        "dynamic_lmk_faces_idx": rng.choice(len(faces), (79, 17)).astype(np.int64),
        "dynamic_lmk_bary_coords": np.full((79, 17, 3), 1 / 3),
    }


class _Unpickled:
    """Stands for the pickled dicts (joint2num, part2num) of the official files: unpickling it leaves a mark."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def write_model(folder: str | Path, gender: str = "neutral", pickled_member: Path | None = None) -> Path:
    """Write SMPLX_<GENDER>.npz into `folder`. `pickled_member`: also store a pickled object member
    (as the official files do) whose unpickling would create that marker file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = build_arrays(gender)
    if pickled_member is not None:
        obj = np.empty((), object)
        obj[()] = _Unpickled(Path(pickled_member))
        arrays["joint2num"] = obj
    path = folder / f"SMPLX_{gender.upper()}.npz"
    np.savez(path, **arrays)
    return path
