"""annotations.npz: cameras and joints of every frame (npz, allow_pickle=False).

Keys (F frames, K joints of a convention c in smpl24 / h36m17 / coco17, and smplx55 for SMPL-X
characters):
  K (F,3,3) float64                 intrinsics, pixels (OpenCV, pixel (0,0) = top-left corner)
  R (F,3,3), t (F,3) float64        world-to-camera: X_cam = R X_world + t
  joint_names_<c> (K,) str          names in the convention's order
  joints3d_world_<c> (F,K,3) f64    metres, world frame (Z up)
  joints3d_cam_<c> (F,K,3) f64      metres, OpenCV camera frame
  joints2d_<c> (F,K,2) f64          pixels, the projection of joints3d_world_<c> with K, R, t
  visibility_<c> (F,K) uint8        0 visible, 1 outside the image, 2 occluded by the subject
                                    itself, 3 occluded by the scene, 4 occluded by another person
                                    (depth test, scene/visibility.py; nose, eyes and ears are tested as
                                    skin points, 2-3 cm tolerance)
  bbox (F,4) float32                subject box x0, y0, x1, y1 in pixels from the soft mask
                                    (> 0.5); NaN in frames where the subject is not visible

Videos with several people (config `people`): the keys above are person 1's (the subject the
camera frames: the keypoint targets of training are its); every person, the subject first, is in
  people_instance (P,) int64               object id of each person in instance.png
  people_character_id, people_motion_id (P,) str
  people_joints3d_world_<c>, people_joints3d_cam_<c> (P,F,K,3), people_joints2d_<c> (P,F,K,2),
  people_visibility_<c> (P,F,K) uint8, people_bbox (P,F,4)   as above, per person (each person's own
                                    mask from people/NNNNN.exr decides self- vs other-person occlusion)

SMPL-X characters (characters/smplx_motion.py) add the SMPL-X ground truth. Their smpl24 joints are
SMPL-X joints 0-21 + left_index1/right_index1 and smplx55 all 55 joints, both computed by the
model's J_regressor from the posed (rendered) mesh; h36m17/coco17 come from the skeleton as for every
character (COCO face points from the mesh's nose/eye/ear vertices on the official topology).
Parameters, for `smplx.SMPLX(model_path, gender=smplx_gender, use_pca=False, flat_hand_mean=True,
num_betas=10, num_expression_coeffs=10)`: called with the *_world orientation and translation it
returns the rendered body vertices (the first smplx_num_vertices vertices of the subject mesh) in the
world frame, with the *_cam ones in the OpenCV camera frame of each frame. Rotations are
axis-angle (radians), local to the parent joint except the global orientation:
  smplx_gender () str               neutral | male | female: the model file used
  smplx_model_file () str           its file name (SMPLX_<GENDER>.npz); smplx_model_sha256 () str its sha256
  smplx_num_vertices () int64       body vertices of the model (10475 for the official files)
  smplx_betas (10,) f64             shape
  smplx_expression (F,10) f64       expression
  smplx_global_orient_world (F,3)   pelvis orientation, world frame (Z up)
  smplx_transl_world (F,3) f64      translation, world frame, metres
  smplx_global_orient_cam (F,3)     the same in the OpenCV camera frame of each frame
  smplx_transl_cam (F,3) f64
  smplx_body_pose (F,21,3) f64      joints 1-21 (left_hip ... right_wrist)
  smplx_jaw_pose, smplx_leye_pose, smplx_reye_pose (F,3) f64
  smplx_left_hand_pose, smplx_right_hand_pose (F,15,3) f64   full finger rotations (index, middle,
                                    pinky, ring, thumb; 3 joints each), the hand mean already included
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from thfm_synth.atomic import write_bytes
from thfm_synth.conventions import project
from thfm_synth.assets.motion.joints import SURFACE_KEYPOINTS
from thfm_synth.render.scene.visibility import joint_visibility, keypoint_tolerances

CONVENTIONS = ("smpl24", "h36m17", "coco17")


def mask_bbox(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask > 0.5)
    if not len(xs):
        return np.full(4, np.nan, np.float32)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


class FrameAnnotator:
    """build_annotations one frame at a time: the joint geometry is computed for the whole video up
    front (no images needed), visibility and bbox frame by frame as each frame's labels arrive, so a
    streamed render never holds more than one frame's label images (render/video/stream.py)."""

    def __init__(self, k, r, t, joints_world: dict[str, np.ndarray], joint_names: dict[str, tuple[str, ...]]):
        self.out: dict[str, np.ndarray] = {
            "K": np.asarray(k, np.float64),
            "R": np.asarray(r, np.float64),
            "t": np.asarray(t, np.float64),
        }
        n = self.out["R"].shape[0]
        self.conventions = CONVENTIONS + tuple(sorted(set(joints_world) - set(CONVENTIONS)))
        self.tol = {}
        for c in self.conventions:
            world = np.asarray(joints_world[c], np.float64)
            cam = np.einsum("fij,fkj->fki", self.out["R"], world) + self.out["t"][:, None]
            uv = np.stack(
                [project(self.out["K"][f], self.out["R"][f], self.out["t"][f], world[f])[0] for f in range(n)]
            )
            self.tol[c] = keypoint_tolerances(joint_names[c], SURFACE_KEYPOINTS)
            self.out[f"joint_names_{c}"] = np.array(joint_names[c])
            self.out[f"joints3d_world_{c}"] = world
            self.out[f"joints3d_cam_{c}"] = cam
            self.out[f"joints2d_{c}"] = uv
        self.vis: dict[str, dict[int, np.ndarray]] = {c: {} for c in self.conventions}
        self.bbox: dict[int, np.ndarray] = {}

    def add(self, f: int, depth: np.ndarray, mask: np.ndarray, others_mask: np.ndarray | None = None) -> dict:
        """Frame f's visibility (per convention) and bbox from its stored depth and the person's mask."""
        for c in self.conventions:
            self.vis[c][f] = joint_visibility(
                self.out[f"joints2d_{c}"][f],
                self.out[f"joints3d_cam_{c}"][f, :, 2],
                depth,
                mask,
                self_tol_m=self.tol[c],
                others_mask=others_mask,
            )
        self.bbox[f] = mask_bbox(mask)
        return {c: self.vis[c][f] for c in self.conventions}

    def result(self) -> dict[str, np.ndarray]:
        n = self.out["R"].shape[0]
        out = {k: self.out[k] for k in ("K", "R", "t")}
        for c in self.conventions:  # the key order of the files written before (npz bytes unchanged)
            for key in ("joint_names_", "joints3d_world_", "joints3d_cam_", "joints2d_"):
                out[key + c] = self.out[key + c]
            out[f"visibility_{c}"] = np.stack([self.vis[c][f] for f in range(n)]).astype(np.uint8)
        out["bbox"] = np.stack([self.bbox[f] for f in range(n)])
        return out


