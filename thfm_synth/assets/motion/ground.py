"""Feet and the ground: lowest foot point, contacts, and the source's support level.

"Foot points" are the joints of each foot chain that exist in a skeleton, by canonical
name: ankle (`*Foot`), ball (`*ToeBase`) and toe tip (`*ToeBase_end`). Joint centres
sit inside the foot, so "on the ground" means the lowest of them is at the rig's
contact height (a few cm for a mesh rig), not at exactly z = 0.

Given the joints' world rotations, a virtual **heel** joins them: the ankle moved down to
the rest level of the foot's lowest toe point, turned with the foot. Mocap skeletons have
no heel joint, so at heel strike every foot joint is 4-5 cm up (toes raised) although the
heel is on the floor; without the heel that frame looks airborne.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d

from thfm_synth.assets.motion import quat
from thfm_synth.assets.motion.skeleton import Skeleton

FOOT_JOINTS: dict[str, tuple[str, ...]] = {
    "left": ("LeftFoot", "LeftToeBase", "LeftToeBase_end"),
    "right": ("RightFoot", "RightToeBase", "RightToeBase_end"),
}

#: Default contact detection: the lowest joint of a foot moves slower than this (m/s) ...
CONTACT_SPEED = 0.5
#: ... and is within this height (m) of the lowest foot point seen in +-CONTACT_WINDOW_S.
#: The window rejects the slow apex of a jump; the tolerance admits heel-to-toe roll.
CONTACT_TOLERANCE = 0.05
CONTACT_WINDOW_S = 0.35
#: ... and is at most this far (m) above the clip's floor (2nd percentile of the lowest
#: foot point), so feet held still while hanging from a bar are not "standing".
CONTACT_MAX_HEIGHT = 0.6


def foot_indices(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """Joint indices of the left and right foot points; raises ValueError if a side has none."""
    out = []
    for side, names in FOOT_JOINTS.items():
        idx = [i for i in (skeleton.find(n) for n in names) if i is not None]
        if not idx:
            raise ValueError(f"skeleton {skeleton.name!r} has no {side} foot joints ({', '.join(names)})")
        out.append(np.array(idx))
    return out[0], out[1]


def heel_points(positions: np.ndarray, rotations: np.ndarray, skeleton: Skeleton) -> np.ndarray | None:
    """(F, 2, 3) virtual left/right heels (module docstring) from world positions and world
    rotations (forward_kinematics), or None if a foot has no ankle and toe joint."""
    out = []
    for names in FOOT_JOINTS.values():
        ankle = skeleton.find(names[0])
        toes = [i for i in (skeleton.find(n) for n in names[1:]) if i is not None]
        if ankle is None or not toes:
            return None
        rest = skeleton.rest_positions
        drop = min(float(rest[toes, 2].min() - rest[ankle, 2]), 0.0)
        delta = quat.mul(rotations[:, ankle], quat.conj(skeleton.rest_orientations[ankle]))
        out.append(positions[:, ankle] + quat.rotate(delta, np.array([0.0, 0.0, drop])))
    return np.stack(out, axis=1)


def _with_heels(
    positions: np.ndarray, skeleton: Skeleton, rotations: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (F, n, 3), left indices, right indices) of the foot points, heels appended."""
    left, right = foot_indices(skeleton)
    heels = None if rotations is None else heel_points(positions, rotations, skeleton)
    if heels is None:
        return positions, left, right
    n = positions.shape[1]
    return np.concatenate([positions, heels], axis=1), np.append(left, n), np.append(right, n + 1)


def lowest_foot_height(positions: np.ndarray, skeleton: Skeleton, rotations: np.ndarray | None = None) -> np.ndarray:
    """Height (z) of the lowest foot point per frame, (F,); with rotations, heels count."""
    pts, left, right = _with_heels(positions, skeleton, rotations)
    return pts[:, np.concatenate([left, right]), 2].min(axis=1)


def contact_height_default(skeleton: Skeleton) -> float:
    """Where the lowest foot joint should sit when standing: its rest height if the rig
    is modelled standing on z = 0 (Blender/FBX/anny rigs), else 0 (e.g. BVH skeletons
    whose rest root is at the origin)."""
    left, right = foot_indices(skeleton)
    z = float(skeleton.rest_positions[np.concatenate([left, right]), 2].min())
    return z if 0.0 <= z <= 0.15 else 0.0


def _foot_state(positions: np.ndarray, idx: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Height and speed (m/s) of the lowest point of one foot, per frame."""
    pts = positions[:, idx, :]  # (F, n, 3)
    nf = pts.shape[0]
    k = max(1, int(round(0.02 * fps)))  # +-20 ms central difference: suppresses mocap jitter
    lo = np.clip(np.arange(nf) - k, 0, nf - 1)
    hi = np.clip(np.arange(nf) + k, 0, nf - 1)
    dt = np.maximum(hi - lo, 1) / fps
    speed = np.linalg.norm(pts[hi] - pts[lo], axis=-1) / dt[:, None]  # (F, n)
    which = np.argmin(pts[..., 2], axis=1)
    rows = np.arange(nf)
    return pts[rows, which, 2], speed[rows, which]


def foot_contacts(
    positions: np.ndarray,
    skeleton: Skeleton,
    fps: float,
    speed: float = CONTACT_SPEED,
    tolerance: float = CONTACT_TOLERANCE,
    window_s: float = CONTACT_WINDOW_S,
    max_height: float = CONTACT_MAX_HEIGHT,
    rotations: np.ndarray | None = None,
) -> np.ndarray:
    """(F, 2) booleans, left and right foot planted.

    A foot is planted when its lowest point is nearly still, no higher than
    `tolerance` above the lowest foot point of the surrounding `window_s` seconds, and
    no higher than `max_height` above the clip's floor. The local test finds contacts
    on raised terrain (steps, blocks) without knowing its height.
    """
    pts, left, right = _with_heels(positions, skeleton, rotations)
    size = 2 * max(1, int(round(window_s * fps))) + 1
    lowest = pts[:, np.concatenate([left, right]), 2].min(axis=1)
    local = minimum_filter1d(lowest, size=size, mode="nearest")
    ceiling = np.percentile(lowest, 2) + max_height
    out = []
    for idx in (left, right):
        h, v = _foot_state(pts, idx, fps)
        out.append((v < speed) & (h <= local + tolerance) & (h <= ceiling))
    return np.stack(out, axis=1)


def support_height(
    positions: np.ndarray,
    skeleton: Skeleton,
    fps: float,
    contacts: np.ndarray | None = None,
    rotations: np.ndarray | None = None,
) -> np.ndarray:
    """Height of what the subject stands on, per frame (F,).

    At contact frames it is the planted foot's lowest point; between contacts it is
    interpolated linearly (so a jump keeps its height above the take-off/landing
    level), and it never exceeds the lowest foot point (so nothing sinks). Clips with
    no detected contact fall back to the 5th percentile of the lowest foot point.
    """
    pts, left, right = _with_heels(positions, skeleton, rotations)
    lowest = pts[:, np.concatenate([left, right]), 2].min(axis=1)
    if contacts is None:
        contacts = foot_contacts(positions, skeleton, fps, rotations=rotations)
    heights = np.stack([pts[:, left, 2].min(axis=1), pts[:, right, 2].min(axis=1)], axis=1)
    planted = np.where(contacts, heights, np.inf).min(axis=1)
    frames = np.flatnonzero(np.isfinite(planted))
    if frames.size == 0:
        return np.full_like(lowest, np.percentile(lowest, 5))
    support = np.interp(np.arange(lowest.shape[0]), frames, planted[frames])
    return np.minimum(support, lowest)
