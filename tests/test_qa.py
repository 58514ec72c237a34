"""QA checks on an analytic scene computed in numpy: a sphere in front of a wall."""

import json

import numpy as np
import pytest

from thfm_synth.render import qa
from thfm_synth.conventions import intrinsics, look_at, project

W, H = 160, 96


def sphere_scene(radius=0.5, centre=(0.0, 0.0, 1.0), wall_y=3.0):
    k = intrinsics(50.0, 36.0, W, H)
    r, t = look_at(np.array([0.0, -4.0, 1.0]), np.array(centre))
    u, v = np.meshgrid(np.arange(W) + 0.5, np.arange(H) + 0.5)
    rays_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
    c_cam = r @ np.array(centre) + t
    # ray-sphere: |s d - c|^2 = R^2 with d = rays_cam (z = 1), s = camera z
    a = (rays_cam**2).sum(-1)
    b = -2 * (rays_cam @ c_cam)
    cc = c_cam @ c_cam - radius**2
    disc = b * b - 4 * a * cc
    hit = disc > 0
    s = np.where(hit, (-b - np.sqrt(np.where(hit, disc, 0))) / (2 * a), np.inf)
    # wall: the plane y = wall_y in world -> camera z along each ray
    n_cam, p_cam = r @ np.array([0.0, -1.0, 0.0]), r @ np.array([0.0, wall_y, 0.0]) + t
    s_wall = (n_cam @ p_cam) / (rays_cam @ n_cam)
    depth = np.where(hit, s, s_wall).astype(np.float32)
    pts = rays_cam * depth[..., None]
    normals = np.where(hit[..., None], (pts - c_cam) / radius, n_cam)
    mask = hit.astype(np.float32)
    return k, r, t, depth, normals, mask


def test_analytic_sphere_passes_every_check():
    k, r, t, depth, normals, mask = sphere_scene()
    joints = np.array([[0.0, 0.0, 1.0], [0.2, -0.1, 1.2]])
    uv, _ = project(k, r, t, joints)
    figs = qa.check_frame(depth, normals, mask, k, r, t, joints, uv, np.array([True, True]))
    assert figs["reprojection_px"] < 1e-9
    assert figs["visible_joints"] == figs["visible_joints_hit"] == 2
    assert figs["depth_normal_median_deg"] < 1.0
    assert figs["silhouette_nearer"] == 1.0
    assert figs["depth_bad_in_subject"] == 0 and figs["normal_unit_err"] < 1e-6
    report = qa.QaReport([figs]).summarize()
    assert report["passed"], report


def test_checks_catch_broken_ground_truth():
    k, r, t, depth, normals, mask = sphere_scene()
    joints = np.array([[0.0, 0.0, 1.0]])
    uv, _ = project(k, r, t, joints)
    flipped = normals.copy()
    flipped[mask > 0] *= -1  # wrong orientation
    shifted = np.roll(mask, 25, axis=1)  # mask misaligned with depth
    bad_depth = depth.copy()
    bad_depth[48, 80] = np.inf
    figs = qa.check_frame(bad_depth, flipped, mask, k, r, t, joints, uv + 0.5, np.array([True]))
    summary = qa.QaReport([figs]).summarize()
    assert {"reprojection", "depth_normal_agreement", "depth_invalid_in_subject"} <= set(summary["failures"])
    assert figs["depth_normal_median_deg"] > 90
    figs = qa.check_frame(depth, normals, shifted, k, r, t, joints, uv, np.array([True]))
    assert "mask_off_depth_edge" in qa.QaReport([figs]).summarize()["failures"]
    for px in (2, 5):  # even a small shift leaves the mask's edge on continuous depth
        assert qa.silhouette_on_depth_edge(depth, np.roll(mask, px, axis=1)) < 0.2
    in_front = np.where(mask > 0, depth, 1.0)  # the background drawn in front of the subject
    figs = qa.check_frame(in_front, normals, mask, k, r, t, joints, uv, np.array([True]))
    assert "silhouette_depth_order" in qa.QaReport([figs]).summarize()["failures"]


def test_normals_from_depth_on_a_plane_are_exact():
    k, r, t, depth, normals, mask = sphere_scene(radius=0.01)
    est = qa.normals_from_depth(depth.astype(np.float64), k)
    interior = qa.erode(np.ones_like(mask, dtype=bool), 2) & (mask == 0)
    err = qa.angle_deg(est[interior], normals[interior])
    assert np.median(err) < 0.01


