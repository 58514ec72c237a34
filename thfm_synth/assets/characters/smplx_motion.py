"""SMPL-X characters in motion: the retargeted clip as SMPL-X parameters, posed by the model itself.

A baked SMPL-X character (smplx_body.py) is retargeted like every other rig (motion/retarget.py)
onto its 55-joint skeleton. `smplx_motion(character, clip)` then

1. puts the fingers in the character's natural hand pose (the clip leaves them at rest: CMU
   hands are rigid) and the jaw and eyes at rest, in the clip itself, so the skeleton, the
   parameters and the mesh agree;
2. converts each frame to SMPL-X parameters. With M the model-to-world rotation and D_j the
   world rotation of bone j away from its rest (G_j B_j^-1 from forward kinematics):
   local joint rotations L_j = M^T D_parent^T D_j M; global orientation (world frame) D_0 M;
   translation (world frame) = pelvis position - J0, J0 the shaped model's rest pelvis joint;
3. rounds every rotation through its axis-angle vector (what is stored) and poses the mesh with
   SMPL-X's own forward pass (smplx_model.SmplxModel.forward: shape, expression and pose-corrective
   blend shapes, LBS with the model's exact weights), so the stored parameters reproduce the
   rendered body vertices. Garment vertices are skinned with the same joint transforms (and the
   corrective offset of the body vertex under them).

The parameters are "world frame" ones: `smplx.SMPLX(..., use_pca=False, flat_hand_mean=True)` called
with them returns world coordinates (Z up) directly. `SmplxMotion.annotations(placement, R, t)`
re-expresses them after the scene placement and in each frame's camera frame (OpenCV), see
video/annotations.py for the stored keys.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from thfm_synth.assets.characters.format import Character
from thfm_synth.assets.characters.smplx_model import (
    BODY_JOINTS,
    FACE_VERTEX_IDS,
    JAW,
    LEFT_HAND,
    LEYE,
    NUM_JOINTS,
    REYE,
    RIGHT_HAND,
    SMPL24_FROM_SMPLX,
    SMPLX_JOINT_NAMES,
    SmplxModel,
    axis_angle,
    load_model_file,
    rodrigues,
)
from thfm_synth.errors import UserError
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.joints import SMPL24_NAMES
from thfm_synth.assets.motion.skeleton import MotionClip

MODEL_DIR_ENV = "THFM_SMPLX_MODEL_DIR"
HAND_JOINTS = np.r_[LEFT_HAND, RIGHT_HAND]


def is_smplx(character: Character) -> bool:
    return character.meta.get("generator") == "smplx" and "smplx" in character.meta


def character_model(character: Character) -> SmplxModel:
    """The model file a character was baked with ($THFM_SMPLX_MODEL_DIR overrides its folder), sha256-checked."""
    info = character.meta["smplx"]
    path = Path(info["model_file"])
    override = os.environ.get(MODEL_DIR_ENV)
    if override:
        path = Path(override).expanduser() / path.name
    if not path.is_file() and not override:
        raise UserError(
            f"SMPL-X character {character.meta.get('id')!r} needs its model file {path}, which is missing",
            f"set {MODEL_DIR_ENV} to the folder that holds {path.name} (sha256 {info['model_sha256'][:12]}...)",
        )
    return load_model_file(path, info["gender"], info["model_sha256"])


@dataclasses.dataclass(frozen=True, eq=False)
class SmplxMotion:
    """Per-frame SMPL-X parameters of an animated character (world frame before scene placement)."""

    model: SmplxModel
    betas: np.ndarray  # (10,)
    expression: np.ndarray  # (10,)
    rotations: np.ndarray  # (F, 55, 3, 3): joint 0 = global orientation (world), others local, exact axis-angle
    transl: np.ndarray  # (F, 3) world
    vertices: np.ndarray  # (F, V_all, 3) float64: body (first V_body) + garments, world
    num_body_vertices: int

    @property
    def rest_pelvis(self) -> np.ndarray:
        return self.model.shaped(self.betas, self.expression)[1][0]

    def body_vertices(self) -> np.ndarray:
        return self.vertices[:, : self.num_body_vertices]

    def regressor_joints(self, body_vertices: np.ndarray) -> dict[str, np.ndarray]:
        """{"smplx55": (F, 55, 3), "smpl24": (F, 24, 3)}: the model's J_regressor applied to posed vertices."""
        j55 = self.model.regress(body_vertices)
        return {"smplx55": j55, "smpl24": j55[:, SMPL24_FROM_SMPLX]}

    def face_points(self) -> np.ndarray | None:
        """(F, 5, 3) COCO face points at the official topology's vertices (None for another mesh)."""
        if not self.model.official_topology:
            return None
        return self.body_vertices()[:, FACE_VERTEX_IDS]

    def parameters(self, rotation: np.ndarray, translation: np.ndarray, frame: str) -> dict[str, np.ndarray]:
        """Global orientation and translation after X' = rotation X + translation (per frame or one)."""
        r = np.broadcast_to(np.asarray(rotation, np.float64), (len(self.transl), 3, 3))
        t = np.broadcast_to(np.asarray(translation, np.float64), (len(self.transl), 3))
        j0 = self.rest_pelvis
        go = r @ self.rotations[:, 0]
        tr = np.einsum("fij,fj->fi", r, j0 + self.transl) + t - j0
        return {f"smplx_global_orient_{frame}": axis_angle(go), f"smplx_transl_{frame}": tr}

    def annotations(self, placement: np.ndarray, cam_r: np.ndarray, cam_t: np.ndarray) -> dict[str, np.ndarray]:
        """The SMPL-X arrays of annotations.npz (keys documented in video/annotations.py)."""
        nf = len(self.transl)
        placement = np.asarray(placement, np.float64)
        world = self.parameters(placement[:3, :3], placement[:3, 3], "world")
        # camera frame: compose the world-to-camera transform with the placement
        r_c = np.asarray(cam_r, np.float64) @ placement[:3, :3]
        t_c = np.einsum("fij,j->fi", np.asarray(cam_r, np.float64), placement[:3, 3]) + np.asarray(cam_t, np.float64)
        cam = self.parameters(r_c, t_c, "cam")
        aa = axis_angle(self.rotations)
        return {
            "smplx_gender": np.array(self.model.gender),
            "smplx_model_file": np.array(self.model.path.name),
            "smplx_model_sha256": np.array(self.model.sha256),
            "smplx_num_vertices": np.array(self.num_body_vertices, np.int64),
            "smplx_betas": np.asarray(self.betas, np.float64),
            "smplx_expression": np.tile(np.asarray(self.expression, np.float64), (nf, 1)),
            **world,
            **cam,
            "smplx_body_pose": aa[:, BODY_JOINTS],
            "smplx_jaw_pose": aa[:, JAW],
            "smplx_leye_pose": aa[:, LEYE],
            "smplx_reye_pose": aa[:, REYE],
            "smplx_left_hand_pose": aa[:, LEFT_HAND],
            "smplx_right_hand_pose": aa[:, RIGHT_HAND],
        }

    def metadata(self) -> dict:
        return {
            "model": "smplx",
            "model_file": self.model.path.name,
            "model_sha256": self.model.sha256,
            "gender": self.model.gender,
            "num_betas": len(self.betas),
            "num_expression": len(self.expression),
            "num_body_vertices": self.num_body_vertices,
            "usage": "smplx.SMPLX(model_path, gender=smplx_gender, use_pca=False, flat_hand_mean=True, "
            "num_betas=10, num_expression_coeffs=10) with the *_world (or *_cam) orientation and "
            "translation reproduces the rendered body vertices (the first smplx_num_vertices of the "
            "mesh) in that frame",
            "joints": {
                "smplx55": "J_regressor @ posed mesh (SMPL-X joint order)",
                "smpl24": "J_regressor @ posed mesh: SMPL-X joints 0-21, left_index1, right_index1",
            },
        }


