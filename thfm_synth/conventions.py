"""Coordinate conventions shared by every stage (pure numpy, no Blender).

World frame: right-handed, metres, **Z up**, the ground is the plane z = 0, and a
character in its rest pose faces **-Y** (Blender's front view). BVH files are Y-up and
face +Z; `BVH_TO_WORLD` maps them here: (x, y, z) -> (x, -z, y).

Camera frame: **OpenCV** - x right, y down, z forward (the optical axis). Each frame
stores the intrinsics K (3x3, pixels) and the world-to-camera extrinsics [R|t] so that
X_cam = R @ X_world + t and the pixel is (u, v) = (K @ X_cam)[:2] / z. Pixel (0, 0) is
the top-left corner of the top-left pixel, so pixel centres sit at half-integers and
the principal point of a centred lens is (W/2, H/2). Depth is z in the camera frame
(distance along the optical axis), not the length of the ray.

Blender's camera looks down its local -Z with +Y up; `BLENDER_CAM_TO_OPENCV` flips
y and z to reach the OpenCV camera frame.
"""

from __future__ import annotations

import numpy as np

BVH_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
BLENDER_CAM_TO_OPENCV = np.diag([1.0, -1.0, -1.0])

CONVENTIONS_TEXT = (
    "world: right-handed, metres, Z up, ground plane z=0, characters face -Y at rest; "
    "camera: OpenCV (x right, y down, z forward), extrinsics are world-to-camera "
    "X_cam = R @ X_world + t; intrinsics K in pixels with pixel (0,0) the top-left corner "
    "of the top-left pixel (centres at +0.5); depth is camera-frame z in metres; normals are "
    "unit vectors in the OpenCV camera frame; time in seconds"
)


def yaw_matrix(yaw_deg: float) -> np.ndarray:
    """Rotation about world Z by `yaw_deg` degrees, counter-clockwise seen from above."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def intrinsics(focal_mm: float, sensor_width_mm: float, width: int, height: int) -> np.ndarray:
    """Pinhole K for a horizontally fitted sensor (Blender's AUTO fit for landscape images)."""
    f_px = focal_mm / sensor_width_mm * width
    return np.array([[f_px, 0.0, width / 2.0], [0.0, f_px, height / 2.0], [0.0, 0.0, 1.0]])


def world_to_camera_from_blender(matrix_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, t) from a Blender camera's 4x4 object-to-world matrix."""
    m = np.asarray(matrix_world, dtype=np.float64)
    rot_cam_to_world = m[:3, :3] / np.linalg.norm(m[:3, :3], axis=0)  # drop any scale
    r = BLENDER_CAM_TO_OPENCV @ rot_cam_to_world.T
    t = -r @ m[:3, 3]
    return r, t


def blender_matrix_from_world_to_camera(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Inverse of `world_to_camera_from_blender`: the camera object's 4x4 matrix_world."""
    rot_cam_to_world = (BLENDER_CAM_TO_OPENCV @ np.asarray(r)).T
    m = np.eye(4)
    m[:3, :3] = rot_cam_to_world
    m[:3, 3] = -np.asarray(r).T @ np.asarray(t)
    return m


def project(k: np.ndarray, r: np.ndarray, t: np.ndarray, points_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project (..., 3) world points; returns (pixels (..., 2), camera-frame depth (...))."""
    cam = np.asarray(points_world) @ np.asarray(r).T + np.asarray(t)
    z = cam[..., 2]
    uvw = cam @ np.asarray(k).T
    return uvw[..., :2] / uvw[..., 2:3], z


def look_at(
    eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])
) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV world-to-camera (R, t) for a camera at `eye` looking at `target`, world Z up."""
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:  # looking straight up or down: any horizontal x will do
        x = np.cross(z, np.array([0.0, 1.0, 0.0]))
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    r = np.stack([x, y, z])
    return r, -r @ eye