def build_annotations(
    k: np.ndarray,
    r: np.ndarray,
    t: np.ndarray,
    joints_world: dict[str, np.ndarray],
    joint_names: dict[str, tuple[str, ...]],
    depth: list[np.ndarray],
    mask: list[np.ndarray],
    part: list[np.ndarray] | None = None,
    others_mask: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """All arrays of annotations.npz for one person. depth/part are the stored per-frame label images,
    mask the person's own soft mask, others_mask the other people's (several people) or None."""
    ann = FrameAnnotator(k, r, t, joints_world, joint_names)
    for f in range(ann.out["R"].shape[0]):
        ann.add(f, depth[f], mask[f], None if others_mask is None else others_mask[f])
    return ann.result()


PEOPLE_KEYS = ("joints3d_world_", "joints3d_cam_", "joints2d_", "visibility_")


def people_annotations(
    per_person: list[dict[str, np.ndarray]], instances: list[int], character_ids: list[str], motion_ids: list[str]
) -> dict[str, np.ndarray]:
    """The `people_*` arrays: each person's build_annotations output stacked on a leading person axis."""
    out = {
        "people_instance": np.asarray(instances, np.int64),
        "people_character_id": np.array(character_ids),
        "people_motion_id": np.array(motion_ids),
        "people_bbox": np.stack([a["bbox"] for a in per_person]),
    }
    for key in per_person[0]:
        if key.startswith(PEOPLE_KEYS) and key.rsplit("_", 1)[-1] in CONVENTIONS:
            out[f"people_{key}"] = np.stack([a[key] for a in per_person])
    return out


def write_annotations(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes(path, buf.getvalue(), "annotations")


def read_annotations(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def read_video_metadata(video_dir) -> dict:
    """metadata.json of a rendered video folder, after checking the folder is one (one-line error)."""
    import json
    from pathlib import Path

    from thfm_synth.errors import UserError

    video_dir = Path(video_dir)
    meta_path = video_dir / "metadata.json"
    if not meta_path.is_file() or not (video_dir / "annotations.npz").is_file():
        raise UserError(
            f"{video_dir} is not a rendered video folder (metadata.json/annotations.npz missing)",
            "point at OUT of `thfm-synth render` or a folder made by `thfm-synth render-one`",
        )
    return json.loads(meta_path.read_text())
