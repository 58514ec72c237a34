"""Optional ground truth from the one render per frame: exact optical flow with validity, albedo and linear
RGB, and RGB motion blur whose labels stay exactly those of the frame time; stored normals face the camera.

The references are independent of the renderer: the analytic scene (a subject sphere moving +X by baked
vertex animation, a static ball and ground, a camera circling 5 deg per frame) is ray-cast in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from thfm_synth.blender import contract
from thfm_synth.render import flow as flow_mod
from thfm_synth.render import outputs
from thfm_synth.render.analytic import analytic_scene, raycast
from thfm_synth.render.description import SceneDescription
from thfm_synth.render.imagefiles import read_exr
from thfm_synth.render.runner import render

pytestmark = pytest.mark.render

W, H, FRAMES, SHIFT = 128, 80, 3, 0.12
SUBJECT, PLANE, BALL = 2, 1, 3
MODALITIES = ("rgb", "mask", "depth", "normal", "part", "canonical", "flow", "albedo")
STORED = contract.STORED_MODALITIES


def _render(tmp, shutter=0.0):
    desc, truth = analytic_scene(
        tmp / "scene", W, H, num_frames=FRAMES, samples=4, denoise=False, subject_shift_per_frame=SHIFT
    )
    if shutter:
        desc.render = desc.render.model_copy(update={"motion_blur_shutter": shutter})
        desc.save(tmp / "scene")
    info = render(tmp / "scene", tmp / "out", timeout=300, modalities=MODALITIES)
    raw = [{n: c for p in rec["files"] for n, c in read_exr(p).items()} for rec in info["frames"]]
    outputs.convert_render(tmp / "out", tmp / "data", desc.camera, STORED)
    return desc, truth, info, raw


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("flow"))


@pytest.fixture(scope="module")
def blurred(tmp_path_factory):
    return _render(tmp_path_factory.mktemp("blur"), shutter=0.5)


def _truth(desc, truth, f):
    return raycast(desc.camera.k[f], desc.camera.r[f], desc.camera.t[f], W, H, truth[f])


def _expected_flow(desc, truth, f, other):
    """Analytic flow of frame f's pixel-centre surface points to frame `other` (subject moves, rest static)."""
    gt = _truth(desc, truth, f)
    point = gt["point"] + np.where(gt["instance"][..., None] == SUBJECT, [SHIFT * (other - f), 0.0, 0.0], 0.0)
    cam = (desc.camera.k[f], desc.camera.r[f], desc.camera.t[f])
    cam1 = (desc.camera.k[other], desc.camera.r[other], desc.camera.t[other])
    fl, z, inside = flow_mod.flow_vectors(point, gt["depth"] > 0, cam, cam1)
    return gt, fl, z, inside


def _interior(inst, value, erode=2):
    return ndimage.binary_erosion(inst == value, iterations=erode)


def test_flow_equals_the_projection_of_the_moving_geometry(scene):
    desc, truth, info, raw = scene
    f = 1
    fr = outputs.decode_raw(raw[f], desc.camera.r[f], k=desc.camera.k[f])
    hit = fr.depth > 0
    cam = lambda i: (desc.camera.k[i], desc.camera.r[i], desc.camera.t[i])  # noqa: E731
    fwd, _, _ = flow_mod.flow_vectors(fr.pos_next, hit, cam(f), cam(f + 1))
    bwd, _, _ = flow_mod.flow_vectors(fr.pos_prev, hit, cam(f), cam(f - 1))
    for flow, other in ((fwd, f + 1), (bwd, f - 1)):
        gt, expected, _, _ = _expected_flow(desc, truth, f, other)
        for inst in (SUBJECT, PLANE, BALL):
            sel = _interior(gt["instance"], inst)
            assert sel.sum() > 30, inst
            err = np.linalg.norm(flow[sel] - expected[sel], axis=-1)
            # the subject is a tessellated sphere (within 4e-5 r of the analytic one): far below 0.01 px
            assert err.max() < 0.01, (inst, other, err.max())
        moving = _interior(gt["instance"], SUBJECT)
        assert np.abs(expected[moving]).max() > 2.0  # the test has motion to measure
        sky = _interior(gt["instance"], 0) & (gt["depth"] == 0)
        if sky.any():  # directions at infinity move only with the camera's rotation
            assert np.linalg.norm(flow[sky] - expected[sky], axis=-1).max() < 0.01
    # stored as half floats: within half precision of the exact values
    stored, valid = outputs.read_flow(outputs.path_of(scene[0].source.parent / "data", "flow", f))
    ok = hit & np.isfinite(fwd).all(-1)
    assert np.abs(stored[..., :2][ok] - fwd[ok]).max() <= 2**-10 * max(1.0, np.abs(fwd[ok]).max())


