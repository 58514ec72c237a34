"""Canonical keypoint sets from a posed skeleton (world frame, metres, per frame).

Every point is defined from canonical CMU bones (any rig mapped to those names
works: cmu_mb's `*HandFinger1` is found as `*HandIndex1`). Definitions:

SMPL-24 (SMPL's joint order; "lerp a b t" = a + t (b - a); "spine polyline" =
Hips -> Spine -> Spine1 at a fraction of its rest arc length, fractions from the
SMPL template's pelvis-to-neck spacing):
  pelvis=Hips, left/right_hip=*UpLeg, spine1=spine polyline 0.21, left/right_knee=*Leg,
  spine2=spine polyline 0.48, left/right_ankle=*Foot, spine3=spine polyline 0.58,
  left/right_foot=*ToeBase (ball of the foot; without a toe bone: *Foot_end, else 13 cm
  ahead of the ankle and 3 cm above the sole in the foot's frame), neck=Neck (base of the neck; Spine1 if
  absent), left/right_collar=lerp *Shoulder *Arm 0.45, head=Head (top of the neck /
  skull base), left/right_shoulder=*Arm, left/right_elbow=*ForeArm,
  left/right_wrist=*Hand, left/right_hand=*HandIndex1 (knuckles; if absent,
  *Hand + 0.33 (*Hand - *ForeArm)).

H36M-17 (Human3.6M's 17-joint order used by VideoPose3D and most lifters):
  pelvis=midpoint of the hips, right_hip, right_knee, right_ankle, left_hip, left_knee,
  left_ankle (as SMPL), spine=lerp pelvis thorax 0.5, thorax=neck (as SMPL),
  neck_nose=nose (face model below), head=head top (characters: the crown of the head mesh,
  characters/landmarks.py; a bare skeleton: as below), then left and right
  shoulder/elbow/wrist (as SMPL).

COCO-17 follows the COCO *annotation* convention (where a person labelling a photo puts
  the point), not the skeleton; SMPL-24 and H36M-17 stay skeletal. nose, left/right_eye,
  left/right_ear: the face points (surface points, see below); elbows, wrists, knees,
  ankles: the joint centres (as SMPL). Hips and shoulders, with H the body height:
    hip      = mid + 0.9 (hip_joint - mid) + 0.040 H * up(pelvis)   (mid: midpoint of the hip joints)
    shoulder = shoulder_joint + 0.014 H * up(chest)
  where up(b) is the rest +Z turned with bone b (Hips, Spine1), so the offsets ride with the
  body when it bends. Sources: annotators mark the hip where the thigh meets the pelvis on
  the body's outline, well above the femoral head. A COCO-trained keypoint detector run on
  our renders put the hips 3.8% (built-in bodies) and 4.3% (imported rigs) of body height
  above the hip joint centres and agreed with shoulders, elbows and wrists to ~1.5%; the
  OpenPose/COCO hips of HMR 2.0 (4D-Humans, hmr2/models/smpl_wrapper.py, `update_hips`)
  are SMPL's hip joints moved up by half of SMPL's pelvis-above-hips offset (~2.7% of the
  template's height) and out by 25% of their separation, which makes the COCO hips 12% of
  body height apart; our rigs' hip joints are 12-14% apart, hence the 0.9. The shoulder
  offset is the mean of anny's own COCO keypoint regressor over its bodies (2.3-2.5 cm above
  the cmu_mb shoulder joint for 1.6-1.9 m bodies), which also matches the ~2% that imported
  rigs' shoulders read low. Where no body height is given it is estimated from the skeleton
  (rest head top above the lowest foot joint, plus 2 cm of sole).

Face model: for built-in bodies pass `face_points` (F, 5, 3) in COCO order (nose,
left eye, right eye, left ear, right ear), e.g. `regress_face(vertices, regressor)`
with the body's vertex regressor. Otherwise the points are fixed offsets in the head's
frame: the head's world rotation away from its rest pose (characters face -Y, Z up at
rest) applied to rest offsets given in units of the head length L = |Head -> head top|,
which must span skull base to crown (true for Blender/FBX/anny rigs and the canonical
skeleton; a BVH `Head_end` is shorter, so CMU skeletons get a small face). Head top is
`Head_end` when the rig has it, else Head + L up in the head frame with L = 0.2 m
scaled by leg length / 0.85 m.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import END_SUFFIX, MotionClip, Skeleton

SMPL24_NAMES = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
H36M17_NAMES = (
    "pelvis",
    "right_hip",
    "right_knee",
    "right_ankle",
    "left_hip",
    "left_knee",
    "left_ankle",
    "spine",
    "thorax",
    "neck_nose",
    "head",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
)
COCO17_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
FACE_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
#: Keypoints that lie on the skin (not inside the body): visibility tests them against the
#: visible surface with a surface tolerance (scene/visibility.py).
SURFACE_KEYPOINTS = frozenset(FACE_NAMES + ("neck_nose",))

#: COCO annotation-convention offsets (module docstring), in units of body height.
COCO_HIP_RAISE = 0.040
COCO_HIP_WIDTH = 0.9
COCO_SHOULDER_RAISE = 0.014
_SOLE_M = 0.02

#: Face points in the rest head frame (x = subject's left, -y = forward, z = up), in
#: units of the head length L (skull base to crown, ~0.2 m for an adult).
FACE_OFFSETS = np.array(
    [
        [0.0, -0.55, 0.25],  # nose tip: ~11 cm in front of and 5 cm above the skull base
        [0.16, -0.45, 0.42],  # left eye
        [-0.16, -0.45, 0.42],  # right eye
        [0.38, -0.02, 0.30],  # left ear (tragus)
        [-0.38, -0.02, 0.30],  # right ear
    ]
)
_SPINE_FRACTIONS = {"spine1": 0.21, "spine2": 0.48, "spine3": 0.58}
_DEFAULT_HEAD_LENGTH = 0.2


@dataclasses.dataclass(frozen=True, eq=False)
class JointSet:
    convention: str  # "smpl24", "h36m17" or "coco17"
    names: tuple[str, ...]
    positions: np.ndarray  # (F, K, 3) world metres
    face_source: str = ""  # "regressor", "head_model", "head_model_on_surface" or "" (no face points)


class _Posed:
    """Lookup of posed canonical joints with the fallbacks documented above."""

    def __init__(self, skeleton: Skeleton, positions: np.ndarray, rotations: np.ndarray):
        self.sk, self.pos, self.rot = skeleton, positions, rotations

    def idx(self, name: str) -> int | None:
        return self.sk.find(name)

    def j(self, name: str) -> np.ndarray:
        i = self.idx(name)
        if i is None:
            raise ValueError(f"skeleton {self.sk.name!r} has no joint {name!r} (needed for keypoints)")
        return self.pos[:, i]

    def first(self, *names: str) -> np.ndarray:
        for n in names:
            if self.idx(n) is not None:
                return self.j(n)
        raise ValueError(f"skeleton {self.sk.name!r} has none of {names} (needed for keypoints)")

    def spine(self, key: str) -> np.ndarray:
        chain = [n for n in ("Hips", "Spine", "Spine1") if self.idx(n) is not None]
        rest = self.sk.rest_positions[[self.idx(n) for n in chain]]
        seg = np.linalg.norm(np.diff(rest, axis=0), axis=1)
        target = _SPINE_FRACTIONS[key] * seg.sum()
        k = int(np.searchsorted(np.cumsum(seg), target, side="left"))
        k = min(k, len(seg) - 1)
        t = (target - (np.cumsum(seg)[k] - seg[k])) / max(seg[k], 1e-12)
        return self.j(chain[k]) + t * (self.j(chain[k + 1]) - self.j(chain[k]))

    def neck(self) -> np.ndarray:
        return self.first("Neck", "Spine1")

    def side(self, prefix: str, part: str) -> np.ndarray:
        if part == "foot":
            return self.toe(prefix)
        name = {"hip": "UpLeg", "knee": "Leg", "ankle": "Foot", "shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand"}[
            part
        ]
        return self.j(prefix + name)

    def toe(self, prefix: str) -> np.ndarray:
        for name in (prefix + "ToeBase", prefix + "Foot" + END_SUFFIX):
            if self.idx(name) is not None:
                return self.j(name)
        # Rigs without a toe bone (some game rigs): the ball of the foot, 13 cm ahead of the
        # ankle (scaled by leg length) and 3 cm above the sole, carried by the foot's rotation.
        a = self.idx(prefix + "Foot")
        if a is None:
            raise ValueError(f"skeleton {self.sk.name!r} has no joint {prefix}Foot (needed for keypoints)")
        scale = self.head_length() / _DEFAULT_HEAD_LENGTH
        rest = np.array([0.0, -0.13 * scale, 0.03 * scale - self.sk.rest_positions[a, 2]])
        delta = quat.mul(self.rot[:, a], quat.conj(self.sk.rest_orientations[a]))
        return self.j(prefix + "Foot") + quat.rotate(delta, rest)

    def collar(self, prefix: str) -> np.ndarray:
        base = self.first(prefix + "Shoulder", "Spine1")
        return base + 0.45 * (self.j(prefix + "Arm") - base)

    def hand(self, prefix: str) -> np.ndarray:
        if self.idx(prefix + "HandIndex1") is not None:
            return self.j(prefix + "HandIndex1")
        wrist = self.j(prefix + "Hand")
        return wrist + 0.33 * (wrist - self.j(prefix + "ForeArm"))

    def head_length(self) -> float:
        h, top = self.idx("Head"), self.idx("Head" + END_SUFFIX)
        if h is not None and top is not None:
            return float(np.linalg.norm(self.sk.rest_positions[top] - self.sk.rest_positions[h]))
        legs = [self.idx(n) for n in ("LeftUpLeg", "LeftLeg", "LeftFoot")]
        if None in legs:
            return _DEFAULT_HEAD_LENGTH
        p = self.sk.rest_positions[legs]
        return _DEFAULT_HEAD_LENGTH * float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) / 0.85

    def head_delta(self) -> np.ndarray:
        h = self.idx("Head")
        if h is None:
            raise ValueError(f"skeleton {self.sk.name!r} has no Head joint (needed for face keypoints)")
        return quat.mul(self.rot[:, h], quat.conj(self.sk.rest_orientations[h]))

    def head_top(self) -> np.ndarray:
        top = self.idx("Head" + END_SUFFIX)
        if top is not None:
            return self.pos[:, top]
        return self.j("Head") + quat.rotate(self.head_delta(), np.array([0.0, 0.0, self.head_length()]))

    def face(self) -> np.ndarray:
        offsets = FACE_OFFSETS * self.head_length()
        return self.j("Head")[:, None] + quat.rotate(self.head_delta()[:, None], offsets)

    def up(self, *names: str) -> np.ndarray:
        """World +Z at rest turned with the first existing bone of `names`, (F, 3)."""
        for n in names:
            i = self.idx(n)
            if i is not None:
                delta = quat.mul(self.rot[:, i], quat.conj(self.sk.rest_orientations[i]))
                return quat.rotate(delta, np.array([0.0, 0.0, 1.0]))
        return np.broadcast_to(np.array([0.0, 0.0, 1.0]), (self.pos.shape[0], 3))

    def body_height(self) -> float:
        """Standing height estimated from the rest skeleton (for bare skeletons)."""
        rest = self.sk.rest_positions
        feet = [
            i
            for i in (
                self.idx(n)
                for n in (
                    "LeftFoot",
                    "RightFoot",
                    "LeftToeBase",
                    "RightToeBase",
                    "LeftToeBase" + END_SUFFIX,
                    "RightToeBase" + END_SUFFIX,
                )
            )
            if i is not None
        ]
        h = self.idx("Head")
        if h is None or not feet:
            return 1.7
        top = rest[h] + self.head_length() * np.array([0.0, 0.0, 1.0])
        t = self.idx("Head" + END_SUFFIX)
        if t is not None:
            top = rest[t]
        return float(top[2] - rest[feet, 2].min()) + _SOLE_M


def _face(p: _Posed, face_points: np.ndarray | None, face_source: str = "regressor") -> tuple[np.ndarray, str]:
    if face_points is None:
        return p.face(), "head_model"
    fp = np.asarray(face_points, dtype=np.float64)
    if fp.shape != (p.pos.shape[0], 5, 3):
        raise ValueError(f"face_points must be (F, 5, 3) = ({p.pos.shape[0]}, 5, 3), got {fp.shape}")
    return fp, face_source


def head_model_face(skeleton: Skeleton, positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """(F, 5, 3) face points of the head-frame model (module docstring)."""
    return _Posed(skeleton, positions, rotations).face()


def smpl24(skeleton: Skeleton, positions: np.ndarray, rotations: np.ndarray) -> JointSet:
    p = _Posed(skeleton, positions, rotations)
    L, R = "Left", "Right"
    pts: dict[str, Callable[[], np.ndarray]] = {
        "pelvis": lambda: p.j("Hips"),
        "spine1": lambda: p.spine("spine1"),
        "spine2": lambda: p.spine("spine2"),
        "spine3": lambda: p.spine("spine3"),
        "neck": p.neck,
        "head": lambda: p.j("Head"),
    }
    for side, prefix in (("left", L), ("right", R)):
        for part in ("hip", "knee", "ankle", "foot", "shoulder", "elbow", "wrist"):
            pts[f"{side}_{part}"] = lambda pr=prefix, pa=part: p.side(pr, pa)
        pts[f"{side}_collar"] = lambda pr=prefix: p.collar(pr)
        pts[f"{side}_hand"] = lambda pr=prefix: p.hand(pr)
    return JointSet("smpl24", SMPL24_NAMES, np.stack([pts[n]() for n in SMPL24_NAMES], axis=1))


def h36m17(
    skeleton: Skeleton,
    positions: np.ndarray,
    rotations: np.ndarray,
    face_points: np.ndarray | None = None,
    head_top: np.ndarray | None = None,
    face_source: str = "regressor",
) -> JointSet:
    """head_top (F, 3): the head top of a character's mesh (characters/landmarks.py)."""
    p = _Posed(skeleton, positions, rotations)
    pelvis = 0.5 * (p.j("LeftUpLeg") + p.j("RightUpLeg"))
    thorax = p.neck()
    face, how = _face(p, face_points, face_source)
    if head_top is not None:
        head_top = np.asarray(head_top, np.float64)
        if head_top.shape != (p.pos.shape[0], 3):
            raise ValueError(f"head_top must be (F, 3) = ({p.pos.shape[0]}, 3), got {head_top.shape}")
    pts = {
        "pelvis": pelvis,
        "spine": 0.5 * (pelvis + thorax),
        "thorax": thorax,
        "neck_nose": face[:, 0],
        "head": p.head_top() if head_top is None else head_top,
    }
    for side, prefix in (("left", "Left"), ("right", "Right")):
        for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
            pts[f"{side}_{part}"] = p.side(prefix, part)
    return JointSet("h36m17", H36M17_NAMES, np.stack([pts[n] for n in H36M17_NAMES], axis=1), how)


