"""Which way the subject faces, and where the camera is relative to that (pure numpy).

Angles are yaws about world +Z in degrees, in the camera-azimuth convention of
`scene/camera.py`: a direction d on the ground plane has yaw atan2(d_x, -d_y), so -Y (the
rest facing) is 0 and +90 is the subject's left of a subject at rest (+X).

- **Body facing**: the horizontal normal of the pelvis/shoulder frame. The left-minus-right
  vectors of the hips and of the shoulders (unit each, summed so the counter-rotation of
  pelvis and chest in gait cancels) give the body's left; forward is left x up.
- **Face facing**: the horizontal direction of the nose from the midpoint of the ears, with
  its component along the ear axis removed (a nose is on the face's midline), i.e. the nose
  direction a person judging "is the face towards me" uses.
- **Relative azimuth** of a camera: the yaw of (camera centre - subject point) minus the
  facing yaw, wrapped to [-180, 180). 0 = the camera in front, +90 = on the subject's left,
  +-180 = behind. The face angle is the same with the face facing and the face's centre.
"""

from __future__ import annotations

import numpy as np

UP = np.array([0.0, 0.0, 1.0])
HIP_NAMES = ("LeftUpLeg", "RightUpLeg")  # canonical skeleton names
SHOULDER_NAMES = ("LeftArm", "RightArm")
SMPL_HIPS, SMPL_SHOULDERS = (1, 2), (16, 17)  # indices in SMPL-24


def yaw_of(direction: np.ndarray) -> np.ndarray:
    """Yaw (deg) of horizontal directions (..., >=2): 0 = -Y, +90 = +X."""
    d = np.asarray(direction, np.float64)
    return np.degrees(np.arctan2(d[..., 0], -d[..., 1]))


def wrap(angle_deg: np.ndarray) -> np.ndarray:
    """Angles wrapped to [-180, 180)."""
    return (np.asarray(angle_deg, np.float64) + 180.0) % 360.0 - 180.0


def _unit_xy(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64)[..., :2]
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def body_forward(
    left_hip: np.ndarray, right_hip: np.ndarray, left_shoulder: np.ndarray, right_shoulder: np.ndarray
) -> np.ndarray:
    """(F, 2) unit horizontal forward of the body from hip and shoulder joints (F, 3) each."""
    left = _unit_xy(left_hip - right_hip) + _unit_xy(left_shoulder - right_shoulder)
    forward = np.stack([left[..., 1], -left[..., 0]], axis=-1)  # left x up, horizontal
    return _unit_xy(forward)


