"""Camera trajectories: per-frame K and world-to-camera [R|t] from a spec and the subject's joints.

Pure numpy (no Blender): the renderer only copies these matrices onto its camera, and the
same arrays are written to the annotations, so labels and pixels share one camera.

How a trajectory is built
- The *framed region* depends on the framing: full body (feet to head top), upper body
  (pelvis to head top) or face (a head-sized box). Its height must fill `subject_fill` of
  the image, which fixes the camera distance for the focal length:
  d = f_px * region_height / (subject_fill * image_height).
- The look-at target is the region centre, smoothed over time (a zero-phase Gaussian
  filter), so the camera follows the subject without jitter.
- Schedules (orbit sweep, dolly distance) use the minimum-jerk profile
  10s^3 - 15s^4 + 6s^5, whose velocity and acceleration vanish at both ends.
- Handheld shake is a sum of three sinusoids per axis at 0.61-1.37x `shake_hz` with phases from
  the render seed: smooth (bounded jerk) yet irregular.
- The camera never goes below `MIN_EYE_ABOVE_FEET_M` over the subject's lowest joint in the clip (a
  low camera backing away at a negative elevation would otherwise pass under the ground and see
  only its underside); where that lifts it, it keeps aiming at the target.
- In front of an HDRI the camera stands at the HDRI's capture height (`eye_height_m`: the
  manifest entry's `params.capture_height_m`, default HDRI_CAPTURE_HEIGHT_M) above the ground at
  z = 0, whatever the planned elevation: an environment map is a photograph from one point, and
  only a camera at that height sees the shadow-catcher ground meet the photographed ground at the
  same scale (a low camera made the person a giant floating over the scene); it still aims at the
  target, so the horizon stays in view for long lenses.
- Finally, if the framed joints leave the image in more than 5% of frames (a fast
  subject, a telephoto lens), the distance grows in steps of 15% until they stay in; the factor is recorded
  (`distance_scale`) since such a clip is framed wider than planned.

Azimuth reference (`spec.camera_azimuth_reference`, plan/spec.py):
- "subject": azimuth 0 is in front of the subject as it stands at the window's first frame:
  the body's facing (scene/facing.py: pelvis/shoulder frame) for full-body and upper-body
  framing, the face's (nose) direction for face framing. The camera is placed so that,
  seen from the framed subject at the first frame, it sits exactly at the planned azimuth
  (static and pan cameras: the point on the planned-distance circle around the clip's mean
  target on that bearing; moving cameras: the same around the first target), so the realised
  first-frame azimuth is the planned one whatever the subject does later. Face framing aims
  at the face (the centre of nose, eyes and ears), keeps nose, eyes and ears in frame, and
  moving cameras (orbit, dolly, handheld) follow the face's yaw through the clip (smoothed
  like the target) so a turning head stays facing the camera; static and pan cameras cannot.
- "world" (plans made before the reference existed): azimuth 0 is world -Y, the rest facing,
  and face framing aims at the Head joint, exactly as those plans were rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from thfm_synth.conventions import intrinsics, look_at, project
from thfm_synth.plan.spec import AZIMUTH_FROM_SUBJECT, AZIMUTH_FROM_WORLD, VideoSpec
from thfm_synth.render.scene import facing

HEAD_TOP_ABOVE_HEAD_JOINT_M = 0.12  # the head joint sits near the skull centre
FACE_REGION_M = 0.32  # height of the framed box for face crops
MIN_IN_FRAME = 0.95
MIN_EYE_ABOVE_FEET_M = 0.3
HDRI_CAPTURE_HEIGHT_M = 1.7  # a photographer's tripod: the default when the manifest does not say


FOLLOW_TRAJECTORIES = ("orbit", "dolly_in", "dolly_out", "handheld")  # cameras that move with the subject


@dataclass(frozen=True)
class SubjectTrack:
    """What the camera needs of the subject, per frame (world frame, metres)."""

    joints: np.ndarray  # (F, J, 3) positions of the framing joints
    names: tuple[str, ...]  # joint names (canonical CMU names)
    face: np.ndarray | None = None  # (F, 5, 3) COCO nose, left/right eye, left/right ear

    def index(self, name: str) -> int:
        return self.names.index(name)


def _subject_reference(spec: VideoSpec) -> bool:
    ref = spec.camera_azimuth_reference
    if ref not in (AZIMUTH_FROM_SUBJECT, AZIMUTH_FROM_WORLD):
        raise ValueError(f"unknown camera_azimuth_reference {ref!r} in spec {spec.video_id}")
    return ref == AZIMUTH_FROM_SUBJECT


@dataclass(frozen=True)
class CameraTrack:
    k: np.ndarray  # (3, 3) intrinsics, pixels (constant over the clip)
    r: np.ndarray  # (F, 3, 3) world-to-camera rotation (OpenCV)
    t: np.ndarray  # (F, 3) world-to-camera translation
    focal_length_mm: float
    sensor_width_mm: float
    width: int
    height: int
    distance_scale: float  # >1 when the distance was increased to keep the subject in frame

    @property
    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates, (F, 3)."""
        return -np.einsum("fji,fj->fi", self.r, self.t)


