import numpy as np
import pytest

from thfm_synth.conventions import intrinsics, look_at, project
from thfm_synth.errors import UserError
from thfm_synth.preprocess import geometry as g
from thfm_synth.preprocess import targets as tg


def test_frame_indices_resample_and_refuse_short_videos():
    assert g.frame_indices(81, 24, 81, 24).tolist() == list(range(81))
    assert g.frame_indices(161, 48, 81, 24)[-1] == 160
    with pytest.raises(UserError, match="has 40 frames.*need 81"):
        g.frame_indices(40, 24, 81, 24)


def test_intrinsics_follow_the_resize_and_crop():
    k = intrinsics(35.0, 36.0, 1000, 600)
    r, t = look_at(np.array([0.0, -5.0, 1.0]), np.array([0.2, 0.0, 1.1]))
    pts = np.random.default_rng(0).normal([0, 0, 1], 0.4, (50, 3))
    uv, _ = project(k, r, t, pts)
    crop = g.cover_crop(1000, 600, 832, 480)
    k2 = g.crop_intrinsics(k, crop)
    uv2, _ = project(k2, r, t, pts)
    assert np.abs(uv2 - g.crop_points(uv, crop)).max() < 1e-9
    assert crop.scale == pytest.approx(0.832) and crop.width == 832 and crop.height == 480


def test_area_filter_preserves_mean_and_nearest_keeps_labels():
    rng = np.random.default_rng(1)
    img = rng.random((2, 96, 160, 3)).astype(np.float32)
    crop = g.cover_crop(160, 96, 80, 48)  # exact 2x: each output pixel is a 2x2 mean
    out = g.resize_area(img, crop)
    assert out.shape == (2, 48, 80, 3)
    assert np.allclose(out[0, 0, 0], img[0, :2, :2].mean(axis=(0, 1)), atol=1e-6)
    assert out.mean() == pytest.approx(img.mean(), abs=1e-6)
    labels = rng.integers(0, 25, (2, 96, 160, 1)).astype(np.uint8)
    small = g.resize_nearest(labels, g.cover_crop(160, 96, 64, 48))
    assert small.shape == (2, 48, 64, 1) and set(np.unique(small)) <= set(np.unique(labels))


def test_targets_are_in_range_and_depth_is_disparity():
    depth = np.array([[[1.0, 2.0], [4.0, np.inf]]], dtype=np.float32)
    d = tg.depth_target(depth)
    assert d.shape == (1, 2, 2, 3) and np.all(d[..., 0] == d[..., 2])
    assert d[0, 0, 0, 0] == 1.0 and d[0, 1, 0, 0] == -1.0  # nearest -> 1, farthest valid -> -1
    assert d[0, 0, 1, 0] == pytest.approx(2 * (0.5 - 0.25) / 0.75 - 1)  # disparity, not depth, is linear
    assert d[0, 1, 1, 0] == -1.0  # sky: zero disparity
    iuv = tg.iuv_target(np.array([[[0, 24]]]), np.array([[[[0.0, 1.0], [0.5, 0.5]]]]))
    assert iuv.tolist() == [[[[-1.0, -1.0, 1.0], [1.0, 0.0, 0.0]]]]
    m = tg.mask_target(np.array([[[0.0, 0.25, 1.0]]]))
    assert m[0, 0, :, 0].tolist() == [-1.0, -0.5, 1.0]
