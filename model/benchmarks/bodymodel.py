"""Joint positions of SMPL / SMPL-X bodies from their parameters (numpy; the ground truth of EMDB and RICH).

The benchmarks ship body-model *parameters*, not joints, and the body models are licensed
separately (smpl.is.tue.mpg.de, smpl-x.is.tue.mpg.de), so the user points ``--body-model DIR`` at
their copy, as ``.npz`` files (``np.load(..., allow_pickle=False)``):

    DIR/SMPL_NEUTRAL.npz, SMPL_MALE.npz, SMPL_FEMALE.npz        (EMDB)
    DIR/SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, SMPLX_FEMALE.npz     (RICH; the SMPL-X site ships these .npz)

with arrays ``v_template`` (V, 3), ``shapedirs`` (V, 3, B) (SMPL-X: 300 shape then 100 expression
directions), ``J_regressor`` (J, V) dense and ``kintree_table`` (2, J) (row 0: parents, -1 or 2^32-1
for the root). The SMPL .pkl files hold the same arrays (chumpy/scipy objects); convert them once
with the body model's own tools, e.g. with the ``smplx`` package loaded: ``np.savez(out,
v_template=m.v_template, shapedirs=m.shapedirs, J_regressor=m.J_regressor.toarray(),
kintree_table=m.kintree_table)``.

Joints only need the shaped rest skeleton and forward kinematics: ``J = J_regressor (v_template +
shapedirs . betas)`` then each joint's world transform is its parent's times its own rotation
(axis-angle, Rodrigues) about its rest position; the root is translated by ``transl``. Pose-dependent
blend shapes move vertices, not these joints, so they are not needed. This is exactly the
``joints[:, :J]`` output of the reference SMPL/SMPL-X layers (``smplx`` package).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

GENDERS = ("neutral", "male", "female")


def rodrigues(aa: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    aa = np.asarray(aa, np.float64)
    theta = np.linalg.norm(aa, axis=-1, keepdims=True)
    k = aa / np.maximum(theta, 1e-12)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    kmat = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape(*aa.shape[:-1], 3, 3)
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), kmat.shape)
    return eye + s * kmat + (1 - c) * (kmat @ kmat)


@dataclasses.dataclass
class BodyModel:
    v_template: np.ndarray
    shapedirs: np.ndarray
    j_regressor: np.ndarray
    parents: np.ndarray
    name: str = ""

    @classmethod
    def load(cls, path: str | Path) -> "BodyModel":
        path = Path(path)
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("v_template", "shapedirs", "J_regressor", "kintree_table") if k not in z.files]
            if missing:
                raise ValueError(f"{path} lacks {missing}; see model/benchmarks/bodymodel.py for the expected arrays")
            parents = z["kintree_table"][0].astype(np.int64)
            parents[parents > len(parents)] = -1  # uint32 max marks the root
            parents[0] = -1
            return cls(
                z["v_template"].astype(np.float64),
                z["shapedirs"].astype(np.float64),
                z["J_regressor"].astype(np.float64),
                parents,
                path.stem,
            )

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    def rest_joints(
        self, betas: np.ndarray, expression: np.ndarray | None = None, expr_offset: int = 300
    ) -> np.ndarray:
        """(J, 3) joints of the shaped template (betas (n,), optional SMPL-X expression)."""
        betas = np.asarray(betas, np.float64).reshape(-1)
        n = min(len(betas), self.shapedirs.shape[-1])
        v = self.v_template + self.shapedirs[..., :n] @ betas[:n]
        if expression is not None and self.shapedirs.shape[-1] > expr_offset:
            e = np.asarray(expression, np.float64).reshape(-1)
            m = min(len(e), self.shapedirs.shape[-1] - expr_offset)
            v = v + self.shapedirs[..., expr_offset : expr_offset + m] @ e[:m]
        return self.j_regressor @ v

    def joints(
        self,
        pose: np.ndarray,
        betas: np.ndarray,
        transl: np.ndarray | None = None,
        expression: np.ndarray | None = None,
    ) -> np.ndarray:
        """pose (N, J', 3) axis-angle for the first J' joints in the model's order (the rest: identity),
        betas (n,) -> (N, J, 3) posed joints (world frame of the parameters)."""
        pose = np.asarray(pose, np.float64)
        pose = pose.reshape(pose.shape[0], -1, 3)
        n_frames, j = pose.shape[0], self.num_joints
        full = np.zeros((n_frames, j, 3))
        full[:, : min(j, pose.shape[1])] = pose[:, :j]
        rot = rodrigues(full)  # (N, J, 3, 3)
        rest = self.rest_joints(betas, expression)
        g_rot = np.zeros((n_frames, j, 3, 3))
        g_pos = np.zeros((n_frames, j, 3))
        for i in range(j):
            p = self.parents[i]
            if p < 0:
                g_rot[:, i] = rot[:, i]
                g_pos[:, i] = rest[i]
            else:
                g_rot[:, i] = g_rot[:, p] @ rot[:, i]
                g_pos[:, i] = g_pos[:, p] + np.einsum("nij,j->ni", g_rot[:, p], rest[i] - rest[p])
        if transl is not None:
            g_pos = g_pos + np.asarray(transl, np.float64).reshape(n_frames, 1, 3)
        return g_pos


def find_model(folder: str | Path | None, family: str, gender: str, benchmark: str) -> Path:
    """``folder/{SMPL,SMPLX}_{GENDER}.npz`` (falling back to NEUTRAL) or a one-line FileNotFoundError."""
    if folder is None:
        raise FileNotFoundError(
            f"{benchmark}: its ground truth is {family} parameters; pass --body-model DIR with "
            f"{family}_NEUTRAL.npz (and _MALE/_FEMALE) from {family.lower()}.is.tue.mpg.de, see "
            "model/benchmarks/bodymodel.py"
        )
    folder = Path(folder)
    for g in (gender.upper(), "NEUTRAL"):
        p = folder / f"{family}_{g}.npz"
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"{benchmark}: {folder / f'{family}_{gender.upper()}.npz'} not found (nor "
        f"{family}_NEUTRAL.npz); see model/benchmarks/bodymodel.py for the expected files"
    )


__all__ = ["BodyModel", "rodrigues", "find_model", "GENDERS"]