def _set_rest_detail(character: Character, clip: MotionClip, hand_pose: np.ndarray, m: np.ndarray) -> MotionClip:
    """The clip with the fingers in `hand_pose` (model-local axis-angle, (2, 15, 3)) and jaw/eyes at rest."""
    rest = np.asarray(character.joint_rest_rotations, np.float64)  # B_j, world
    local = np.asarray(clip.local_rotations).copy()
    want = np.zeros((NUM_JOINTS, 3))
    want[LEFT_HAND], want[RIGHT_HAND] = hand_pose[0], hand_pose[1]
    idx = np.r_[JAW, LEYE, REYE, HAND_JOINTS]
    # our local rotation of joint j: Q_j = B_j^T (D_p^T D_j) B_j with D_p^T D_j = M L_j M^T
    q = np.swapaxes(rest[idx], -1, -2) @ m @ rodrigues(want[idx]) @ m.T @ rest[idx]
    local[:, idx] = quat.from_matrix(q)[None]
    return dataclasses.replace(clip, local_rotations=local)


def smplx_motion(character: Character, clip: MotionClip) -> tuple[MotionClip, SmplxMotion]:
    """(the clip with natural hands, its SMPL-X parameters and posed mesh); see the module doc."""
    from scipy.spatial import cKDTree

    if list(clip.skeleton.names) != list(character.joint_names):
        raise ValueError("the clip must be retargeted onto this character's skeleton")
    info = character.meta["smplx"]
    model = character_model(character)
    nvb = int(info["num_body_vertices"])
    if model.num_vertices != nvb:
        raise UserError(
            f"SMPL-X character {character.meta.get('id')!r} has {nvb} body vertices, the model file "
            f"{model.path} {model.num_vertices}",
            "bake the character again with this model file",
        )
    w_from_m = np.asarray(info["world_from_model"], np.float64)
    m, s = w_from_m[:3, :3], w_from_m[:3, 3]
    betas, expression = np.asarray(info["betas"]), np.asarray(info["expression"])
    clip = _set_rest_detail(character, clip, np.asarray(info["hand_pose"], np.float64), m)

    _, g = clip.forward_kinematics()  # global bone rotations (F, J, 4)
    rest = np.asarray(character.joint_rest_rotations, np.float64)
    d = quat.to_matrix(g) @ np.swapaxes(rest, -1, -2)  # D_j = G_j B_j^-1
    parents = np.asarray(character.joint_parents)
    rot = np.empty_like(d)
    rot[:, 0] = d[:, 0] @ m
    rot[:, 1:] = m.T @ np.swapaxes(d[:, parents[1:]], -1, -2) @ d[:, 1:] @ m
    rot = rodrigues(axis_angle(rot))  # exactly what the stored axis-angle parameters give
    _, rest_joints = model.shaped(betas, expression)
    transl = np.asarray(clip.root_translation, np.float64) - rest_joints[0]

    verts = np.asarray(character.vertices, np.float64)
    garment = np.arange(len(verts)) >= nvb
    extra = extra_w = src = None
    if garment.any():
        rest_model = (verts[:nvb] - s) @ m  # the baked rest body in the model frame (float32-rounded)
        extra = (verts[garment] - s) @ m
        src = cKDTree(rest_model).query(extra)[1]  # the body vertex under each garment vertex
        extra_w = np.zeros((int(garment.sum()), NUM_JOINTS))
        si = np.asarray(character.skin_indices, np.int64)[garment]
        sw = np.asarray(character.skin_weights, np.float64)[garment]
        np.add.at(extra_w, (np.repeat(np.arange(len(si)), si.shape[1]), si.ravel()), sw.ravel())
    out = model.forward(betas, expression, rot, transl, extra, extra_w, src)
    posed = np.empty((len(rot), len(verts), 3))
    posed[:, :nvb] = out["vertices"]
    if extra is not None:
        posed[:, garment] = out["extra"]
    return clip, SmplxMotion(model, betas, expression, rot, transl, posed, nvb)


def smplx_joint_names() -> dict[str, tuple[str, ...]]:
    return {"smplx55": SMPLX_JOINT_NAMES, "smpl24": SMPL24_NAMES}
