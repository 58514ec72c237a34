"""Armature clean-up shared by built-in bodies and imported rigs (pure numpy).

`build_skeleton` takes a source armature (names, parents, rest heads/tails/rotations in
the world frame) plus which bones carry skin weights and a `RigMapping`, and returns the
canonical skeleton stored in a baked character:

1. every mapped bone whose source parent chain lacks its canonical ancestor (IK rigs
   such as Quaternius parent the feet to the root) is re-parented to the nearest mapped
   canonical ancestor, keeping its world rest pose;
2. bones that carry no weight, are not mapped and have no kept descendant are dropped
   (IK pole targets, `_end` leaves), and so are unweighted, unmapped ancestors of the
   pelvis (`root`, `Bip01`, Quaternius `Bone`): the pelvis (`Hips`) becomes joint 0 and
   the only root; any other kept root is re-parented under it;
3. joints are ordered parents-before-children, mapped bones take their canonical name
   and extra bones keep their source name (prefixed `x:` if that collides).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from thfm_synth.assets.characters.rigs import CANONICAL_PARENT, RigMapping


@dataclass
class Armature:
    """The cleaned, canonically named armature of a baked character."""

    names: list[str]  # canonical name for mapped joints, source name for extra ones
    source_names: list[str]
    parents: np.ndarray  # (J,) int32, -1 for the root (joint 0, Hips)
    heads: np.ndarray  # (J, 3) float64
    tails: np.ndarray  # (J, 3)
    rotations: np.ndarray  # (J, 3, 3) bone-to-world rest rotation; column 1 points head -> tail
    old_index: np.ndarray  # (J,) index of each joint in the source armature
    reparented: list[str]  # source names of bones given a new parent
    dropped: list[str]  # source names of bones dropped

    def index(self, name: str) -> int:
        return self.names.index(name)


def orthonormal_rest(heads: np.ndarray, tails: np.ndarray, rotations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make each rotation proper and orthonormal with column 1 along head -> tail (Blender's bone rule).

    Returns (rotations, tails): the Y axis is taken from the bone direction, X/Z from the
    given rotation (re-orthogonalised), and tails are recomputed as head + Y * length so
    that a Blender armature built from head/tail/matrix reproduces them exactly.
    """
    heads = np.asarray(heads, np.float64)
    tails = np.asarray(tails, np.float64)
    rot = np.asarray(rotations, np.float64).copy()
    d = tails - heads
    length = np.linalg.norm(d, axis=1)
    ok = length > 1e-9
    y = np.where(ok[:, None], d / np.maximum(length, 1e-12)[:, None], rot[:, :, 1])
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    z = rot[:, :, 2] - (rot[:, :, 2] * y).sum(1, keepdims=True) * y
    bad = np.linalg.norm(z, axis=1) < 1e-6
    if bad.any():  # the old Z is along the bone: fall back to the old X
        x_old = rot[bad, :, 0]
        z[bad] = np.cross(x_old, y[bad])
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    x = np.cross(y, z)
    out = np.stack([x, y, z], axis=2)
    length = np.where(ok, length, 0.01)
    return out, heads + y * length[:, None]


def _ancestors(i: int, parents: np.ndarray) -> list[int]:
    out = []
    p = int(parents[i])
    while p >= 0:
        out.append(p)
        p = int(parents[p])
    return out


def build_skeleton(
    source_names: list[str],
    parents: np.ndarray,
    heads: np.ndarray,
    tails: np.ndarray,
    rotations: np.ndarray,
    weighted: np.ndarray,
    mapping: RigMapping,
) -> Armature:
    n = len(source_names)
    parents = np.asarray(parents, np.int64).copy()
    weighted = np.asarray(weighted, bool)
    idx_of = {s: i for i, s in enumerate(source_names)}
    role_of = {idx_of[s]: c for s, c in mapping.to_canonical.items() if s in idx_of}
    src_of_role = {c: i for i, c in role_of.items()}
    reparented: list[str] = []

    # 1. canonical ancestors
    for i, role in sorted(role_of.items()):
        anc = CANONICAL_PARENT.get(role)
        while anc is not None and anc not in src_of_role:
            anc = CANONICAL_PARENT.get(anc)
        if anc is None:
            continue
        want = src_of_role[anc]
        if want not in _ancestors(i, parents):
            parents[i] = want
            reparented.append(source_names[i])

    # 2. pruning
    hips = src_of_role["Hips"]
    keep = weighted.copy()
    keep[list(role_of)] = True
    for i in range(n):
        if keep[i]:
            for a in _ancestors(i, parents):
                keep[a] = True
    for a in _ancestors(hips, parents):
        if not weighted[a] and a not in role_of:
            keep[a] = False
    for i in range(n):
        if keep[i] and i != hips:
            chain = _ancestors(i, parents)
            kept_chain = [a for a in chain if keep[a]]
            if not kept_chain:  # a separate root, or it hung from a dropped pelvis ancestor
                parents[i] = hips
                reparented.append(source_names[i])
            elif kept_chain[0] != parents[i]:
                parents[i] = kept_chain[0]
    parents[hips] = -1
    # every kept bone must now reach the pelvis
    for i in range(n):
        if keep[i] and i != hips and hips not in _ancestors(i, parents):
            parents[i] = hips
            if source_names[i] not in reparented:
                reparented.append(source_names[i])

    # 3. order: depth-first from the pelvis, children in source order
    children: dict[int, list[int]] = {}
    for i in range(n):
        if keep[i] and i != hips:
            children.setdefault(int(parents[i]), []).append(i)
    order: list[int] = []
    stack = [hips]
    while stack:
        i = stack.pop()
        order.append(i)
        stack.extend(reversed(children.get(i, [])))
    new_of_old = {o: k for k, o in enumerate(order)}
    new_parents = np.array([-1 if o == hips else new_of_old[int(parents[o])] for o in order], np.int32)
    names = []
    canon = set(CANONICAL_PARENT)
    for o in order:
        if o in role_of:
            names.append(role_of[o])
        else:
            s = source_names[o]
            names.append(f"x:{s}" if s in canon or s in names else s)
    rots, new_tails = orthonormal_rest(np.asarray(heads)[order], np.asarray(tails)[order], np.asarray(rotations)[order])
    dropped = [source_names[i] for i in range(n) if not keep[i]]
    return Armature(
        names=names,
        source_names=[source_names[o] for o in order],
        parents=new_parents,
        heads=np.asarray(heads, np.float64)[order],
        tails=new_tails,
        rotations=rots,
        old_index=np.array(order, np.int64),
        reparented=reparented,
        dropped=dropped,
    )
