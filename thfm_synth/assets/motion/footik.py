"""Planting feet: two-bone leg IK that moves a foot vertically onto its contact height.

Direction-copying retargeting (retarget.py) reproduces the source's bone directions, so
with other leg proportions (a shorter shin, wider hips) only one foot can be on the floor
when the source has both down: the other hovers a few cm (up to 20 cm for stylised rigs
with wide stances). Where the source foot is planted, this module moves the target's
ankle by the vertical error of its sole and re-aims thigh and shin to reach it:

- the knee stays in the leg's current bending plane (pole = the knee's offset from the
  hip-ankle line; a straight leg bends towards the toes), so the leg never flips;
- thigh and shin turn by the smallest rotation onto their new directions (twist kept);
  foot and toes keep their world rotations, so the sole just translates;
- the correction is full at contact frames, interpolated across short gaps between
  contacts and faded out over `FADE_S` elsewhere, so a swing leg eases in and out of it
  and the clip has no pops; it never pushes a sole below its contact height.
"""

from __future__ import annotations

import numpy as np

from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import Skeleton, positions_from_global

FADE_S = 0.2  # seconds over which a correction fades in/out around contact frames
GAP_S = 0.4  # gaps between contacts up to this long are bridged by interpolation
_SIDES = ("Left", "Right")


MIN_STANCE_FRAMES = 2  # a planted foot bears weight for >= ~0.08 s even in a sprint


def stance(contacts: np.ndarray, min_frames: int = MIN_STANCE_FRAMES) -> np.ndarray:
    """Contacts (F, 2) without runs shorter than `min_frames` (a foot slowing at the low
    point of a swing or a cartwheel is not standing on anything)."""
    out = np.array(contacts, bool)
    for k in range(out.shape[1]):
        col = out[:, k]
        edges = np.flatnonzero(np.diff(np.concatenate([[0], col.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            if b - a < min_frames:
                col[a:b] = False
    return out


def leg_chain(skeleton: Skeleton, side: str) -> tuple[int, int, int] | None:
    """(hip, knee, ankle) joint indices of one leg, or None if the rig lacks one."""
    idx = tuple(skeleton.find(side + n) for n in ("UpLeg", "Leg", "Foot"))
    return None if None in idx else idx  # type: ignore[return-value]


def correction_profile(contacts: np.ndarray, error: np.ndarray, clearance: np.ndarray, fps: float) -> np.ndarray:
    """Vertical ankle moves (F, 2): `error` (sole goal - sole) at contact frames, bridged and
    faded elsewhere (module docstring), never lower than -`clearance` (sole above its goal)."""
    nf = contacts.shape[0]
    frames = np.arange(nf)
    fade = max(1.0, FADE_S * fps)
    gap = GAP_S * fps
    out = np.zeros((nf, 2))
    for k in range(2):
        on = np.flatnonzero(contacts[:, k])
        if not len(on):
            continue
        value = np.interp(frames, on, error[on, k])
        prev = np.full(nf, -np.inf)
        nxt = np.full(nf, np.inf)
        j = np.searchsorted(on, frames, side="right")
        has_prev, has_next = j > 0, j < len(on)
        prev[has_prev] = on[j[has_prev] - 1]
        nxt[has_next] = on[np.minimum(j, len(on) - 1)[has_next]]
        bridged = (nxt - prev) <= gap
        dist = np.minimum(frames - prev, nxt - frames)
        weight = np.where(bridged, 1.0, np.clip(1.0 - dist / fade, 0.0, 1.0))
        weight[on] = 1.0
        out[:, k] = np.maximum(weight * value, -clearance[:, k])
    return out


def plant(skeleton: Skeleton, glob: np.ndarray, root: np.ndarray, lift: np.ndarray) -> np.ndarray:
    """World rotations (F, J, 4) with each leg re-aimed so its ankle moves by (0, 0, lift[:, k])."""
    glob = glob.copy()
    pos = positions_from_global(skeleton, glob, root)
    for k, side in enumerate(_SIDES):
        chain = leg_chain(skeleton, side)
        move = lift[:, k]
        frames = np.flatnonzero(np.abs(move) > 1e-6)
        if chain is None or not len(frames):
            continue
        h, kn, an = chain
        hip, knee, ankle = pos[frames, h], pos[frames, kn], pos[frames, an]
        rest = skeleton.rest_positions
        a = float(np.linalg.norm(rest[kn] - rest[h]))
        b = float(np.linalg.norm(rest[an] - rest[kn]))
        goal = ankle + np.stack([np.zeros_like(move[frames]), np.zeros_like(move[frames]), move[frames]], axis=1)
        reach = goal - hip
        d = np.clip(np.linalg.norm(reach, axis=1), abs(a - b) + 1e-6, a + b - 1e-6)
        axis = reach / np.maximum(np.linalg.norm(reach, axis=1, keepdims=True), 1e-12)
        # pole: the knee's current offset from the hip-ankle line; a straight leg bends towards the toes
        line = ankle - hip
        line /= np.maximum(np.linalg.norm(line, axis=1, keepdims=True), 1e-12)
        pole = (knee - hip) - np.einsum("fi,fi->f", knee - hip, line)[:, None] * line
        toes = quat.rotate(
            glob[frames, an], quat.rotate(quat.conj(skeleton.rest_orientations[an]), np.array([0.0, -1.0, 0.0]))
        )
        weak = np.linalg.norm(pole, axis=1) < 1e-3
        pole[weak] = toes[weak]
        pole -= np.einsum("fi,fi->f", pole, axis)[:, None] * axis
        pole /= np.maximum(np.linalg.norm(pole, axis=1, keepdims=True), 1e-12)
        x = (a * a - b * b + d * d) / (2 * d)
        new_knee = hip + x[:, None] * axis + np.sqrt(np.maximum(a * a - x * x, 0.0))[:, None] * pole
        new_ankle = hip + d[:, None] * axis
        turn_thigh = quat.between(knee - hip, new_knee - hip)
        shin_after = quat.rotate(turn_thigh, ankle - knee)
        turn_shin = quat.mul(quat.between(shin_after, new_ankle - new_knee), turn_thigh)
        below = np.array([j for j in range(skeleton.num_joints) if _descends(skeleton, j, h)])
        thigh_only = np.array([j for j in below if not _descends(skeleton, j, kn)])
        shin_only = np.array([j for j in below if _descends(skeleton, j, kn) and not _descends(skeleton, j, an)])
        for group, turn in ((thigh_only, turn_thigh), (shin_only, turn_shin)):
            if len(group):
                glob[frames[:, None], group[None]] = quat.mul(turn[:, None], glob[frames[:, None], group[None]])
    return glob


def _descends(skeleton: Skeleton, j: int, ancestor: int) -> bool:
    while j >= 0:
        if j == ancestor:
            return True
        j = int(skeleton.parents[j])
    return False
