"""A planned video's character in motion: baked character + motion window, retargeted.

Pure numpy (Blender only plays the result back): load the character (baking a built-in
body or importing a rigged file once, cached), load the clip (built-in or BVH), resample it
to fps / speed, cut the planned window of `num_frames`, retarget it onto the character
(mirrored if planned) and compute the canonical joint sets per frame. The same arrays
drive Blender's armature and become the 3D joint labels, so pixels and labels share one
pose. SMPL-X characters (characters/smplx_motion.py) also get their per-frame SMPL-X parameters
and the mesh posed by the model itself; their SMPL-24 joints (and the SMPL-X-55 set) are the
model's joint regressor applied to that mesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.assets.library import Library
from thfm_synth.assets.manifest import MotionEntry
from thfm_synth.characters import Character, character_npz, load_character
from thfm_synth.characters.skinning import motion_skeleton
from thfm_synth.characters.smplx_motion import SmplxMotion, is_smplx, smplx_joint_names, smplx_motion
from thfm_synth.motion import quat
from thfm_synth.motion.joints import JointSet, joint_sets
from thfm_synth.motion.resample import resample
from thfm_synth.motion.retarget import retarget
from thfm_synth.motion.skeleton import MotionClip
from thfm_synth.motion.window import cut_window
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
        from thfm_synth.motion.builtin_motions import builtin_motion

        return builtin_motion(entry.id)
    from thfm_synth.motion.bvh import read_bvh

    return read_bvh(library.path_of(entry))


def animate(spec: VideoSpec, library: Library, cache_dir: str | Path) -> AnimatedCharacter:
    entry = library.entry(spec.character_id)
    path = character_npz(entry, library.path_of(entry), cache_dir)
    character = load_character(path)
    source = load_motion(library.entry(spec.motion_id), library)
    window = cut_window(resample(source, spec.fps / spec.motion_speed), spec.motion_start_frame, spec.num_frames)
    # The window is played at the video's fps whatever the speed factor was.
    window = MotionClip(window.skeleton, spec.fps, window.root_translation, window.local_rotations, window.source,
                        window.source_start, window.flags)
    clip = retarget(window, motion_skeleton(character), mirror=spec.mirror)
    if not is_smplx(character):
        return AnimatedCharacter(path, character, clip, joint_sets(clip, face_points(character, clip)))
    clip, body = smplx_motion(character, clip)
    joints = joint_sets(clip, body.face_points())
    names = smplx_joint_names()
    for c, pos in body.regressor_joints(body.body_vertices()).items():
        joints[c] = JointSet(c, names[c], pos, "smplx_regressor")
    return AnimatedCharacter(path, character, clip, joints, body)


def face_points(character: Character, clip: MotionClip) -> np.ndarray | None:
    """(F, 5, 3) COCO face points carried rigidly by the Head bone, if the character has them.

    Built-in bodies store them from anny's keypoint regressor at rest; imported rigs have
    none, and joints.py then uses its documented head-frame model.
    """
    rest = character.meta.get("face_points_rest")
    head = clip.skeleton.find("Head")
    if rest is None or head is None:
        return None
    positions, rotations = clip.forward_kinematics()
    rest_head = clip.skeleton.rest_positions[head]
    local = quat.rotate(quat.conj(clip.skeleton.rest_orientations[head]), np.asarray(rest) - rest_head)
    return positions[:, head, None] + quat.rotate(rotations[:, head, None], local[None])


def root_path_xy(anim: AnimatedCharacter) -> np.ndarray:
    return np.asarray(anim.clip.root_translation)[:, :2]
