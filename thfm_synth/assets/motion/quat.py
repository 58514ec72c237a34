"""Vectorised unit-quaternion maths used by every motion module.

Component order is **(w, x, y, z)** (scalar first) everywhere in thfm_synth.assets.motion,
the same as Blender's `PoseBone.rotation_quaternion`, so the render side can assign
our arrays without shuffling. scipy's `Rotation` is scalar-last; convert with
`to_xyzw` / `from_xyzw` when handing data to it. All functions broadcast over
leading axes and never loop in Python.
"""

from __future__ import annotations

import numpy as np

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b: the rotation b followed by a (same as matrix A @ B)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    aw, ax, ay, az = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bw, bx, by, bz = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def conj(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    # v' = v + 2w(u x v) + 2u x (u x v); cross products written out (np.cross is slow
    # on small trailing axes)
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return np.stack(
        [vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz), vz + w * tz + (x * ty - y * tx)], axis=-1
    )


def to_matrix(q: np.ndarray) -> np.ndarray:
    q = normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def from_matrix(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions with w >= 0."""
    from scipy.spatial.transform import Rotation

    m = np.asarray(m, dtype=np.float64)
    flat = Rotation.from_matrix(m.reshape(-1, 3, 3)).as_quat()  # x, y, z, w
    q = from_xyzw(flat).reshape(m.shape[:-2] + (4,))
    return positive_w(q)


def from_axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


def to_axis_angle(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (axis * angle, radians, angle in [0, pi])."""
    q = positive_w(normalize(q))
    s = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2.0 * np.arctan2(s, q[..., 0])
    scale = np.where(s > 1e-12, angle / np.maximum(s, 1e-300), 2.0)
    return q[..., 1:] * scale[..., None]


def angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle in radians, in [0, pi]."""
    q = normalize(q)
    return 2.0 * np.arctan2(np.linalg.norm(q[..., 1:], axis=-1), np.abs(q[..., 0]))


def positive_w(q: np.ndarray) -> np.ndarray:
    """q and -q are the same rotation; pick w >= 0 for a canonical representative."""
    q = np.asarray(q, dtype=np.float64)
    return np.where(q[..., :1] < 0.0, -q, q)


def between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction u onto direction v (no twist about either).

    Antiparallel inputs have no unique answer; we rotate 180 degrees about an axis
    perpendicular to u so the result is still a valid rotation.
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u, v = np.broadcast_arrays(u, v)
    un = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-300)
    vn = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-300)
    d = np.sum(un * vn, axis=-1, keepdims=True)
    c = np.cross(un, vn)
    q = np.concatenate([1.0 + d, c], axis=-1)
    opposite = (1.0 + d[..., 0]) < 1e-10
    if np.any(opposite):
        ref = np.where(np.abs(un[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        axis = np.cross(un, ref)
        axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
        flip = np.concatenate([np.zeros(axis.shape[:-1] + (1,)), axis], axis=-1)
        q = np.where(opposite[..., None], flip, q)
    return normalize(q)


def from_xyzw(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., 3:], q[..., :3]], axis=-1)


def to_xyzw(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.concatenate([q[..., 1:], q[..., :1]], axis=-1)


def make_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along `axis` (time) so consecutive quaternions lie in the same hemisphere.

    Interpolating between q and a neighbour near -q would take the long way round;
    after this, plain component-wise maths between neighbours is safe.
    """
    q = np.moveaxis(np.asarray(q, dtype=np.float64), axis, 0).copy()
    if q.shape[0] < 2:
        return np.moveaxis(q, 0, axis)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flips = np.cumsum(dots < 0.0, axis=0) % 2 == 1
    q[1:][flips] *= -1.0
    return np.moveaxis(q, 0, axis)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation from a (t=0) to b (t=1) along the shorter arc."""
    a = normalize(a)
    b = normalize(b)
    t = np.asarray(t, dtype=np.float64)[..., None]
    d = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(d < 0.0, -b, b)
    d = np.abs(d)
    theta = np.arccos(np.clip(d, -1.0, 1.0))
    sin_theta = np.sin(theta)
    # Nearly identical rotations: sin(theta) ~ 0, so fall back to a normalised lerp.
    small = sin_theta < 1e-6
    safe = np.where(small, 1.0, sin_theta)
    wa = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    wb = np.where(small, t, np.sin(t * theta) / safe)
    return normalize(wa * a + wb * b)


def from_euler_channels(angles_deg: np.ndarray, axes: str) -> np.ndarray:
    """BVH-style Euler angles: R = R_axes[0] @ R_axes[1] @ ... (intrinsic, listed order).

    `angles_deg` is (..., len(axes)); `axes` is e.g. "ZYX" (any order, any subset).
    """
    angles = np.radians(np.asarray(angles_deg, dtype=np.float64))
    out = np.broadcast_to(IDENTITY, angles.shape[:-1] + (4,)).copy()
    unit = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}
    for i, ax in enumerate(axes):
        out = mul(out, from_axis_angle(np.array(unit[ax]), angles[..., i]))
    return out


def wahba(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rotation R minimising sum w_i |R src_i - dst_i|^2 (Kabsch), as a quaternion.

    src/dst are (..., N, 3). Degenerate sets (fewer than two independent directions)
    fall back to the smallest rotation between the first pair, which is the only
    information such a set carries.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    w = np.ones(src.shape[:-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    h = np.einsum("...n,...ni,...nj->...ij", w, dst, src)
    u, s, vt = np.linalg.svd(h)
    det = np.linalg.det(u @ vt)
    d = np.ones(s.shape)
    d[..., 2] = np.sign(det)
    d[..., 2] = np.where(d[..., 2] == 0, 1.0, d[..., 2])
    r = (u * d[..., None, :]) @ vt
    q = from_matrix(r)
    degenerate = s[..., 1] < 1e-9 * np.maximum(s[..., 0], 1e-300)
    if np.any(degenerate):
        q = np.where(degenerate[..., None], between(src[..., 0, :], dst[..., 0, :]), q)
    return q