def coco17(
    skeleton: Skeleton,
    positions: np.ndarray,
    rotations: np.ndarray,
    face_points: np.ndarray | None = None,
    body_height: float | None = None,
    face_source: str = "regressor",
) -> JointSet:
    """COCO-17 by the annotation convention (module docstring); body_height in metres."""
    p = _Posed(skeleton, positions, rotations)
    face, how = _face(p, face_points, face_source)
    h = float(body_height) if body_height else p.body_height()
    pts = dict(zip(FACE_NAMES, np.moveaxis(face, 1, 0)))
    for side, prefix in (("left", "Left"), ("right", "Right")):
        for part in ("knee", "ankle", "elbow", "wrist"):
            pts[f"{side}_{part}"] = p.side(prefix, part)
    mid = 0.5 * (p.side("Left", "hip") + p.side("Right", "hip"))
    hip_up = COCO_HIP_RAISE * h * p.up("Hips")
    chest_up = COCO_SHOULDER_RAISE * h * p.up("Spine1", "Spine", "Hips")
    for side, prefix in (("left", "Left"), ("right", "Right")):
        pts[f"{side}_hip"] = mid + COCO_HIP_WIDTH * (p.side(prefix, "hip") - mid) + hip_up
        pts[f"{side}_shoulder"] = p.side(prefix, "shoulder") + chest_up
    return JointSet("coco17", COCO17_NAMES, np.stack([pts[n] for n in COCO17_NAMES], axis=1), how)


def regress_face(vertices: np.ndarray, regressor) -> np.ndarray:
    """Face points (F, 5, 3) from posed vertices (F, V, 3) and a (5, V) regressor
    (dense array or scipy sparse matrix; rows in FACE_NAMES order)."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim == 2:
        v = v[None]
    out = np.stack([np.asarray(regressor @ frame) for frame in v])
    if out.shape[1:] != (5, 3):
        raise ValueError(f"the face regressor must have 5 rows; got an output of shape {out.shape[1:]}")
    return out


def joint_sets(
    clip: MotionClip,
    face_points: np.ndarray | None = None,
    head_top: np.ndarray | None = None,
    body_height: float | None = None,
    face_source: str = "regressor",
) -> dict[str, JointSet]:
    """All three sets for a clip (one FK pass). A character passes its face points and head
    top (F, ., 3, from its mesh: scene/animate.py) and its standing height."""
    pos, rot = clip.forward_kinematics()
    sk = clip.skeleton
    return {
        "smpl24": smpl24(sk, pos, rot),
        "h36m17": h36m17(sk, pos, rot, face_points, head_top, face_source),
        "coco17": coco17(sk, pos, rot, face_points, body_height, face_source),
    }
