"""The renderer against closed-form ground truth: a sphere on a plane seen by a known camera.

One Cycles render per frame (rgb + labels view layers) at 160x96, 16 samples; the camera has
non-square pixels (fx/fy = 1.1) and an off-centre principal point, and the subject (a labelled
mesh_npz icosphere) moves between frames by baked vertex animation. Depth, normals, object ids,
part labels, part UVs and canonical coordinates are compared with ray-sphere / ray-plane
intersections at pixel centres computed in numpy from K, R, t.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from thfm_synth.render import outputs
from thfm_synth.render.analytic import analytic_scene, octant_part, octant_uv, raycast
from thfm_synth.render.runner import render

pytestmark = pytest.mark.render

W, H, FRAMES = 160, 96, 2
SUBJECT, PLANE = 2, 1


def _render(tmp, seed=0, **kw):
    desc, truth = analytic_scene(
        tmp / "scene",
        W,
        H,
        num_frames=FRAMES,
        samples=16,
        seed=seed,
        fx_over_fy=1.1,
        principal_offset_px=(6.3, -3.7),
        subject_shift_per_frame=0.15,
        **kw,
    )
    info = render(tmp / "scene", tmp / "out", timeout=300)
    outputs.convert_render(tmp / "out", tmp / "data", desc.camera.r)
    return desc, truth, info


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analytic")
    desc, truth, info = _render(tmp)
    frames = []
    for f in range(FRAMES):
        k, r, t = desc.camera.k[f], desc.camera.r[f], desc.camera.t[f]
        gt = raycast(k, r, t, W, H, truth[f])
        raw = outputs.decode_raw(info["frames"][f]["files"][0], r)
        stored = outputs.read_frame(tmp / "data", f)
        frames.append((gt, raw, stored, truth[f]))
    return {"tmp": tmp, "desc": desc, "info": info, "frames": frames}


def _interior(gt, inst, erode=2):
    return ndimage.binary_erosion(gt["instance"] == inst, iterations=erode)


def test_one_render_per_frame_on_cpu(scene):
    info = scene["info"]
    assert info["device"] == "cpu" and info["mode"] == "single"
    assert [r["renders"] for r in info["frames"]] == [1] * FRAMES
    names = [layer["name"] for layer in info["layers"][0]]
    assert names == ["rgb", "labels"]


def test_object_ids_match_the_analytic_scene_at_every_pixel(scene):
    for gt, raw, _, _ in scene["frames"]:
        # a pixel centre grazing a silhouette may land on either side in float32
        assert np.mean(raw.instance == gt["instance"]) > 0.9995
        assert set(np.unique(raw.instance)) == {0, 1, 2, 3}


@pytest.mark.parametrize("which", ["raw", "stored"])
def test_depth_is_camera_z_within_a_millimetre(scene, which):
    for gt, raw, stored, _ in scene["frames"]:
        fr = raw if which == "raw" else stored
        for inst in (SUBJECT, 3):
            m = _interior(gt, inst) & (raw.instance == inst)
            assert m.sum() > 200
            err = np.abs(fr.depth[m] - gt["depth"][m])
            assert err.max() < 1e-3, (inst, err.max())
            assert err.mean() < 1e-4
        plane = _interior(gt, PLANE) & (raw.instance == PLANE)
        rel = np.abs(fr.depth[plane] - gt["depth"][plane]) / gt["depth"][plane]
        assert rel.max() < 1e-4  # float32 ray tracing; the plane reaches 10+ m


def test_no_surface_is_depth_zero_and_normal_zero(scene):
    for gt, raw, stored, _ in scene["frames"]:
        sky = (gt["instance"] == 0) & (raw.instance == 0)
        assert sky.sum() > 100
        for fr in (raw, stored):
            assert np.all(fr.depth[sky] == 0) and np.all(fr.normal[sky] == 0)
            assert np.all(np.isfinite(fr.depth))
            hit = raw.instance > 0
            assert np.all(fr.depth[hit] > 0)


@pytest.mark.parametrize("which", ["raw", "stored"])
def test_normals_in_the_camera_frame_within_half_a_degree(scene, which):
    for gt, raw, stored, _ in scene["frames"]:
        fr = raw if which == "raw" else stored
        for inst in (SUBJECT, 3, PLANE):
            m = _interior(gt, inst) & (raw.instance == inst)
            n = fr.normal[m].astype(np.float64)
            assert np.abs(np.linalg.norm(n, axis=-1) - 1).max() < 2e-3
            cos = np.sum(n / np.linalg.norm(n, axis=-1, keepdims=True) * gt["normal"][m], axis=-1)
            ang = np.degrees(np.arccos(np.clip(cos, -1, 1)))
            assert ang.max() < 0.5, (inst, ang.max())
            assert ang.mean() < 0.05
            # OpenCV camera frame: visible surfaces face the camera (n . ray < 0)
            assert np.all(cos > 0.99)


def test_stored_labels_keep_the_rendered_values_within_the_stated_bounds(scene):
    """Rendered (not synthetic) labels through the stored format: labelcodec.py's bounds hold."""
    for _, raw, stored, _ in scene["frames"]:
        hit = raw.depth > 0
        z = raw.depth[hit].astype(np.float64)
        assert np.all(np.abs(stored.depth[hit] - z) <= 2.0**-14 + z * 2.0**-23)  # 0.061 mm
        assert np.all(stored.depth[~hit] == 0) and np.all(stored.normal[~hit] == 0)
        a = raw.normal[hit].astype(np.float64)
        a /= np.linalg.norm(a, axis=-1, keepdims=True)
        ang = np.degrees(2 * np.arcsin(np.linalg.norm(stored.normal[hit] - a, axis=-1) / 2))
        assert ang.max() <= 0.03, ang.max()
        np.testing.assert_array_equal(stored.part, raw.part)
        np.testing.assert_array_equal(stored.instance, raw.instance)
        assert np.abs(stored.part_uv - raw.part_uv).max() <= 1 / 8190 + 1e-7
        assert np.abs(stored.canonical - raw.canonical).max() <= 1 / 8190 + 1e-7
        np.testing.assert_allclose(stored.mask, raw.mask, atol=0.5 / 65535 + 1e-7)