def _segment_clearance(c, points, spheres):
    """Smallest (distance from a sphere's centre to the segment c -> point) - radius, over the spheres."""
    out = np.full(points.shape[:-1], np.inf)
    d = points - c
    for s in spheres:
        a = np.clip(np.sum((s.centre - c) * d, -1) / np.maximum(np.sum(d * d, -1), 1e-12), 0.0, 1.0)
        out = np.minimum(out, np.linalg.norm(c + a[..., None] * d - s.centre, axis=-1) - s.radius)
    return out


def test_flow_validity_marks_what_is_hidden_or_outside_in_the_other_frame(scene):
    desc, truth, info, raw = scene
    f = 1
    stored, valid = outputs.read_flow(outputs.path_of(desc.source.parent / "data", "flow", f))
    gt, expected, z_next, inside = _expected_flow(desc, truth, f, f + 1)
    point = gt["point"] + np.where(gt["instance"][..., None] == SUBJECT, [SHIFT, 0.0, 0.0], 0.0)
    centre = -desc.camera.r[f + 1].T @ desc.camera.t[f + 1]
    clearance = _segment_clearance(centre, point, truth[f + 1])  # < 0: the line of sight crosses a sphere
    on = gt["depth"] > 0
    hidden = on & inside & (clearance < -0.01)
    # surely visible: clear line of sight, and no depth edge among the 2x2 pixels around the target
    nxt = np.where(_truth(desc, truth, f + 1)["depth"] > 0, _truth(desc, truth, f + 1)["depth"], 1e9)
    u, v = flow_mod.pixel_centres(W, H)
    x0 = np.clip(np.floor(u + expected[..., 0] - 0.5).astype(int), 0, W - 2)
    y0 = np.clip(np.floor(v + expected[..., 1] - 0.5).astype(int), 0, H - 2)
    quad = np.stack([nxt[y0, x0], nxt[y0, x0 + 1], nxt[y0 + 1, x0], nxt[y0 + 1, x0 + 1]])
    smooth = quad.max(0) - quad.min(0) < 0.05 * quad.min(0)
    clear = on & inside & (clearance > 0.01) & smooth
    assert hidden.sum() > 5 and clear.sum() > 500  # the moving subject hides some ground
    assert not valid[..., 0][hidden].any()
    assert valid[..., 0][clear].mean() > 0.99
    # nothing is valid outside the other image; the first frame has no backward, the last no forward flow
    assert not valid[..., 0][~inside & on].any()
    _, v0 = outputs.read_flow(outputs.path_of(desc.source.parent / "data", "flow", 0))
    _, vl = outputs.read_flow(outputs.path_of(desc.source.parent / "data", "flow", FRAMES - 1))
    assert not v0[..., 1].any() and not vl[..., 0].any() and v0[..., 0].mean() > 0.5


def test_forward_then_backward_returns_to_the_start(scene):
    desc = scene[0]
    data = desc.source.parent / "data"
    fwd, valid = outputs.read_flow(outputs.path_of(data, "flow", 0))
    nxt, _ = outputs.read_flow(outputs.path_of(data, "flow", 1))
    u, v = flow_mod.pixel_centres(W, H)
    tx, ty = u + fwd[..., 0] - 0.5, v + fwd[..., 1] - 0.5  # array coordinates of the target
    back = np.stack([ndimage.map_coordinates(nxt[..., c], [ty, tx], order=1, mode="nearest") for c in (2, 3)], -1)
    ok = valid[..., 0] & ndimage.binary_erosion(valid[..., 0], iterations=2)
    loop = np.linalg.norm(fwd[..., :2] + back, axis=-1)[ok]
    assert ok.sum() > 1000 and np.median(loop) < 0.02 and np.percentile(loop, 95) < 0.2


