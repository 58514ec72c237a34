"""A planned video rendered for real: every modality, aligned with the geometry that made it."""

import dataclasses
import json

import numpy as np
import pytest

from thfm_synth.render import qa
from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.conventions import project
from thfm_synth.plan.planner import make_plan
from thfm_synth.render import outputs
from thfm_synth.render.scene.assemble import assemble
from thfm_synth.render.video.annotations import read_annotations
from thfm_synth.render.video.render_one import render_video

from conftest import run_cli

pytestmark = [pytest.mark.render, pytest.mark.slow]  # real renders: ~90 s for the module on 2 cores
SMALL = {"video": {"width": 256, "height": 160, "num_frames": 5}, "render": {"samples": 4, "denoise": False}}
LABELS = ("depth", "normal", "mask", "iuv", "canonical", "instance")


@pytest.fixture(scope="module")
def cfg():
    return load_config("preview", overrides=SMALL)


@pytest.fixture(scope="module")
def cache(character_cache):
    return character_cache


def planned(cfg, library, kind, **changes):
    spec = next(s for s in make_plan(cfg, library, 3, 60) if s.background_kind == kind)
    return dataclasses.replace(spec, camera_framing="full_body", **changes)


@pytest.fixture(scope="module")
def sky_video(cfg, cache, tmp_path_factory):
    library = load_library(builtin=True)
    spec = planned(cfg, library, "sky", motion_id="builtin-walk", motion_start_frame=30)
    out = tmp_path_factory.mktemp("sky") / "v"
    out.mkdir()
    stats = render_video(spec, library, cfg.render, out, cache)
    return spec, library, out, stats


def test_every_modality_of_every_frame_is_stored_and_described(sky_video):
    spec, _, out, stats = sky_video
    for mod in ("rgb",) + LABELS:
        assert sorted(p.name for p in (out / mod).iterdir()) == [
            outputs.path_of(out, mod, f).name for f in range(spec.num_frames)
        ]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["spec"]["video_id"] == spec.video_id and meta["render"]["blender_version"].startswith("5.0")
    assert set(meta["assets"]) == {spec.character_id, spec.motion_id, spec.background_id}
    assert all(a["licence"] for a in meta["assets"].values())
    assert len(meta["frame_render_seconds"]) == spec.num_frames and "OpenCV" in meta["conventions"]
    assert meta["qa"]["passed"], meta["qa"]
    ann = read_annotations(out / "annotations.npz")
    assert ann["K"].shape == (5, 3, 3) and ann["joints2d_coco17"].shape == (5, 17, 2)
    assert ann["visibility_smpl24"].dtype == np.uint8 and ann["bbox"].shape == (5, 4)


def test_joints_project_exactly_and_sit_inside_the_mask(sky_video):
    _, _, out, _ = sky_video
    ann = read_annotations(out / "annotations.npz")
    seen = hit = 0
    for f in range(ann["K"].shape[0]):
        for c in ("smpl24", "h36m17", "coco17"):
            uv, z = project(ann["K"][f], ann["R"][f], ann["t"][f], ann[f"joints3d_world_{c}"][f])
            assert np.abs(uv - ann[f"joints2d_{c}"][f]).max() < 0.01
            assert np.allclose(z, ann[f"joints3d_cam_{c}"][f][:, 2])
        mask = outputs.read_frame(out, f, ("mask",)).mask
        vis = ann["visibility_smpl24"][f] == 0
        seen += vis.sum()
        hit += (qa.sample(mask, ann["joints2d_smpl24"][f][vis]) > 0.5).sum()
    assert seen > 0 and hit / seen > 0.95


