import dataclasses

import numpy as np
import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.conventions import project
from thfm_synth.plan.planner import make_plan
from thfm_synth.scene.camera import SubjectTrack, camera_track, framing_region, in_frame_fraction, min_jerk

TEMPLATE = {  # a 1.75 m standing figure facing -Y, metres
    "Hips": (0, 0, 0.95), "LeftUpLeg": (0.1, 0, 0.92), "LeftLeg": (0.1, 0, 0.5), "LeftFoot": (0.1, 0, 0.08),
    "LeftToeBase": (0.1, -0.12, 0.02), "RightUpLeg": (-0.1, 0, 0.92), "RightLeg": (-0.1, 0, 0.5),
    "RightFoot": (-0.1, 0, 0.08), "RightToeBase": (-0.1, -0.12, 0.02), "Spine1": (0, 0, 1.3),
    "Neck": (0, 0, 1.5), "Head": (0, 0, 1.62), "LeftArm": (0.2, 0, 1.45), "LeftForeArm": (0.25, 0, 1.18),
    "LeftHand": (0.28, 0, 0.92), "RightArm": (-0.2, 0, 1.45), "RightForeArm": (-0.25, 0, 1.18),
    "RightHand": (-0.28, 0, 0.92),
}


def walking_subject(n=81, fps=24.0, speed=1.4, heading_deg=0.0) -> SubjectTrack:
    names = tuple(TEMPLATE)
    base = np.array([TEMPLATE[k] for k in names], dtype=float)
    t = np.arange(n) / fps
    h = np.radians(heading_deg)
    fwd = np.array([np.sin(h), -np.cos(h), 0.0])
    joints = base[None] + (speed * t)[:, None, None] * fwd
    swing = 0.25 * np.sin(2 * np.pi * 0.9 * t)
    for i, name in enumerate(names):
        if "Left" in name and ("Leg" in name or "Foot" in name or "Toe" in name):
            joints[:, i] += swing[:, None] * fwd
        if "Right" in name and ("Leg" in name or "Foot" in name or "Toe" in name):
            joints[:, i] -= swing[:, None] * fwd
    return SubjectTrack(joints, names)


@pytest.fixture(scope="module")
def specs():
    cfg = load_config("paper")
    return make_plan(cfg, load_library(builtin=True), 21, 120)


def test_every_planned_camera_keeps_the_framed_joints_in_view(specs):
    subject = walking_subject()
    for spec in specs:
        cam = camera_track(spec, subject)
        _, _, keep = framing_region(subject, spec.camera_framing)
        assert in_frame_fraction(cam, subject.joints[:, keep]) >= 0.95, (spec.camera_trajectory, spec.camera_framing)


def test_rotations_are_proper_and_intrinsics_match_the_lens(specs):
    spec = specs[0]
    cam = camera_track(spec, walking_subject())
    assert np.allclose(np.einsum("fij,fkj->fik", cam.r, cam.r), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(cam.r), 1.0)
    assert cam.k[0, 0] == pytest.approx(spec.focal_length_mm / spec.sensor_width_mm * spec.width)
    assert (cam.k[0, 2], cam.k[1, 2]) == (spec.width / 2, spec.height / 2)


def _spec(specs, **changes):
    return dataclasses.replace(specs[0], **changes)


def test_subject_fills_the_planned_fraction_when_standing(specs):
    subject = walking_subject(speed=0.0)
    subject = SubjectTrack(subject.joints * np.array([1, 1, 1]), subject.names)
    spec = _spec(specs, camera_trajectory="static", camera_framing="full_body", subject_fill=0.7,
                 camera_elevation_deg=0.0, camera_roll_deg=0.0, focal_length_mm=50.0)
    cam = camera_track(spec, subject)
    uv, _ = project(cam.k, cam.r[0], cam.t[0], subject.joints[0])
    feet_to_head_px = uv[:, 1].max() - uv[:, 1].min()
    region_px = 0.7 * spec.height / 1.05  # the region adds 5% and the head top above the head joint
    assert feet_to_head_px == pytest.approx(region_px * (1.60 / 1.72), rel=0.05)


def test_trajectory_shapes(specs):
    subject = walking_subject(speed=0.0)
    static = camera_track(_spec(specs, camera_trajectory="static"), subject)
    assert np.ptp(static.centers, axis=0).max() < 1e-9 and np.ptp(static.r, axis=0).max() < 1e-9
    orbit = camera_track(_spec(specs, camera_trajectory="orbit", orbit_deg=60.0, camera_elevation_deg=0.0), subject)
    c = orbit.centers - subject.joints[:, 0]
    swept = np.degrees(np.arctan2(c[-1, 0], -c[-1, 1]) - np.arctan2(c[0, 0], -c[0, 1]))
    assert swept == pytest.approx(60.0, abs=0.5)
    dolly = camera_track(_spec(specs, camera_trajectory="dolly_in", dolly_ratio=1.5), subject)
    d = np.linalg.norm(dolly.centers - dolly.centers.mean(0) * 0 - subject.joints[:, 0], axis=1)
    assert d[0] / d[-1] == pytest.approx(1.5, rel=0.05) and np.all(np.diff(d) <= 1e-9)


def test_trajectories_are_smooth(specs):
    subject = walking_subject()
    for traj in ("static", "orbit", "dolly_in", "dolly_out", "pan_follow", "handheld"):
        spec = _spec(specs, camera_trajectory=traj, orbit_deg=90.0, dolly_ratio=1.8, shake_deg=1.0, shake_hz=2.0)
        cam = camera_track(spec, subject)
        dt = 1.0 / spec.fps
        jerk = np.diff(cam.centers, n=3, axis=0) / dt**3
        assert np.abs(jerk).max() < 20.0, traj  # m/s^3; a cut or a jump would be thousands
        forward = cam.r[:, 2]
        ang_jerk = np.diff(forward, n=3, axis=0) / dt**3
        assert np.abs(ang_jerk).max() < 60.0, traj  # rad/s^3-ish on the unit optical axis


def test_min_jerk_profile():
    s = np.linspace(0, 1, 101)
    y = min_jerk(s)
    assert y[0] == 0 and y[-1] == 1 and np.all(np.diff(y) >= 0)
    assert abs(y[1] - y[0]) < 1e-4 and abs(y[-1] - y[-2]) < 1e-4  # eases in and out
