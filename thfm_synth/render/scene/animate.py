"""A planned video's character in motion: baked character + motion window, retargeted.

Pure numpy (Blender only plays the result back): load the character (baking a built-in
body or importing a rigged file once, cached), load the clip (built-in or BVH), resample it
to fps / speed, cut the planned window of `num_frames`, retarget it onto the character
(mirrored if planned; grounded on the character's skinned mesh with planted feet, see
motion/retarget.py) and compute the canonical joint sets per frame, with the head
landmarks (face points, head top) of the character's own mesh. The same arrays drive
Blender's armature and become the 3D joint labels, so pixels and labels share one pose.
SMPL-X characters (characters/smplx_motion.py) also get their per-frame SMPL-X parameters and
the mesh posed by the model itself; their SMPL-24 joints (and the SMPL-X-55 set) are the model's
joint regressor applied to that mesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.assets.library import Library
from thfm_synth.assets.manifest import MotionEntry
from thfm_synth.assets.characters import Character, character_npz, landmarks, load_character
from thfm_synth.assets.characters.skinning import ground_surface, motion_skeleton
from thfm_synth.assets.characters.smplx_motion import SmplxMotion, is_smplx, smplx_joint_names, smplx_motion
from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.joints import JointSet, joint_sets
from thfm_synth.assets.motion.resample import resample
from thfm_synth.assets.motion.retarget import retarget
from thfm_synth.assets.motion.skeleton import MotionClip
from thfm_synth.assets.motion.window import cut_window
from thfm_synth.plan.spec import VideoSpec


@dataclass(frozen=True)
class AnimatedCharacter:
    character_file: Path
    character: Character
    clip: MotionClip  # on the character's skeleton: num_frames frames at the video fps
    joints: dict[str, JointSet]  # smpl24 / h36m17 / coco17 (+ smplx55), world metres, per frame
    body: SmplxMotion | None = None  # SMPL-X characters: parameters and the model-posed mesh

    @property
    def flags(self) -> tuple[str, ...]:
        return self.clip.flags


def load_motion(entry: MotionEntry, library: Library) -> MotionClip:
    if entry.format == "builtin":
        from thfm_synth.assets.motion.builtin_motions import builtin_motion

        return builtin_motion(entry.id)
    from thfm_synth.assets.decode import check_clip
    from thfm_synth.assets.motion.bvh import read_bvh

    clip = read_bvh(library.path_of(entry))
    check_clip(clip, library.path_of(entry))
    return clip


def animate(spec: VideoSpec, library: Library, cache_dir: str | Path) -> AnimatedCharacter:
    entry = library.entry(spec.character_id)
    path = character_npz(entry, library.path_of(entry), cache_dir)
    character = load_character(path)
    source = load_motion(library.entry(spec.motion_id), library)
    window = cut_window(resample(source, spec.fps / spec.motion_speed), spec.motion_start_frame, spec.num_frames)
    # The window is played at the video's fps whatever the speed factor was.
    window = MotionClip(
        window.skeleton,
        spec.fps,
        window.root_translation,
        window.local_rotations,
        window.source,
        window.source_start,
        window.flags,
    )
    # grounded on the skinned mesh: soles on the floor, nothing below it (motion/retarget.py)
    clip = retarget(window, motion_skeleton(character), mirror=spec.mirror, surface=ground_surface(character))
    if not is_smplx(character):
        return AnimatedCharacter(path, character, clip, character_joint_sets(character, clip))
    clip, body = smplx_motion(character, clip)
    joints = character_joint_sets(character, clip, face_points=body.face_points())
    names = smplx_joint_names()
    for c, pos in body.regressor_joints(body.body_vertices()).items():
        joints[c] = JointSet(c, names[c], pos, "smplx_regressor")
    return AnimatedCharacter(path, character, clip, joints, body)


def character_joint_sets(
    character: Character, clip: MotionClip, face_points: np.ndarray | None = None
) -> dict[str, JointSet]:
    """The three joint sets of a character's clip, with the head landmarks of its own mesh
    (face points on the skin, head top inside the crown: characters/landmarks.py). `face_points`
    (F, 5, 3): given by the body model itself (SMPL-X's own vertices) instead."""
    face_rest, source = landmarks.face_points_rest(character)
    top_rest = landmarks.head_top_rest(character)
    carried = carried_by_head(clip, np.concatenate([face_rest, top_rest[None]]))
    height = character.meta.get("body_height_m") or character.height_m
    if face_points is not None:
        return joint_sets(clip, face_points, carried[:, 5], float(height), "smplx_vertices")
    return joint_sets(clip, carried[:, :5], carried[:, 5], float(height), source)


def carried_by_head(clip: MotionClip, rest_points: np.ndarray) -> np.ndarray:
    """(F, K, 3) rest points (K, 3) carried rigidly by the Head bone through the clip."""
    head = clip.skeleton.find("Head")
    if head is None:
        raise ValueError(f"skeleton {clip.skeleton.name!r} has no Head joint (needed for head keypoints)")
    positions, rotations = clip.forward_kinematics()
    rest_head = clip.skeleton.rest_positions[head]
    local = quat.rotate(quat.conj(clip.skeleton.rest_orientations[head]), np.asarray(rest_points) - rest_head)
    return positions[:, head, None] + quat.rotate(rotations[:, head, None], local[None])


def face_points(character: Character, clip: MotionClip) -> np.ndarray:
    """(F, 5, 3) COCO face points of the character carried rigidly by the Head bone."""
    return carried_by_head(clip, landmarks.face_points_rest(character)[0])


def root_path_xy(anim: AnimatedCharacter) -> np.ndarray:
    return np.asarray(anim.clip.root_translation)[:, :2]
