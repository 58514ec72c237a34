"""Render modes (one render per frame vs per modality vs RGB only), frame selection, device fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from thfm_synth.render import outputs
from thfm_synth.render.analytic import analytic_scene
from thfm_synth.render.imagefiles import read_exr
from thfm_synth.render.runner import render

pytestmark = pytest.mark.render

W, H = 64, 40


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("modes")
    desc, _ = analytic_scene(tmp / "scene", W, H, num_frames=2, samples=8)
    return tmp, desc


def test_per_modality_renders_once_per_modality_and_agrees_with_the_single_render(small):
    tmp, desc = small
    single = render(tmp / "scene", tmp / "single", frames=[1], timeout=300)
    per = render(tmp / "scene", tmp / "per", frames=[1], mode="per_modality", timeout=300)
    assert [f["frame"] for f in single["frames"]] == [1] and single["frames"][0]["renders"] == 1
    assert per["frames"][0]["renders"] == 6 and len(per["frames"][0]["files"]) == 6
    one = read_exr(single["frames"][0]["files"][0])
    many = {}
    for path in per["frames"][0]["files"]:
        many.update(read_exr(path))
    # the same pixel-centre rays and the same sample positions: identical label data
    np.testing.assert_array_equal(many["depth.Depth.Z"], one["labels.Depth.Z"])
    for c in "XYZ":
        np.testing.assert_array_equal(many[f"normal.Normal.{c}"], one[f"labels.Normal.{c}"])
    np.testing.assert_array_equal(many["part.part.X"], one["labels.part.X"])
    np.testing.assert_array_equal(many["canonical.can_z.X"], one["labels.can_z.X"])
    np.testing.assert_array_equal(many["mask.fg.X"], one["rgb.fg.X"])
    np.testing.assert_array_equal(many["rgb.Combined.R"], one["rgb.Combined.R"])


def test_rgb_only_writes_only_the_image(small):
    tmp, desc = small
    info = render(tmp / "scene", tmp / "rgbonly", frames=[0], mode="rgb_only", timeout=300)
    assert [[layer["name"] for layer in call] for call in info["layers"]] == [["rgb"]]
    ch = read_exr(info["frames"][0]["files"][0])
    assert all(name.startswith("rgb.") for name in ch)
    fr = outputs.decode_raw(ch, desc.camera.r[0])
    assert fr.rgb is not None and fr.depth is None and fr.part is None


def test_a_missing_gpu_falls_back_to_cpu_with_a_warning(small):
    tmp, _ = small
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        info = render(tmp / "scene", tmp / "gpu", frames=[0], modalities=("rgb",), device="cuda", timeout=300)
    if info["device"] == "cuda":  # a machine with a CUDA GPU
        assert not info["warnings"]
        return
    assert info["device"] == "cpu"
    assert any("cuda" in w and "falling back to cpu" in w for w in info["warnings"])
    assert any("falling back to cpu" in str(w.message) for w in caught)


def test_a_shadow_catcher_ground_shows_the_world_but_keeps_its_labels(small):
    tmp, desc = small
    desc.objects[0].shadow_catcher = True
    desc.save(tmp / "catcher")
    desc.objects[0].shadow_catcher = False
    ref = render(tmp / "scene", tmp / "ref", frames=[0], timeout=300)
    cat = render(tmp / "catcher", tmp / "catcher_out", frames=[0], timeout=300)
    a = outputs.decode_raw(ref["frames"][0]["files"][0], desc.camera.r[0])
    b = outputs.decode_raw(cat["frames"][0]["files"][0], desc.camera.r[0])
    for name in ("depth", "normal", "instance", "part", "canonical"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    ground = a.instance == 1
    world = np.array(desc.world.color)
    # the grey checker ground is replaced by the (bluish) world colour, darkened only by shadows
    assert np.median(b.rgb_linear[ground][:, 2]) > np.median(a.rgb_linear[ground][:, 2])
    assert np.abs(np.median(b.rgb_linear[ground], axis=0) - world).max() < 0.1
