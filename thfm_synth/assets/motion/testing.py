"""Derived rigs for tests and benchmarks: other proportions, rest poses, bone frames
and bone sets, made from a known skeleton so the expected answer is known too."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import CANONICAL_TO_CMU_MB, Skeleton, forward_kinematics


def derive_skeleton(
    base: Skeleton,
    *,
    name: str,
    pose: Mapping[str, np.ndarray] | None = None,
    scale: Mapping[str, float] | None = None,
    move: Mapping[str, Sequence[float]] | None = None,
    drop: Sequence[str] = (),
    insert: Sequence[tuple[str, str, str, float, Sequence[float]]] = (),
    rename: Mapping[str, str] | None = None,
    frames_seed: int | None = None,
    floor_height: float | None = None,
) -> Skeleton:
    """A new rest skeleton from `base`.

    pose: local rotations (wxyz) applied to `base`'s rest to make the new rest pose;
    scale: factor on the bone that *ends* at a joint (its offset), applied after posing;
    move: metres added to a joint's offset (its subtree follows), after scaling;
    drop: joints removed (children re-attach to the parent, keeping their position);
    insert: (new, parent, child, fraction, bump): a joint on the parent->child segment
    (plus a bump in metres), becoming the child's parent;
    rename: name changes applied last; frames_seed: random bone frames (else identity);
    floor_height: shift the rest so the lowest foot joint sits at this height.
    """
    pose = pose or {}
    scale = scale or {}
    rot = np.broadcast_to(quat.IDENTITY, (base.num_joints, 4)).copy()
    for n, q in pose.items():
        rot[base.index[n]] = quat.normalize(q)
    pos, _ = forward_kinematics(base, rot, base.rest_positions[0])

    names = list(base.names)
    parents = list(base.parents)
    off = [pos[j] - (pos[parents[j]] if j else 0.0) for j in range(len(names))]
    off = [o * scale.get(n, 1.0) if j else o for j, (n, o) in enumerate(zip(names, off))]
    off = [o + np.asarray((move or {}).get(n, (0.0, 0.0, 0.0)), dtype=float) for n, o in zip(names, off)]
    positions = []
    for j in range(len(names)):
        positions.append(off[j] + (positions[parents[j]] if j else 0.0))
    nodes = {n: [n, names[parents[j]] if j else None, positions[j]] for j, n in enumerate(names)}
    order = list(names)
    for d in drop:
        parent = nodes[d][1]
        for node in nodes.values():
            if node[1] == d:
                node[1] = parent
        order.remove(d)
        del nodes[d]
    for new, parent, child, frac, bump in insert:
        p0, p1 = nodes[parent][2], nodes[child][2]
        nodes[new] = [new, parent, p0 + frac * (p1 - p0) + np.asarray(bump, dtype=float)]
        nodes[child][1] = new
        order.insert(order.index(child), new)
    index = {n: i for i, n in enumerate(order)}
    par = np.array([-1 if nodes[n][1] is None else index[nodes[n][1]] for n in order])
    p = np.array([nodes[n][2] for n in order])
    if floor_height is not None:
        feet = [i for i, n in enumerate(order) if "Foot" in n or "ToeBase" in n]
        p[:, 2] += floor_height - p[feet, 2].min()
    offsets = p - np.where(par[:, None] >= 0, p[np.maximum(par, 0)], 0.0)
    if frames_seed is None:
        frames = np.broadcast_to(quat.IDENTITY, (len(order), 4))
    else:
        frames = quat.normalize(np.random.default_rng(frames_seed).normal(size=(len(order), 4)))
    rename = rename or {}
    return Skeleton(tuple(rename.get(n, n) for n in order), par, offsets, frames, name=name)


def _aim(base: Skeleton, joint: str, child: str, direction: Sequence[float]) -> np.ndarray:
    """Local rotation turning the rest bone joint->child onto `direction` (world)."""
    p = base.rest_positions
    return quat.between(p[base.index[child]] - p[base.index[joint]], np.asarray(direction, dtype=float))


def variant_target(base: Skeleton, seed: int = 7) -> Skeleton:
    """A rig unlike `base` in every way a real target differs (CMU-topology base):

    A-pose arms (45 degrees down), straight legs, bent elbows; legs 15 % longer, arms
    10 % shorter, spine 8 % longer, narrower hips set 2 cm further forward and 1 cm
    higher (so the pelvis is not a scaled copy); random bone frames; no LHipJoint
    and no Neck1 (collapsed bones), an extra SpineMid joint off the Spine->Spine1 line,
    MPFB `cmu_mb` finger names, and the rest standing on the floor (toe joints 1.5 cm up).
    """
    s45 = np.sin(np.radians(45.0))
    pose = {
        "LeftArm": _aim(base, "LeftArm", "LeftForeArm", (s45, 0.0, -s45)),
        "RightArm": _aim(base, "RightArm", "RightForeArm", (-s45, 0.0, -s45)),
        "LeftUpLeg": _aim(base, "LeftUpLeg", "LeftLeg", (0.0, 0.0, -1.0)),
        "RightUpLeg": _aim(base, "RightUpLeg", "RightLeg", (0.0, 0.0, -1.0)),
        "LeftForeArm": quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.radians(-20.0)),
        "RightForeArm": quat.from_axis_angle(np.array([0.0, 0.0, 1.0]), np.radians(20.0)),
    }
    # a factor applies to the bone that ends at the named joint
    scale = {}
    for side in ("Left", "Right"):
        scale.update(
            {
                f"{side}Leg": 1.15,
                f"{side}Foot": 1.15,  # thigh, shin
                f"{side}ForeArm": 0.9,
                f"{side}Hand": 0.9,  # upper arm, forearm
                f"{side}UpLeg": 0.9,
            }
        )  # pelvis to hip joint
    scale.update({"Spine": 1.08, "Spine1": 1.08, "Neck1": 1.08, "Head": 1.08})
    return derive_skeleton(
        base,
        name="variant",
        pose=pose,
        scale=scale,
        move={"LeftUpLeg": (0.0, -0.02, 0.01), "RightUpLeg": (0.0, -0.02, 0.01)},
        drop=[n for n in ("LHipJoint", "Neck1") if n in base.index],
        insert=[("SpineMid", "Spine", "Spine1", 0.45, (0.0, 0.012, 0.0))],
        rename=CANONICAL_TO_CMU_MB,
        frames_seed=seed,
        floor_height=0.015,
    )
