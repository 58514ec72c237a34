import dataclasses

import numpy as np
import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.conventions import project
from thfm_synth.plan.planner import make_plan
from thfm_synth.render.scene.camera import SubjectTrack, camera_track, framing_region, in_frame_fraction, min_jerk

TEMPLATE = {  # a 1.75 m standing figure facing -Y, metres
    "Hips": (0, 0, 0.95),
    "LeftUpLeg": (0.1, 0, 0.92),
    "LeftLeg": (0.1, 0, 0.5),
    "LeftFoot": (0.1, 0, 0.08),
    "LeftToeBase": (0.1, -0.12, 0.02),
    "RightUpLeg": (-0.1, 0, 0.92),
    "RightLeg": (-0.1, 0, 0.5),
    "RightFoot": (-0.1, 0, 0.08),
    "RightToeBase": (-0.1, -0.12, 0.02),
    "Spine1": (0, 0, 1.3),
    "Neck": (0, 0, 1.5),
    "Head": (0, 0, 1.62),
    "LeftArm": (0.2, 0, 1.45),
    "LeftForeArm": (0.25, 0, 1.18),
    "LeftHand": (0.28, 0, 0.92),
    "RightArm": (-0.2, 0, 1.45),
    "RightForeArm": (-0.25, 0, 1.18),
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
    spec = _spec(
        specs,
        camera_trajectory="static",
        camera_framing="full_body",
        subject_fill=0.7,
        camera_elevation_deg=0.0,
        camera_roll_deg=0.0,
        focal_length_mm=50.0,
    )
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


# ----------------------------------------------------------------------------- azimuth reference


def turning_subject(n=81, fps=24.0, start_deg=30.0, turn_deg=120.0, head_offset_deg=0.0) -> SubjectTrack:
    """A subject standing in place and turning about Z by `turn_deg` over the clip, with a
    rigid face (nose 10 cm ahead of the head, eyes, ears) turned `head_offset_deg` from the body."""
    names = tuple(TEMPLATE)
    base = np.array([TEMPLATE[k] for k in names], dtype=float)
    yaw = np.radians(start_deg + turn_deg * min_jerk(np.linspace(0, 1, n)))
    head = base[names.index("Head")]
    face_rest = head + np.array(
        [[0, -0.10, 0.04], [0.03, -0.08, 0.07], [-0.03, -0.08, 0.07], [0.075, 0, 0.05], [-0.075, 0, 0.05]]
    )

    def rz(a):
        return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])

    joints = np.stack([base @ rz(a).T for a in yaw])
    h = np.radians(head_offset_deg)
    face = np.stack([(head + (face_rest - head) @ rz(h).T) @ rz(a).T for a in yaw])
    return SubjectTrack(joints, names, face)


def _first_azimuth(cam, point, forward):
    from thfm_synth.render.scene import facing

    return float(facing.relative_azimuth(cam.centers[:1], point[None], forward[None])[0])