def test_joint_visibility_codes():
    from thfm_synth.render.scene.visibility import OUTSIDE, SCENE_OCCLUDED, SELF_OCCLUDED, VISIBLE, joint_visibility

    k, r, t, depth, normals, mask = sphere_scene()
    centre_z = (r @ np.array([0.0, 0.0, 1.0]) + t)[2]
    part = np.where(mask > 0, 1, 0)
    pts = np.array([[80.0, 48.0], [80.0, 48.0], [500.0, 10.0], [5.0, 5.0], [5.0, 5.0]])
    z = np.array([centre_z - 0.4, centre_z + 0.6, 3.0, 1.0, 50.0])
    codes = joint_visibility(pts, z, depth, mask)
    assert codes.tolist() == [VISIBLE, SELF_OCCLUDED, OUTSIDE, VISIBLE, SCENE_OCCLUDED]
    # with part labels: a joint whose own limb covers its pixel is visible even 0.3 m behind the surface
    codes = joint_visibility(pts[:2], np.array([centre_z - 0.2, centre_z - 0.2]), depth, mask, part, [{1}, {2}])
    assert codes.tolist() == [VISIBLE, SELF_OCCLUDED]


def test_silhouette_order_treats_sky_as_far_and_needs_evidence():
    depth = np.zeros((40, 40), np.float32)  # sky (no surface) everywhere but the subject
    mask = np.zeros((40, 40), np.float32)
    depth[10:30, 10:30] = 3.0
    mask[10:30, 10:30] = 1.0
    assert qa.silhouette_nearer(depth, mask) == 1.0  # 80 pairs, all against the sky
    depth[30:, :] = 2.5  # ground in front of the lower edge, decisively nearer: 20 of 80 pairs
    assert qa.silhouette_nearer(depth, mask) == 0.75
    depth[30:, :] = 2.95  # the floor a foot stands on: a tie, not a violation (nor a depth step)
    assert qa.silhouette_nearer(depth, mask) == 1.0 and qa.silhouette_on_depth_edge(depth, mask) == 0.75
    tiny = np.zeros((6, 6), np.float32)
    tiny[2:4, 2:4] = 1.0  # 8 pairs: too few to judge
    assert np.isnan(qa.silhouette_nearer(np.where(tiny > 0, 3.0, 0.0), tiny))


def empty_frame():
    """A frame with no person in it: what a render of a character 1e30 m away gives."""
    k, r, t, depth, normals, _ = sphere_scene()
    mask = np.zeros_like(depth)
    joints = np.full((24, 3), 1e30)
    uv, _ = project(k, r, t, joints)
    return k, r, t, depth, normals, mask, joints, uv


def test_a_video_with_no_person_in_it_fails():
    """Was: `visible_joints_in_mask` vacuously 1.0 and "passed": true for an empty mask."""
    k, r, t, depth, normals, mask, joints, uv = empty_frame()
    frames = [qa.check_frame(depth, normals, mask, k, r, t, joints, uv, np.zeros(24, bool)) for _ in range(5)]
    report = qa.QaReport(frames, motion=qa.motion_figures(np.repeat(joints[None], 5, 0), 24.0)).summarize()
    assert not report["passed"]
    assert {"no_visible_joints", "person_not_visible", "implausible_joint_height"} <= set(report["failures"])
    assert report["figures"]["visible_joints_in_mask"] is None and report["figures"]["visible_frames"] == 0.0
    json.dumps(report, allow_nan=False)  # metadata.json stays strict JSON


def test_person_visible_in_too_few_frames_fails_and_the_threshold_is_configurable():
    from thfm_synth.config.schema import QaSettings

    k, r, t, depth, normals, mask = sphere_scene()
    joints = np.array([[0.0, 0.0, 1.0]])
    uv, _ = project(k, r, t, joints)
    seen = qa.check_frame(depth, normals, mask, k, r, t, joints, uv, np.array([True]))
    gone = qa.check_frame(depth, normals, np.zeros_like(mask), k, r, t, joints, uv, np.array([False]))
    report = qa.QaReport([seen, gone, gone, gone]).summarize()
    assert "person_not_visible" in report["failures"] and report["figures"]["visible_frames"] == 0.25
    assert qa.QaReport([seen, gone, gone, gone]).summarize(QaSettings(visible_frames_min=0.2))["passed"]