def test_mask_is_one_inside_zero_outside_and_soft_on_edges(scene):
    samples = scene["desc"].render.samples
    for gt, raw, stored, _ in scene["frames"]:
        sub = gt["instance"] == SUBJECT
        inside = ndimage.binary_erosion(sub, iterations=2)
        outside = ~ndimage.binary_dilation(sub, iterations=2)
        for fr in (raw, stored):
            assert np.all(fr.mask[inside] == 1.0)
            assert np.all(fr.mask[outside] == 0.0)
            edge = (fr.mask > 0) & (fr.mask < 1)
            ring = sub & ~ndimage.binary_erosion(sub)
            assert edge.sum() >= ring.sum()  # every silhouette pixel is fractional or nearly so
            assert np.all(edge <= (ndimage.binary_dilation(sub, iterations=2) & ~inside))
        # coverage is k / samples exactly
        k = raw.mask * samples
        assert np.all(k == np.round(k))
        # the mask and the pixel-centre labels agree: full coverage -> the centre ray hit the subject
        assert np.all(raw.instance[raw.mask == 1] == SUBJECT)
        assert np.all(raw.instance[raw.mask == 0] != SUBJECT)


def test_depth_inside_the_mask_is_nearer_than_the_plane_behind_it(scene):
    cam = scene["desc"].camera
    for f, (gt, raw, stored, truth) in enumerate(scene["frames"]):
        m = (stored.mask == 1) & (gt["instance"] == SUBJECT)
        assert m.sum() > 500
        assert np.all(stored.depth[m] > 0) and np.all(np.isfinite(stored.depth[m]))
        # where each of those rays would meet the ground had the subject not been there
        without = raycast(cam.k[f], cam.r[f], cam.t[f], W, H, [truth[1]])
        behind = m & (without["instance"] == PLANE)
        assert behind.sum() > 300
        assert np.all(stored.depth[behind] < without["depth"][behind])