# The body segments each SMPL-24 joint joins (labels.SEGMENTS names; L/R = the subject's left/right)
JOINT_SEGMENTS = {
    "pelvis": ("torso", "upper_leg_L", "upper_leg_R"),
    "spine1": ("torso",),
    "spine2": ("torso",),
    "spine3": ("torso",),
    "neck": ("torso", "head"),
    "head": ("head",),
    **{
        f"{side}_{j}": segs
        for side, x in (("left", "L"), ("right", "R"))
        for j, segs in (
            ("hip", ("torso", f"upper_leg_{x}")),
            ("knee", (f"upper_leg_{x}", f"lower_leg_{x}")),
            ("ankle", (f"lower_leg_{x}", f"foot_{x}")),
            ("foot", (f"foot_{x}",)),
            ("collar", ("torso", "head", f"upper_arm_{x}")),
            ("shoulder", ("torso", f"upper_arm_{x}")),
            ("elbow", (f"upper_arm_{x}", f"lower_arm_{x}")),
            ("wrist", (f"lower_arm_{x}", f"hand_{x}")),
            ("hand", (f"hand_{x}",)),
        )
    },
}


def test_visible_joints_land_on_the_body_parts_they_join(sky_video):
    """An independent check of the 2D joints (not the projection that wrote them): the DensePose part
    the renderer drew at (or next to) a joint coded visible is one of the parts that joint joins - a
    left knee on the left thigh or shin, never on the right leg or the torso."""
    from thfm_synth.assets.characters.labels import SEGMENTS
    from thfm_synth.assets.motion.joints import SMPL24_NAMES

    _, _, out, _ = sky_video
    ann = read_annotations(out / "annotations.npz")
    parts = {j: {p for s in segs for p in SEGMENTS[s][:2]} for j, segs in JOINT_SEGMENTS.items()}
    assert set(parts) == set(SMPL24_NAMES)
    seen = hits = 0
    for f in range(ann["K"].shape[0]):
        part = outputs.read_frame(out, f, ("iuv",)).part
        h, w = part.shape
        for j, name in enumerate(SMPL24_NAMES):
            if ann["visibility_smpl24"][f, j] != 0:
                continue
            u, v = ann["joints2d_smpl24"][f, j].astype(int)
            near = part[max(v - 1, 0) : min(v + 2, h), max(u - 1, 0) : min(u + 2, w)]
            seen += 1
            hits += bool(parts[name] & set(near.ravel().tolist()))
    print(f"{hits}/{seen} visible joints on a part they join")
    assert seen > 50 and hits / seen >= 0.9


def test_head_and_face_keypoints_agree_with_the_render(sky_video):
    """Regression: the H36M head top projects inside the subject's mask (it floated 1.7-3.7 cm
    above the head), and a face point coded visible is the visible surface itself (they were
    coded visible 5-15 cm behind the back of the head)."""
    from thfm_synth.assets.motion.joints import COCO17_NAMES, H36M17_NAMES
    from thfm_synth.render.scene.visibility import EAR_TOL_M, SURFACE_TOL_M

    spec, _, out, _ = sky_video
    ann = read_annotations(out / "annotations.npz")
    head = H36M17_NAMES.index("head")
    checked = 0
    for f in range(spec.num_frames):
        fr = outputs.read_frame(out, f, ("mask", "depth"))
        assert qa.sample(fr.mask, ann["joints2d_h36m17"][f][head : head + 1])[0] > 0.5, f
        for k, name in enumerate(COCO17_NAMES[:5]):
            if ann["visibility_coco17"][f, k] == 0:
                u, v = ann["joints2d_coco17"][f, k]
                behind = ann["joints3d_cam_coco17"][f, k, 2] - fr.depth[int(v), int(u)]
                assert behind < (EAR_TOL_M if name.endswith("ear") else SURFACE_TOL_M), (f, name, behind)
                checked += 1
    meta = json.loads((out / "metadata.json").read_text())
    view = meta["view"]
    assert view["azimuth_reference"] == spec.camera_azimuth_reference == "subject"
    assert len(view["azimuth_deg"]) == len(view["face_angle_deg"]) == spec.num_frames
    assert abs((view["azimuth_first_deg"] - spec.camera_azimuth_deg + 180) % 360 - 180) < 2.0
    assert 0 <= view["face_towards_camera"] <= 1 and 0 <= view["face_in_view"] <= 1