def facing_walker(heading_deg: float, sideways_deg: float = 0.0) -> SubjectTrack:
    """walking_subject turned to face `heading_deg`, walking `sideways_deg` off its facing."""
    walker = walking_subject(heading_deg=sideways_deg)
    a = np.radians(heading_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return SubjectTrack(walker.joints @ rz.T, walker.names)


@pytest.mark.parametrize("heading", [0.0, 70.0, -150.0, 180.0])
def test_azimuth_is_measured_from_the_subjects_facing(specs, heading):
    """'0 = in front' means in front of the subject as it stands, whichever way it faces."""
    from thfm_synth.render.scene import facing

    subject = facing_walker(heading, sideways_deg=60.0 if heading < 0 else 0.0)
    forward = facing.body_forward_from_track(subject.joints[:1], subject.names)[0]
    assert facing.wrap(facing.yaw_of(forward) - heading) == pytest.approx(0.0, abs=1e-6)
    for traj in ("static", "orbit", "dolly_in", "dolly_out", "pan_follow", "handheld"):
        for framing in ("full_body", "upper_body"):
            for azimuth in (-40.0, 0.0, 35.0, 120.0):
                spec = _spec(
                    specs,
                    camera_trajectory=traj,
                    camera_framing=framing,
                    camera_azimuth_deg=azimuth,
                    orbit_deg=60.0,
                    dolly_ratio=1.5,
                    camera_azimuth_reference="subject",
                )
                cam = camera_track(spec, subject)
                centre, _, _ = framing_region(subject, framing)
                got = _first_azimuth(cam, centre[0], forward)
                assert got == pytest.approx(azimuth, abs=0.05), (traj, framing, azimuth, got)


def test_face_framing_aims_at_the_face_and_follows_it(specs):
    from thfm_synth.render.scene import facing

    subject = turning_subject(turn_deg=150.0, head_offset_deg=25.0)
    for traj in ("orbit", "dolly_in", "dolly_out", "handheld", "static", "pan_follow"):
        spec = _spec(
            specs,
            camera_trajectory=traj,
            camera_framing="face",
            camera_azimuth_deg=-20.0,
            orbit_deg=0.0,
            dolly_ratio=1.5,
            shake_deg=1.0,
            shake_hz=1.0,
            camera_azimuth_reference="subject",
        )
        cam = camera_track(spec, subject)
        angle = facing.relative_azimuth(
            cam.centers, facing.face_centre(subject.face), facing.face_forward(subject.face)
        )
        assert angle[0] == pytest.approx(-20.0, abs=0.05), traj  # the face, not the body (25 deg apart)
        assert facing.face_in_view(cam.k, cam.r, cam.t, subject.face, spec.width, spec.height).mean() >= 0.95
        if traj in ("orbit", "dolly_in", "dolly_out", "handheld"):
            # a moving camera follows the turning face: it never turns away from the camera
            assert np.abs(angle + 20.0).max() < 25.0, (traj, angle.min(), angle.max())
        else:  # a fixed camera cannot: the 150 deg turn shows the side and back of the head
            assert np.abs(angle + 20.0).max() > 90.0


def test_plans_before_the_azimuth_reference_keep_their_world_azimuth(specs):
    """'world' plans (written before the reference existed) render exactly as they were rendered:
    camera centres of that code for a subject facing 70 deg away from -Y."""
    subject = walking_subject(heading_deg=70.0)
    golden = {  # (trajectory, framing, plan row): centres at frames 0, 40, 80 and the distance scale
        ("static", "face", 3): ([[1.394049, 7.013388, 3.408098]] * 3, 6.152788),
        ("static", "full_body", 3): ([[1.223886, 8.664561, 3.049116]] * 3, 1.3225),
        ("orbit", "face", 0): (
            [[0.812639, -0.382604, 1.865826], [2.800125, -0.660717, 1.865826], [4.499726, -1.003908, 1.865826]],
            1.0,
        ),
        ("orbit", "full_body", 0): (
            [[3.377504, -1.732677, 2.267382], [5.621244, -0.036325, 2.267382], [6.240233, 1.292746, 2.267382]],
            1.0,
        ),
        ("pan_follow", "face", 7): ([[1.819281, -2.073674, 1.597427]] * 3, 1.0),
        ("pan_follow", "full_body", 7): ([[0.085607, -8.010703, 0.752602]] * 3, 1.0),
        ("handheld", "face", 2): (
            [[0.546846, -0.753507, 1.611101], [2.47915, -1.456808, 1.611101], [4.411453, -2.160109, 1.611101]],
            1.0,
        ),
        ("handheld", "full_body", 2): (
            [[1.877436, -3.82596, 0.829774], [3.809739, -4.529261, 0.829774], [5.742043, -5.232561, 0.829774]],
            1.0,
        ),
    }
    for (traj, framing, row), (centres, scale) in golden.items():
        spec = dataclasses.replace(specs[row], camera_framing=framing, camera_azimuth_reference="world")
        assert spec.camera_trajectory == traj
        face = np.zeros((subject.joints.shape[0], 5, 3))  # face points exist but the old plans ignore them
        cam = camera_track(spec, SubjectTrack(subject.joints, subject.names, face))
        np.testing.assert_allclose(cam.centers[[0, 40, 80]], centres, atol=2e-6)
        assert cam.distance_scale == pytest.approx(scale, abs=1e-6)


def test_unknown_azimuth_reference_is_refused(specs):
    with pytest.raises(ValueError, match="camera_azimuth_reference"):
        camera_track(_spec(specs, camera_azimuth_reference="north"), walking_subject())


def test_the_camera_never_goes_under_the_ground(specs):
    """A long lens backing away at a negative elevation (a dolly out) used to sink below z = 0 and
    render the underside of the ground instead of the person; it is held above the feet instead."""
    from thfm_synth.render.scene.camera import MIN_EYE_ABOVE_FEET_M

    subject = walking_subject()
    floor = subject.joints[..., 2].min()
    low = [
        dataclasses.replace(s, camera_elevation_deg=-12.0, focal_length_mm=85.0, dolly_ratio=2.0)
        for s in specs
        if s.camera_trajectory in ("dolly_out", "static", "orbit")
    ][:12]
    assert low
    for spec in low:
        cam = camera_track(spec, subject)
        eye = np.einsum("fji,fj->fi", cam.r, -cam.t)
        assert eye[:, 2].min() >= floor + MIN_EYE_ABOVE_FEET_M - 1e-9, spec.camera_trajectory
        _, _, keep = framing_region(subject, spec.camera_framing)
        assert in_frame_fraction(cam, subject.joints[:, keep]) >= 0.95


def test_in_front_of_an_hdri_the_camera_stands_at_its_capture_height_and_sees_the_horizon(specs):
    """An HDRI is a photograph from one point: at another height the person stands at the wrong scale
    on its ground. The camera stands at the capture height and, for long lenses too, still shows the
    horizon (scene context, not a frame of featureless ground)."""
    subject = walking_subject()
    for spec in specs[:40]:
        for lens in (24.0, 85.0):
            s = dataclasses.replace(spec, focal_length_mm=lens)
            cam = camera_track(s, subject, eye_height_m=1.6)
            eye = np.einsum("fji,fj->fi", cam.r, -cam.t)
            assert np.allclose(eye[:, 2], 1.6)
            _, _, keep = framing_region(subject, s.camera_framing)
            assert in_frame_fraction(cam, subject.joints[:, keep]) >= 0.95
            if s.camera_framing == "full_body":  # the horizon straight ahead is in the picture
                fwd = cam.r[:, 2].copy()
                fwd[:, 2] = 0.0
                far = eye + 1e4 * fwd / np.linalg.norm(fwd, axis=1, keepdims=True)
                for f in range(len(far)):
                    uv, z = project(cam.k, cam.r[f], cam.t[f], far[f][None])
                    assert z[0] > 0 and 0 <= uv[0, 1] <= s.height, (lens, s.camera_trajectory)


def test_an_hdri_capture_height_comes_from_its_manifest_entry():
    from types import SimpleNamespace

    from thfm_synth.errors import UserError
    from thfm_synth.render.scene.assemble import hdri_eye_height
    from thfm_synth.render.scene.camera import HDRI_CAPTURE_HEIGHT_M

    assert hdri_eye_height(SimpleNamespace(id="h", params={})) == HDRI_CAPTURE_HEIGHT_M
    assert hdri_eye_height(SimpleNamespace(id="h", params={"capture_height_m": 2.5})) == 2.5
    with pytest.raises(UserError, match="capture_height_m"):
        hdri_eye_height(SimpleNamespace(id="h", params={"capture_height_m": "tall"}))