def test_part_labels_are_integers_never_blended_and_correct(scene):
    for gt, raw, stored, truth in scene["frames"]:
        on = raw.instance == SUBJECT
        assert np.all(raw.part[~on] == 0)
        assert set(np.unique(raw.part[on])) <= set(range(1, 9))
        np.testing.assert_array_equal(stored.part, raw.part)
        # away from the octant borders the part is the octant of the true hit point
        p = gt["point"] - truth[0].centre
        p /= np.linalg.norm(p, axis=-1, keepdims=True)
        m = _interior(gt, SUBJECT) & on & (np.abs(p).min(axis=-1) > 0.05)
        assert m.sum() > 300
        np.testing.assert_array_equal(raw.part[m], octant_part(p[m]))


def test_part_uv_and_canonical_coordinates_match_the_surface_point(scene):
    for gt, raw, stored, truth in scene["frames"]:
        p = gt["point"] - truth[0].centre
        unit = p / np.linalg.norm(p, axis=-1, keepdims=True)
        m = _interior(gt, SUBJECT) & (raw.instance == SUBJECT) & (np.abs(unit).min(axis=-1) > 0.05)
        uv_true = octant_uv(unit[m], octant_part(unit[m]))
        can_true = p[m] / 0.5 * 0.5 + 0.5  # (p / r + 1) / 2
        for fr, tol in ((raw, 2e-3), (stored, 2.2e-3)):  # stored: 12-bit fixed point (labelcodec.py)
            assert np.abs(fr.part_uv[m] - uv_true).max() < tol
            assert np.abs(fr.canonical[m] - can_true).max() < tol
        off = raw.part == 0
        assert np.all(stored.part_uv[off] == 0) and np.all(stored.canonical[off] == 0)


def test_rgb_is_a_plausible_lit_image(scene):
    for gt, raw, stored, _ in scene["frames"]:
        np.testing.assert_array_equal(stored.rgb, raw.rgb)
        assert stored.rgb.shape == (H, W, 3) and stored.rgb.dtype == np.uint8
        sub = _interior(gt, SUBJECT)
        # the subject's material is reddish, the ball bluish
        mean_sub = raw.rgb_linear[sub].mean(axis=0)
        assert mean_sub[0] > mean_sub[2]
        ball = _interior(gt, 3)
        mean_ball = raw.rgb_linear[ball].mean(axis=0)
        assert mean_ball[2] > mean_ball[0]


LABEL_FILES = ("depth", "normal", "mask", "iuv", "canonical", "instance")


def test_same_description_and_seed_give_identical_label_files(scene, tmp_path):
    _render(tmp_path)  # the same description and seed, again
    for f in range(FRAMES):
        for mod in LABEL_FILES + ("rgb",):
            a = outputs.path_of(scene["tmp"] / "data", mod, f).read_bytes()
            b = outputs.path_of(tmp_path / "data", mod, f).read_bytes()
            assert a == b, (mod, f)


def test_another_seed_changes_the_noise_but_not_the_pixel_centre_labels(scene, tmp_path):
    _render(tmp_path, seed=12345)
    for f in range(FRAMES):
        for mod in ("depth", "normal", "iuv", "canonical", "instance"):
            a = outputs.path_of(scene["tmp"] / "data", mod, f).read_bytes()
            b = outputs.path_of(tmp_path / "data", mod, f).read_bytes()
            assert a == b, (mod, f)
        rgb_a = outputs.read_rgb(outputs.path_of(scene["tmp"] / "data", "rgb", f))
        rgb_b = outputs.read_rgb(outputs.path_of(tmp_path / "data", "rgb", f))
        assert np.any(rgb_a != rgb_b)
