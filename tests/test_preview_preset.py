"""The preview preset (the demo's) renders clean RGB: 4 samples plus OIDN denoising, not 4 samples of noise."""

from __future__ import annotations

import json

import numpy as np
import pytest

from thfm_synth.config import load_config
from thfm_synth.render.imagefiles import read_png

import test_preprocess_data as data


def test_preview_preset_denoises_rgb():
    render = load_config("preview").render
    assert render.denoise and render.samples == 4


@pytest.mark.render
def test_preview_videos_are_smooth_not_grainy(tmp_path_factory):
    """Mean absolute difference of neighbouring pixels: ~2 grey levels denoised, ~90 at 4 samples without
    (measured on a preview video of this preset with and without denoising)."""
    rendered = data.rendered(tmp_path_factory)  # `thfm-synth render --preset preview`, shared with other tests
    for video in sorted((rendered / "videos").iterdir()):
        meta = json.loads((video / "metadata.json").read_text())
        assert meta["render"]["denoise"] and meta["render"]["layers"][0][0]["denoise"]
        files = sorted((video / "rgb").glob("*.webp"))
        assert files, video
        for f in files[::4]:
            rgb = read_png(f).astype(np.float64)
            grain = np.abs(np.diff(rgb, axis=0)).mean() + np.abs(np.diff(rgb, axis=1)).mean()
            assert grain < 12.0, (f, grain)