# measured at 160x96: 1.0-1.7 mm per frame; with the camera moved half a pixel 3.3-3.9 mm
RESIDUAL_MEDIAN_MAX_M = 0.0025


def _unhidden_depth_residual(depth, interior, uv, z):
    """|bilinear depth - z| (metres) of the vertices inside the mask interior that nothing hides."""
    x, y = uv[:, 0] - 0.5, uv[:, 1] - 0.5
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    h, w = depth.shape
    ok = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < w) & (y0 + 1 < h)
    x, y, x0, y0, z = x[ok], y[ok], x0[ok], y0[ok], z[ok]
    corners = [(y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)]
    ok = np.all([interior[c] for c in corners], axis=0)
    fx, fy = x - x0, y - y0
    d = (
        (1 - fx) * (1 - fy) * depth[corners[0]]
        + fx * (1 - fy) * depth[corners[1]]
        + (1 - fx) * fy * depth[corners[2]]
        + fx * fy * depth[corners[3]]
    )
    unhidden = ok & (z <= d + 0.01)
    return np.abs(d - z)[unhidden]


def test_labels_agree_with_each_other_and_with_the_mesh(sky_video, cfg, cache):
    spec, library, out, _ = sky_video
    asm = assemble(spec, library, cfg.render, cache)  # the same geometry the renderer drew
    for f in range(spec.num_frames):
        fr = outputs.read_frame(out, f)
        interior = qa.erode(fr.mask >= 1.0, 1)
        exterior = ~qa.erode(~(fr.mask <= 0.0), 3)
        assert interior.sum() > 200
        # mask is 1 inside and 0 outside, soft only on the edge band
        assert np.all(fr.mask[interior] == 1.0) and np.all(fr.mask[qa.erode(fr.mask == 0.0, 3)] == 0.0)
        assert exterior.any()
        # depth: finite and positive in the subject, nearer than what lies just outside it
        assert np.all(fr.depth[interior] > 0)
        assert qa.silhouette_nearer(fr.depth, fr.mask) > 0.9  # sky (depth 0) counts as far
        # normals: unit, facing the camera, and agreeing with the depth map's own gradients
        n = fr.normal[interior]
        assert np.abs(np.linalg.norm(n, axis=-1) - 1).max() < 2e-3
        assert np.median(qa.depth_normal_agreement(fr.depth, fr.normal, asm.description.camera.k[f], fr.mask)) < 10.0
        # dense semantics: a body part on every interior pixel, canonical coordinates in the unit cube
        assert np.all((fr.part[interior] >= 1) & (fr.part[interior] <= 24))
        assert fr.canonical[interior].min() >= 0 and fr.canonical[interior].max() <= 1
        # geometry: mesh vertices that the depth pass sees project onto the subject's coverage
        # (the label rays are pixel centres, the mask's first sample, so coverage there is > 0)
        uv, z = project(
            asm.description.camera.k[f], asm.description.camera.r[f], asm.description.camera.t[f], asm.vertices[f]
        )
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < spec.width) & (uv[:, 1] >= 0) & (uv[:, 1] < spec.height)
        d = qa.sample(fr.depth, uv[inside])
        front = np.abs(d - z[inside]) < 0.01
        assert front.sum() > 100
        assert (qa.sample(fr.mask, uv[inside][front]) > 0).mean() > 0.99
        # and the vertices nothing hides lie on the depth map itself: bilinear depth at a vertex's
        # projection (pixel centres at +0.5) is its z to a millimetre or two; a camera off by half a
        # pixel, or labels from a neighbouring frame, is several times that
        resid = _unhidden_depth_residual(fr.depth, qa.erode(fr.mask >= 1.0, 2), uv[inside], z[inside])
        assert len(resid) > 200 and np.median(resid) < RESIDUAL_MEDIAN_MAX_M, np.median(resid)


def test_same_spec_same_label_bytes(sky_video, cfg, cache, tmp_path):
    spec, library, out, _ = sky_video
    again = tmp_path / "again"
    again.mkdir()
    render_video(spec, library, cfg.render, again, cache)
    for mod in LABELS:
        for f in range(spec.num_frames):
            assert outputs.path_of(out, mod, f).read_bytes() == outputs.path_of(again, mod, f).read_bytes(), mod