def test_albedo_is_the_diffuse_colour_and_linear_rgb_is_what_the_png_encodes(scene):
    desc, truth, info, raw = scene
    data = desc.source.parent / "data"
    fr = outputs.read_frame(data, 0, STORED)
    gt = _truth(desc, truth, 0)
    for inst, base in ((SUBJECT, (0.7, 0.35, 0.25)), (BALL, (0.1, 0.3, 0.8))):
        sel = _interior(gt["instance"], inst)
        ratio = fr.albedo[sel] / np.asarray(base)
        assert np.all(ratio > 0.85) and np.all(ratio < 1.001), (inst, ratio.min(), ratio.max())
        assert ratio.std(axis=0).max() < 0.02  # one colour over the whole (untextured) object
    again = outputs.srgb_encode(fr.rgb_linear)  # the gain is 1 here (no auto exposure)
    diff = np.abs(again.astype(int) - fr.rgb.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.98  # half storage may move a value by one level


def test_stored_normals_face_the_camera(scene):
    desc = scene[0]
    for f in range(FRAMES):
        fr = outputs.read_frame(desc.source.parent / "data", f, ("normal", "depth"))
        u, v = flow_mod.pixel_centres(W, H)
        ray = np.stack([u, v, np.ones_like(u)], -1) @ np.linalg.inv(desc.camera.k[f]).T
        ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
        on = fr.depth > 0
        assert np.sum(fr.normal * ray, -1)[on].max() <= 2e-3  # half precision


def test_face_the_camera_turns_only_normals_that_face_away():
    k = np.array([[10.0, 0, 2.0], [0, 10.0, 2.0], [0, 0, 1]])
    n = np.zeros((4, 4, 3))
    n[..., 2] = -1.0  # facing the camera: unchanged
    n[0, 0] = [0.0, 0.0, 1.0]  # straight away along the optical axis (pixel (0,0) is off-axis)
    n[1, 1] = np.array([0.3, 0.0, 0.2]) / np.linalg.norm([0.3, 0.0, 0.2])
    out = outputs.face_the_camera(n, k)
    np.testing.assert_array_equal(out[2:, 2:], n[2:, 2:])
    ray = np.array([[u + 0.5, v + 0.5, 1.0] for v in range(4) for u in range(4)]).reshape(4, 4, 3) @ np.linalg.inv(k).T
    ray /= np.linalg.norm(ray, axis=-1, keepdims=True)
    for y, x in ((0, 0), (1, 1)):
        assert abs(out[y, x] @ ray[y, x]) < 1e-12 and abs(np.linalg.norm(out[y, x]) - 1) < 1e-12
        # the nearest direction perpendicular to the ray: in the plane of the normal and the ray
        assert abs(np.cross(n[y, x], ray[y, x]) @ out[y, x]) < 1e-12


def test_motion_blur_blurs_rgb_and_leaves_every_label_exactly_as_without_blur(scene, blurred):
    _, _, info0, raw0 = scene
    desc1, _, info1, raw1 = blurred
    assert all(len(rec["files"]) == 1 for rec in info0["frames"])  # shutter 0: one render per frame, as before
    assert all(len(rec["files"]) == 2 for rec in info1["frames"])
    labels = [n for n in raw0[1] if n.startswith(contract.LAYER_LABELS + ".")]
    assert contract.CH_DEPTH in labels and contract.CH_POS_NEXT[0] in labels
    for f in range(FRAMES):
        for name in labels:
            np.testing.assert_array_equal(raw0[f][name], raw1[f][name], err_msg=f"{name} frame {f}")
    rgb0 = np.stack([raw0[1][c] for c in contract.CH_COMBINED], -1)
    rgb1 = np.stack([raw1[1][c] for c in contract.CH_COMBINED], -1)
    mask0 = raw0[1][contract.CH_FG]
    mask1 = raw1[1][contract.CH_FG]
    edge = (mask0 > 0.02) & (mask0 < 0.98)
    # the subject's soft edge widens along its motion; far from it nothing moves much
    assert ((mask1 > 0.02) & (mask1 < 0.98)).sum() > 1.5 * edge.sum()
    assert np.abs(rgb1 - rgb0).max() > 0.05
    assert isinstance(SceneDescription.load(desc1.source).render.motion_blur_shutter, float)


def test_a_config_asks_for_the_optional_modalities_end_to_end(tmp_path, character_cache):
    """render-one with render.optical_flow/albedo/write_linear_exr/motion_blur_shutter: the files, the metadata,
    the preview's third row and the dataset card's flow chart."""
    from conftest import run_cli
    from thfm_synth.render.imagefiles import read_png
    from thfm_synth.tools.report.card import write_report

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "preset: preview\nvideo: {width: 128, height: 80, num_frames: 5}\n"
        "render: {optical_flow: true, albedo: true, write_linear_exr: true, motion_blur_shutter: 0.4}\n"
        "background: {kind_weights: {sky: 1.0}}\n"
    )
    assert run_cli("plan", "--config", cfg, "--num-videos", "1", "--out", tmp_path / "plan.parquet").returncode == 0
    proc = run_cli(
        "render-one",
        "--plan",
        tmp_path / "plan.parquet",
        "--index",
        "0",
        "--out",
        tmp_path / "v",
        "--cache",
        character_cache,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    v = tmp_path / "v"
    for mod in ("flow", "albedo", "rgb_linear"):
        assert sorted(p.name for p in (v / mod).iterdir()) == [f"{i:05d}.exr" for i in range(5)]
    meta = __import__("json").loads((v / "metadata.json").read_text())
    assert meta["render"]["motion_blur_shutter"] == 0.4
    assert set(meta["render"]["stored_modalities"]) >= {"flow", "albedo", "rgb_linear"}
    fr = outputs.read_frame(v, 2)
    assert fr.flow.shape == (80, 128, 4) and fr.flow_valid[..., 0].mean() > 0.5
    assert run_cli("preview", v).returncode == 0
    sheet = read_png(v / "preview.png")
    assert sheet.shape[1] == 3 * 128 and sheet.shape[0] == 4 * 3 * 80  # 4 frames x 3 rows of tiles
    write_report(v, tmp_path / "card.html")
    assert 'id="flow"' in (tmp_path / "card.html").read_text()