def body_forward_from_track(joints: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(F, 2) body forward of canonical-named joints (F, J, 3)."""
    i = {n: names.index(n) for n in HIP_NAMES + SHOULDER_NAMES}
    return body_forward(
        joints[:, i["LeftUpLeg"]], joints[:, i["RightUpLeg"]], joints[:, i["LeftArm"]], joints[:, i["RightArm"]]
    )


def body_forward_smpl24(joints: np.ndarray) -> np.ndarray:
    """(F, 2) body forward of SMPL-24 joints (F, 24, 3)."""
    return body_forward(
        joints[:, SMPL_HIPS[0]], joints[:, SMPL_HIPS[1]], joints[:, SMPL_SHOULDERS[0]], joints[:, SMPL_SHOULDERS[1]]
    )


def face_forward(face: np.ndarray) -> np.ndarray:
    """(F, 2) unit horizontal nose direction of COCO face points (F, 5, 3): nose, eyes, ears."""
    face = np.asarray(face, np.float64)
    nose, lear, rear = face[:, 0], face[:, 3], face[:, 4]
    ears = lear - rear
    axis = ears / np.maximum(np.linalg.norm(ears, axis=-1, keepdims=True), 1e-12)
    d = nose - 0.5 * (lear + rear)
    d = d - np.einsum("fi,fi->f", d, axis)[:, None] * axis
    flat = np.linalg.norm(d[:, :2], axis=-1) < 1e-6  # face straight up or down: use the ear axis
    d[flat] = np.cross(ears[flat], UP)
    return _unit_xy(d)


def face_centre(face: np.ndarray) -> np.ndarray:
    """(F, 3) centre of the face points: nose, eyes and ears averaged."""
    return np.asarray(face, np.float64).mean(axis=1)


def relative_azimuth(camera_centres: np.ndarray, points: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(F,) yaw (deg, [-180, 180)) of each camera seen from the subject point, from its facing."""
    return wrap(yaw_of(np.asarray(camera_centres) - np.asarray(points)) - yaw_of(forward))


def circular_mean_deg(angles_deg: np.ndarray) -> float:
    a = np.radians(np.asarray(angles_deg, np.float64))
    return float(np.degrees(np.arctan2(np.sin(a).mean(), np.cos(a).mean())))


def face_in_view(k: np.ndarray, r: np.ndarray, t: np.ndarray, face: np.ndarray, width: int, height: int) -> np.ndarray:
    """(F,) bool: nose and both eyes project inside the image, in front of the camera.
    k (3, 3) or (F, 3, 3); r (F, 3, 3); t (F, 3); face (F, 5, 3)."""
    pts = np.asarray(face, np.float64)[:, :3]
    cam = np.einsum("fij,fkj->fki", r, pts) + t[:, None]
    kk = np.broadcast_to(k, (len(r), 3, 3))
    uvw = np.einsum("fij,fkj->fki", kk, cam)
    uv = uvw[..., :2] / np.where(np.abs(uvw[..., 2:]) < 1e-12, 1e-12, uvw[..., 2:])
    inside = (uv[..., 0] >= 0) & (uv[..., 0] <= width) & (uv[..., 1] >= 0) & (uv[..., 1] <= height) & (cam[..., 2] > 0)
    return inside.all(axis=1)


#: |face angle| up to this counts as "the face is towards the camera" (both eyes seen)
FACE_TOWARDS_DEG = 90.0


def view_record(
    k: np.ndarray,
    r: np.ndarray,
    t: np.ndarray,
    smpl24: np.ndarray,
    coco17: np.ndarray,
    width: int,
    height: int,
    reference: str,
    azimuth_range: tuple[float, float] | None = None,
) -> dict:
    """What the camera saw of the subject, for metadata.json and the render index:

    azimuth_deg: per frame, the camera's azimuth seen from the pelvis relative to the body's
    facing that frame (first value: the clip start, where a "subject" plan puts it exactly);
    face_angle_deg: per frame, the camera's azimuth seen from the face centre relative to the
    nose direction; face_towards_camera: fraction of frames with |face angle| <= 90 deg;
    face_in_view: fraction of frames with nose and both eyes inside the image; with the
    configured azimuth range, face_in_azimuth_range: fraction with the face angle inside it."""
    r = np.asarray(r, np.float64)
    t = np.asarray(t, np.float64)
    centres = -np.einsum("fji,fj->fi", r, t)
    body = relative_azimuth(centres, smpl24[:, 0], body_forward_smpl24(smpl24))
    face = np.asarray(coco17, np.float64)[:, :5]
    face_angle = relative_azimuth(centres, face_centre(face), face_forward(face))
    out = {
        "azimuth_reference": reference,
        "facing_yaw_deg": round(float(yaw_of(body_forward_smpl24(smpl24[:1]))[0]), 3),
        "azimuth_first_deg": round(float(body[0]), 3),
        "azimuth_mean_deg": round(circular_mean_deg(body), 3),
        "azimuth_deg": [round(float(a), 2) for a in body],
        "face_angle_deg": [round(float(a), 2) for a in face_angle],
        "face_towards_camera": round(float(np.mean(np.abs(face_angle) <= FACE_TOWARDS_DEG)), 4),
        "face_in_view": round(float(np.mean(face_in_view(k, r, t, face, width, height))), 4),
    }
    if azimuth_range is not None:
        lo, hi = azimuth_range
        out["face_in_azimuth_range"] = round(float(np.mean((face_angle >= lo) & (face_angle <= hi))), 4)
    return out
