"""Numpy forward kinematics and linear blend skinning of a baked character (Blender's conventions).

Pose convention (the same as `blender_scripts/character_load.py`): per joint j a unit
quaternion q_j = (w, x, y, z), the pose bone's `rotation_quaternion`, i.e. the rotation
relative to the rest pose expressed in the bone's own rest frame; plus the world position
of the root joint's head. With the rest bone-to-world matrices B_j = [R_j | head_j]:

    P_root = B_root @ [Q_root | R_root^T (root_world - head_root)]
    P_j    = P_parent @ (B_parent^-1 @ B_j) @ [Q_j | 0]
    v'     = sum_j w_vj (P_j @ B_j^-1) v

`local_rotations_from_world` converts world-frame rotation deltas D_j (posed bone rotation
= D_j @ R_j, what a retargeter naturally produces) into these local quaternions:
Q_j = R_j^T D_parent^T D_j R_j.
"""

from __future__ import annotations

import numpy as np

from thfm_synth.assets.characters.format import Character


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) w,x,y,z quaternions with w >= 0."""
    m = np.asarray(m, np.float64)
    tr = np.trace(m, axis1=-2, axis2=-1)
    cands = np.stack(
        [
            np.stack(
                [1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1
            ),
            np.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    1 + 2 * m[..., 0, 0] - tr,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                ],
                -1,
            ),
            np.stack(
                [
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 0, 1] + m[..., 1, 0],
                    1 + 2 * m[..., 1, 1] - tr,
                    m[..., 1, 2] + m[..., 2, 1],
                ],
                -1,
            ),
            np.stack(
                [
                    m[..., 1, 0] - m[..., 0, 1],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 + 2 * m[..., 2, 2] - tr,
                ],
                -1,
            ),
        ],
        -2,
    )
    diag = np.stack([tr, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def rest_matrices(c: Character) -> np.ndarray:
    """(J, 4, 4) rest bone-to-world matrices."""
    b = np.tile(np.eye(4), (len(c.joint_names), 1, 1))
    b[:, :3, :3] = c.joint_rest_rotations
    b[:, :3, 3] = c.joint_heads
    return b


def forward_kinematics(c: Character, quats: np.ndarray, root_world: np.ndarray | None = None) -> np.ndarray:
    """Posed bone-to-world matrices (..., J, 4, 4) for quats (..., J, 4) and root_world (..., 3)."""
    quats = np.asarray(quats, np.float64)
    lead = quats.shape[:-2]
    b = rest_matrices(c)
    parents = np.asarray(c.joint_parents)
    basis = np.broadcast_to(np.eye(4), (*lead, len(parents), 4, 4)).copy()
    basis[..., :3, :3] = quat_to_matrix(quats)
    if root_world is not None:
        basis[..., 0, :3, 3] = (np.asarray(root_world, np.float64) - b[0, :3, 3]) @ b[0, :3, :3]
    out = np.empty_like(basis)
    out[..., 0, :, :] = b[0] @ basis[..., 0, :, :]
    inv_b = np.linalg.inv(b)
    for j in range(1, len(parents)):
        p = parents[j]
        out[..., j, :, :] = out[..., p, :, :] @ (inv_b[p] @ b[j]) @ basis[..., j, :, :]
    return out


def skinning_matrices(c: Character, posed: np.ndarray) -> np.ndarray:
    return posed @ np.linalg.inv(rest_matrices(c))


def linear_blend_skinning(c: Character, posed: np.ndarray) -> np.ndarray:
    """(..., V, 3) skinned vertices for posed bone matrices (..., J, 4, 4)."""
    if np.ndim(posed) == 4:  # (F, J, 4, 4): the same sums, in frame chunks (~10x faster, little memory)
        return skin_vertices(c, posed)
    s = skinning_matrices(c, posed)
    v = np.asarray(c.vertices, np.float64)
    idx = np.asarray(c.skin_indices, np.int64)
    w = np.asarray(c.skin_weights, np.float64)
    m = (s[..., idx, :3, :] * w[..., None, None]).sum(-3)  # (..., V, 3, 4)
    return np.einsum("...vij,vj->...vi", m[..., :3], v) + m[..., 3]


def local_rotations_from_world(c: Character, deltas: np.ndarray) -> np.ndarray:
    """World rotation deltas D (..., J, 3, 3) -> local pose quaternions (..., J, 4)."""
    d = np.asarray(deltas, np.float64)
    r = np.asarray(c.joint_rest_rotations, np.float64)
    parents = np.asarray(c.joint_parents)
    dp = np.concatenate([np.broadcast_to(np.eye(3), d[..., :1, :, :].shape), d[..., parents[1:], :, :]], axis=-3)
    local = np.swapaxes(r, -1, -2) @ np.swapaxes(dp, -1, -2) @ d @ r
    return matrix_to_quat(local)


def motion_skeleton(c: Character, name: str | None = None):
    """The character's skeleton as a `thfm_synth.assets.motion.skeleton.Skeleton` (retarget target).

    Same joints, order and rest frames, so a retargeted clip's `local_rotations` and
    `root_translation` are exactly `forward_kinematics`' / `character_load.animate`'s inputs.
    """
    from thfm_synth.assets.motion.skeleton import Skeleton

    heads = np.asarray(c.joint_heads, np.float64)
    parents = np.asarray(c.joint_parents)
    offsets = heads.copy()
    offsets[1:] = heads[1:] - heads[parents[1:]]
    return Skeleton(
        tuple(c.joint_names),
        parents,
        offsets,
        matrix_to_quat(c.joint_rest_rotations),
        name or str(c.meta.get("id", "character")),
    )


def skin_vertices(
    c: Character, posed: np.ndarray, vertex_index: np.ndarray | None = None, chunk: int = 16
) -> np.ndarray:
    """(F, V', 3) skinned vertices (all, or `vertex_index`) for posed bone matrices (F, J, 4, 4),
    in frame chunks so memory stays small (linear_blend_skinning holds (F, V, K, 3, 4))."""
    s = skinning_matrices(c, posed)[..., :3, :]  # (F, J, 3, 4)
    sel = slice(None) if vertex_index is None else np.asarray(vertex_index)
    v = np.asarray(c.vertices, np.float64)[sel]
    vh = np.concatenate([v, np.ones((len(v), 1))], axis=1)
    idx = np.asarray(c.skin_indices, np.int64)[sel]
    w = np.asarray(c.skin_weights, np.float64)[sel]
    used = [np.flatnonzero(w[:, k] > 0) for k in range(idx.shape[1])]  # padded influences skipped
    out = np.empty((s.shape[0], len(v), 3))
    for a in range(0, s.shape[0], chunk):
        part = s[a : a + chunk]
        acc = np.zeros((part.shape[0], len(v), 3))
        for k, nz in enumerate(used):
            acc[:, nz] += w[nz, k, None] * np.einsum("fvij,vj->fvi", part[:, idx[nz, k]], vh[nz])
        out[a : a + chunk] = acc
    return out


def ground_surface(c: Character):
    """The `surface` callback of motion.retarget for this character: posed with local rotations
    (F, J, 4) and the root joint at the origin, (F, 3) the lowest z of its left and right soles
    (vertices whose dominant bone is a foot or toe bone or below them, shoes included) and of
    its whole mesh."""
    names = list(c.joint_names)
    parents = np.asarray(c.joint_parents)
    dom = np.asarray(c.skin_indices, np.int64)[:, 0]
    sides = []
    for side in ("Left", "Right"):
        foot = np.zeros(len(names), bool)
        for j, n in enumerate(names):
            foot[j] = n in (side + "Foot", side + "ToeBase") or (parents[j] >= 0 and foot[parents[j]])
        sides.append(np.flatnonzero(foot[dom]))

    v = np.asarray(c.vertices, np.float64)
    vh = np.concatenate([v, np.ones((len(v), 1))], axis=1)
    idx = np.asarray(c.skin_indices, np.int64)
    w = np.asarray(c.skin_weights, np.float64)
    inv_rest = np.linalg.inv(rest_matrices(c))
    used = [np.flatnonzero(w[:, k] > 0) for k in range(idx.shape[1])]

    def surface(local_rotations: np.ndarray) -> np.ndarray:
        posed = forward_kinematics(c, local_rotations, np.zeros((local_rotations.shape[0], 3)))
        rows = np.einsum("fjk,jkl->fjl", posed[..., 2, :], inv_rest)  # z row of each skinning matrix
        z = np.zeros((len(rows), len(v)))
        for k, nz in enumerate(used):  # only z: a third of full skinning; padded influences skipped
            z[:, nz] += w[nz, k] * np.einsum("fvl,vl->fv", rows[:, idx[nz, k]], vh[nz])
        body = z.min(axis=1)
        soles = [z[:, v].min(axis=1) if len(v) else body for v in sides]
        return np.stack(soles + [body], axis=1)

    return surface