def min_jerk(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return s**3 * (10 - 15 * s + 6 * s**2)


def smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along axis 0 with edge padding."""
    if sigma_frames <= 0 or len(x) < 2:
        return x.copy()
    radius = int(np.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    k /= k.sum()
    pad = np.pad(x, [(radius, radius)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    return np.stack([np.convolve(pad[:, j], k, mode="valid") for j in range(x.shape[1])], axis=1)


def framing_region(track: SubjectTrack, framing: str) -> tuple[np.ndarray, float, np.ndarray]:
    """(region centre per frame (F,3), region height in metres, indices of the framed joints)."""
    j = track.joints
    head = j[:, track.index("Head")]
    top = head[:, 2] + HEAD_TOP_ABOVE_HEAD_JOINT_M
    if framing == "face":
        centre = head.copy()
        return centre, FACE_REGION_M, np.array([track.index("Head")])
    if framing == "upper_body":
        hips = j[:, track.index("Hips")]
        bottom = hips[:, 2]
        keep = [i for i, n in enumerate(track.names) if not any(s in n for s in ("Leg", "Foot", "Toe", "UpLeg"))]
        centre = np.stack([hips[:, 0], hips[:, 1], (bottom + top) / 2], axis=1)
        return centre, float(np.median(top - bottom)) * 1.1, np.array(keep)
    bottom = j[:, :, 2].min(axis=1)
    mid_xy = j[:, :, :2].mean(axis=1)
    centre = np.concatenate([mid_xy, ((bottom + top) / 2)[:, None]], axis=1)
    return centre, float(np.median(top - bottom)) * 1.05, np.arange(j.shape[1])


def face_region(track: SubjectTrack) -> tuple[np.ndarray, np.ndarray]:
    """Face framing aimed at the face: (centre (F, 3), the points kept in frame (F, 6, 3): the
    five face points and the Head joint)."""
    if track.face is None:
        raise ValueError("face framing from the subject's facing needs the subject's face points")
    face = np.asarray(track.face, np.float64)
    return facing.face_centre(face), np.concatenate([face, track.joints[:, [track.index("Head")]]], axis=1)


def reference_yaw(spec: VideoSpec, track: SubjectTrack) -> np.ndarray:
    """(F,) yaw (deg) that azimuth 0 points along, per frame (module docstring)."""
    n = track.joints.shape[0]
    if not _subject_reference(spec):
        return np.zeros(n)
    if spec.camera_framing == "face" and track.face is not None:
        yaw = np.degrees(np.unwrap(np.radians(facing.yaw_of(facing.face_forward(track.face)))))
        if spec.camera_trajectory in FOLLOW_TRAJECTORIES:
            smoothed = smooth(yaw[:, None], sigma_frames=spec.fps * 0.5)[:, 0]
            return yaw[0] + smoothed - smoothed[0]  # exact at the first frame, then follows the face
        return np.full(n, yaw[0])
    return np.full(n, facing.yaw_of(facing.body_forward_from_track(track.joints[:1], track.names))[0])


def _on_bearing(origin: np.ndarray, anchor: np.ndarray, yaw_deg: float, radius: float) -> np.ndarray:
    """(2,) the point at `radius` from `anchor` (horizontal) that `origin` sees at bearing `yaw_deg`:
    the far crossing of that ray with the circle. If the ray misses the circle (the subject starts
    far from the clip's mean position and the bearing points away from it), the point on the
    ray at `radius` from `origin`: the bearing is kept, the back-off of camera_track keeps
    the subject in frame."""
    u = np.array([np.sin(np.radians(yaw_deg)), -np.cos(np.radians(yaw_deg))])
    w = origin[:2] - anchor[:2]
    b = float(w @ u)
    disc = b * b - float(w @ w) + radius * radius
    if disc < 0 or -b + np.sqrt(disc) <= 0:
        return origin[:2] + radius * u
    return origin[:2] + (-b + np.sqrt(disc)) * u


def _direction(azimuth_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Unit vector from subject to camera; azimuth 0 = in front of a subject facing -Y."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.stack([np.sin(az) * np.cos(el), -np.cos(az) * np.cos(el), np.sin(el)], axis=-1)


def _shake(spec: VideoSpec, n: int) -> np.ndarray:
    """(n, 3) small yaw/pitch/roll offsets in degrees; zero unless handheld."""
    if spec.camera_trajectory != "handheld" or spec.shake_deg <= 0:
        return np.zeros((n, 3))
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.render_seed, 7])))
    t = np.arange(n) / spec.fps
    out = np.zeros((n, 3))
    for axis in range(3):
        # incommensurate partials near shake_hz: irregular, yet no high frequency (bounded jerk)
        for harmonic, weight in ((1.0, 1.0), (1.37, 0.5), (0.61, 0.25)):
            phase = rng.random() * 2 * np.pi
            out[:, axis] += weight * np.sin(2 * np.pi * spec.shake_hz * harmonic * t + phase)
    out *= spec.shake_deg / 1.75  # the weights sum to 1.75
    out[:, 2] *= 0.5  # less roll than yaw/pitch, as hand-held cameras do
    return out


def _rotate_small(r: np.ndarray, ypr_deg: np.ndarray) -> np.ndarray:
    """Apply camera-frame yaw (about y), pitch (about x), roll (about z) offsets."""
    y, p, ro = np.radians(ypr_deg)
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(ro), -np.sin(ro), 0], [np.sin(ro), np.cos(ro), 0], [0, 0, 1]])
    return rz @ rx @ ry @ r


def _aim(spec: VideoSpec, track: SubjectTrack) -> tuple[np.ndarray, float, np.ndarray]:
    """(region centre (F, 3), region height, points to keep in frame (F, K, 3))."""
    if spec.camera_framing == "face" and _subject_reference(spec) and track.face is not None:
        centre, framed = face_region(track)
        return centre, FACE_REGION_M, framed
    centre, region_h, keep = framing_region(track, spec.camera_framing)
    return centre, region_h, track.joints[:, keep]


def _build(spec: VideoSpec, track: SubjectTrack, scale: float, eye_height_m: float | None = None) -> CameraTrack:
    n = track.joints.shape[0]
    k = intrinsics(spec.focal_length_mm, spec.sensor_width_mm, spec.width, spec.height)
    centre, region_h, _ = _aim(spec, track)
    target = smooth(centre, sigma_frames=spec.fps * 0.5)
    distance = k[0, 0] * region_h / (spec.subject_fill * spec.height) * scale
    s = min_jerk(np.linspace(0.0, 1.0, n))
    traj = spec.camera_trajectory
    subject_ref = _subject_reference(spec)
    ref = reference_yaw(spec, track)
    azimuth = np.full(n, spec.camera_azimuth_deg)
    if subject_ref:
        # the bearing from the subject's first framed position is the planned azimuth exactly: find
        # the camera position on it at the planned distance from the anchor, and use its azimuth
        # (and, if the bearing misses that circle, its distance) from the anchor
        anchor = target.mean(axis=0) if traj in ("static", "pan_follow") else target[0]
        radius = (
            distance * (spec.dolly_ratio if traj == "dolly_in" else 1.0) * np.cos(np.radians(spec.camera_elevation_deg))
        )
        eye_xy = _on_bearing(centre[0], anchor, ref[0] + spec.camera_azimuth_deg, radius)
        azimuth = azimuth + (facing.yaw_of(eye_xy - anchor[:2]) - ref[0] - spec.camera_azimuth_deg) + ref
        distance *= float(np.linalg.norm(eye_xy - anchor[:2])) / max(radius, 1e-9)
    dist = np.full(n, distance)
    if traj == "orbit":
        azimuth = azimuth + spec.orbit_deg * s
    elif traj == "dolly_in":
        dist = distance * (spec.dolly_ratio + (1 - spec.dolly_ratio) * s)
    elif traj == "dolly_out":
        dist = distance * (1 + (spec.dolly_ratio - 1) * s)
    direction = _direction(azimuth, np.full(n, spec.camera_elevation_deg))
    if traj in ("static", "pan_follow"):
        # static: fixed pose on the clip's mean target; pan_follow: fixed position, turning to follow
        anchor = target.mean(axis=0)
        eye = np.repeat((anchor + direction[0] * dist[0])[None], n, axis=0)
        look = np.repeat(anchor[None], n, axis=0) if traj == "static" else target
    else:
        eye = target + direction * dist[:, None]
        look = target
    if eye_height_m is not None:
        eye[:, 2] = eye_height_m
    else:
        eye[:, 2] = np.maximum(eye[:, 2], track.joints[..., 2].min() + MIN_EYE_ABOVE_FEET_M)
    shake = _shake(spec, n)
    rs, ts = np.empty((n, 3, 3)), np.empty((n, 3))
    for f in range(n):
        r, _ = look_at(eye[f], look[f])
        r = _rotate_small(r, np.array([shake[f, 0], shake[f, 1], shake[f, 2] + spec.camera_roll_deg]))
        rs[f], ts[f] = r, -r @ eye[f]
    return CameraTrack(k, rs, ts, spec.focal_length_mm, spec.sensor_width_mm, spec.width, spec.height, scale)


def in_frame_fraction(cam: CameraTrack, points: np.ndarray, margin_px: float = 0.0) -> float:
    """Fraction of frames whose every given point projects inside the image (and in front)."""
    hits = 0
    for f in range(points.shape[0]):
        uv, z = project(cam.k, cam.r[f], cam.t[f], points[f])
        inside = (
            (uv[:, 0] >= margin_px)
            & (uv[:, 0] <= cam.width - margin_px)
            & (uv[:, 1] >= margin_px)
            & (uv[:, 1] <= cam.height - margin_px)
            & (z > 0)
        )
        hits += bool(inside.all())
    return hits / points.shape[0]


def camera_track(spec: VideoSpec, track: SubjectTrack, eye_height_m: float | None = None) -> CameraTrack:
    """The camera for `spec` around `track`; eye_height_m: a fixed camera height above z = 0 (HDRI
    backdrops, see the module doc), None: the planned elevation."""
    _, _, framed = _aim(spec, track)
    scale = 1.0
    for _ in range(30):  # a static face crop of a walking subject may need to back off a lot
        cam = _build(spec, track, scale, eye_height_m)
        if in_frame_fraction(cam, framed) >= MIN_IN_FRAME:
            return cam
        scale *= 1.15
    return cam