def test_physically_implausible_motion_fails():
    t = np.arange(10) / 24.0
    walk = np.zeros((10, 24, 3))
    walk[..., 2] = np.linspace(0.0, 1.6, 24)  # standing joints
    walk[:, :, 1] = 1.4 * t[:, None]  # walking at 1.4 m/s
    assert qa.motion_figures(walk, 24.0)["root_speed_max_mps"] == pytest.approx(1.4)
    motion_checks = {"implausible_joint_speed", "implausible_joint_height", "joints_not_finite"}
    assert not motion_checks & set(qa.QaReport([{}], motion=qa.motion_figures(walk, 24.0)).summarize()["failures"])
    teleport = walk.copy()
    teleport[5:, :, 0] += 3.0  # 3 m in one frame: 72 m/s
    figs = qa.motion_figures(teleport, 24.0)
    assert figs["root_speed_max_mps"] > 70
    assert "implausible_joint_speed" in qa.QaReport([{}], motion=figs).summarize()["failures"]
    flying = walk.copy()
    flying[..., 2] += 10.0
    assert (
        "implausible_joint_height" in qa.QaReport([{}], motion=qa.motion_figures(flying, 24.0)).summarize()["failures"]
    )
    nan = walk.copy()
    nan[3, 4] = np.nan
    assert "joints_not_finite" in qa.QaReport([{}], motion=qa.motion_figures(nan, 24.0)).summarize()["failures"]


def test_a_background_that_did_not_load_fails():
    k, r, t, depth, normals, mask = sphere_scene()
    joints = np.array([[0.0, 0.0, 1.0]])
    uv, _ = project(k, r, t, joints)
    rgb = np.full(mask.shape + (3,), 120, np.uint8)
    ok = qa.check_frame(depth, normals, mask, k, r, t, joints, uv, np.array([True]), rgb=rgb)
    assert ok["background_failed"] == 0.0 and qa.QaReport([ok]).summarize()["passed"]
    for colour in ((255, 0, 255), (0, 0, 0)):  # Blender's missing texture; an HDRI that did not load
        bad = rgb.copy()
        bad[mask < 0.01] = colour
        figs = qa.check_frame(depth, normals, mask, k, r, t, joints, uv, np.array([True]), rgb=bad)
        assert figs["background_failed"] == 1.0
        assert "background_not_loaded" in qa.QaReport([figs]).summarize()["failures"]
    dark = rgb.copy()
    dark[mask < 0.01] = 0  # a 3D scene's unlit corner may be pure black; an HDRI that loaded never is
    assert (
        qa.check_frame(depth, normals, mask, k, r, t, joints, uv, np.array([True]), rgb=dark, black_is_failure=False)[
            "background_failed"
        ]
        == 0.0
    )


def test_a_joint_counts_in_the_mask_within_one_pixel_not_two():
    from thfm_synth.render.qa import joints_in_mask

    mask = np.zeros((10, 10))
    mask[4:6, 4:6] = 1.0  # a limb two pixels wide
    mask[4, 6] = 0.4  # its soft edge
    uv = np.array([[4.5, 4.5], [6.5, 4.5], [3.5, 3.5], [7.5, 4.5], [4.5, 7.5]])
    assert joints_in_mask(uv, np.ones(5, bool), mask) == (5, 3)
    assert joints_in_mask(uv, np.array([0, 0, 0, 1, 1], bool), mask) == (2, 0)


def test_a_few_fully_covered_pixels_without_a_surface_pass_many_or_a_nan_fail():
    """Hair cards: a pixel whose every sample passed the card's alpha can still have its centre in a
    gap between strands (no surface there); a label layer off its subject misses most of them."""
    k, r, t, depth, normals, mask = sphere_scene()
    joints = np.array([[0.0, 0.0, 1.0]])
    uv, _ = project(k, r, t, joints)

    def run(d):
        figs = qa.check_frame(d, normals, mask, k, r, t, joints, uv, np.array([True]))
        return figs, qa.QaReport([figs]).summarize()

    inside = np.argwhere(mask >= 1.0)
    few, many, nan = depth.copy(), depth.copy(), depth.copy()
    few[tuple(inside[::100].T)] = 0.0  # 1% of the subject: gaps between strands
    many[tuple(inside[::5].T)] = 0.0  # 20%
    nan[tuple(inside[0])] = np.nan
    figs, report = run(few)
    assert 0.005 < figs["depth_bad_in_subject"] < 0.02 and report["passed"], report
    assert figs["normal_unit_err"] < 1e-6  # measured where there is a surface
    assert "depth_invalid_in_subject" in run(many)[1]["failures"]
    assert "depth_invalid_in_subject" in run(nan)[1]["failures"]