@pytest.mark.parametrize("kind", ["scene", "hdri"])
def test_rooms_streets_and_hdris_render_with_the_subject_in_view(
    kind, cfg, cache, tmp_path, shared_manifest, shared_assets
):
    library = load_library([shared_manifest])
    spec = planned(cfg, library, kind)
    if kind == "scene" and library.entry(spec.background_id).format != "procedural":
        spec = dataclasses.replace(spec, background_id="room-living")
    stats = render_video(spec, library, cfg.render, tmp_path, cache)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["qa"]["passed"], meta["qa"]
    masks = [outputs.read_frame(tmp_path, f, ("mask",)).mask for f in range(spec.num_frames)]
    assert min((m > 0.5).sum() for m in masks) > 100  # never hidden by the set or outside the image
    assert stats["frames"] == spec.num_frames


def test_cli_render_one_and_preview(tmp_path, cache):
    # relative paths on purpose: the Blender child and workers must not depend on the caller's cwd
    def cli(*args):
        return run_cli(*args, cwd=tmp_path)

    assert cli("plan", "--preset", "preview", "--num-videos", "2", "--out", "plan.parquet").returncode == 0
    proc = cli("render-one", "--plan", "plan.parquet", "--index", "1", "--out", "v1", "--cache", "cache")
    assert proc.returncode == 0, proc.stderr
    assert "QA passed" in proc.stdout
    proc = cli("render-one", "--plan", "plan.parquet", "--index", "1", "--out", "v1")
    assert proc.returncode == 1 and "already exists" in proc.stderr
    proc = cli("preview", "v1")
    assert proc.returncode == 0, proc.stderr
    from thfm_synth.render.imagefiles import read_png

    sheet = read_png(tmp_path / "v1" / "preview.png")
    assert sheet.shape[1] == 3 * 256 and sheet.shape[0] % (2 * 160) == 0
    assert (tmp_path / "v1" / "preview.mp4").stat().st_size > 1000


def test_dim_hdri_with_strong_lamps_does_not_blow_the_person_out(cfg, cache, tmp_path, shared_manifest, shared_assets):
    """The paper-preset failure (a dim studio HDRI, two 700 W area lights, whole-frame metering at
    +4 stops: a white silhouette that QA passed): metered on the person, its pixels stay below white;
    the same linear render metered on the whole frame clips most of the person."""
    from thfm_synth.plan.spec import LightSpec
    from thfm_synth.render import exposure

    library = load_library([shared_manifest])
    lamps = tuple(LightSpec("area", az, 35.0, 1.5, 700.0, 5500.0, 1.0) for az in (-40.0, 40.0))
    spec = planned(
        cfg,
        library,
        "hdri",
        background_id="hdri-studio_small_03_1k",
        background_strength=0.05,
        lights=lamps,
        num_frames=3,
    )
    render = cfg.render.model_copy(update={"write_linear_exr": True})
    render_video(spec, library, render, tmp_path, cache)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    frames = [outputs.read_frame(tmp_path, f, ("rgb", "mask", "rgb_linear")) for f in range(spec.num_frames)]
    for fr in frames:
        assert (fr.mask >= 0.5).sum() > 100
        # the cap puts the person's 99th percentile below white: about 1% (highlights) may still clip
        assert qa.subject_clipped(fr.rgb, fr.mask) <= 0.02
    assert meta["qa"]["figures"]["subject_clipped"] <= qa.THRESHOLDS["subject_clipped_max"], meta["qa"]
    whole = exposure.metering_gain([fr.rgb_linear for fr in frames])
    gain = meta["render"]["exposure_gain"]
    assert whole > gain, (whole, gain)
    blown = outputs.srgb_encode(frames[0].rgb_linear * np.float32(whole))
    assert qa.subject_clipped(blown, frames[0].mask) > 0.3, (whole, gain)
