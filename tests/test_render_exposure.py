"""Per-clip auto-exposure of the stored RGB (thfm_synth/render/exposure.py), no Blender needed."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from thfm_synth.render import exposure, outputs
from thfm_synth.render.imagefiles import read_png, write_exr


def _grey(level: float, h: int = 20, w: int = 30) -> np.ndarray:
    return np.full((h, w, 3), level, np.float32)


def test_constant_scene_is_mapped_to_middle_grey():
    for level in (0.03, 0.5, 6.0):  # Hosek-Wilkie-dark, HDRI-like, Nishita-bright
        gain = exposure.metering_gain([_grey(level)])
        assert gain * (level + exposure.EPS) == pytest.approx(exposure.KEY, rel=1e-6)


def test_log_average_ignores_a_small_sun_disc():
    img = _grey(0.5)
    img[0, :2] = 1e4  # 2 of 600 pixels: the sun
    mean_metered = exposure.KEY / exposure.luminance(img).mean()
    gain = exposure.metering_gain([img])
    assert gain == pytest.approx(exposure.KEY / 0.5, rel=0.05)  # log-average: barely moved
    assert gain > 10 * mean_metered  # a plain mean would darken the clip ~35x


def test_gain_is_clamped_to_the_stop_range():
    assert exposure.metering_gain([_grey(0.0)]) == pytest.approx(2.0 ** exposure.MAX_STOPS)
    assert exposure.metering_gain([_grey(1e9)]) == pytest.approx(2.0 ** exposure.MIN_STOPS)
    assert exposure.metering_gain([]) == 1.0


def test_meter_frames_span_the_clip():
    assert exposure.meter_frame_indices(81) == [0, 20, 40, 60, 80]
    assert exposure.meter_frame_indices(3) == [0, 1, 2]
    assert exposure.meter_frame_indices(9) == [0, 2, 4, 6, 8]


def _raw(path, lin):
    write_exr(path, {f"rgb.Combined.{c}": lin[..., i].astype(np.float32) for i, c in enumerate("RGB")})


def test_convert_render_applies_one_metered_gain_to_every_frame(tmp_path):
    rng = np.random.default_rng(0)
    frames = [(rng.random((12, 16, 3)) * s).astype(np.float32) for s in (4.0, 6.0, 5.0)]  # a blown-out sky clip
    render = tmp_path / "render"
    render.mkdir()
    files = []
    for i, lin in enumerate(frames):
        files.append(str(render / f"{i:05d}.exr"))
        _raw(files[-1], lin)
    (render / "render_info.json").write_text(json.dumps({"frames": [{"frame": i, "files": [f]}
                                                                    for i, f in enumerate(files)]}))
    rows = outputs.convert_render(render, tmp_path / "data", np.tile(np.eye(3), (3, 1, 1)), auto_exposure=True)
    gain = exposure.metering_gain(frames)
    assert {r["exposure_gain"] for r in rows} == {gain} and gain < 0.2
    for i, lin in enumerate(frames):
        stored = read_png(outputs.path_of(tmp_path / "data", "rgb", i))
        np.testing.assert_array_equal(stored, outputs.srgb_encode(lin * np.float32(gain)))
        assert (stored == 255).mean() < 0.01  # no longer clipped white
    # exposure off: the RGB is encoded as rendered
    rows = outputs.convert_render(render, tmp_path / "raw_data", np.tile(np.eye(3), (3, 1, 1)))
    assert rows[0]["exposure_gain"] == 1.0
    assert (read_png(outputs.path_of(tmp_path / "raw_data", "rgb", 0)) == 255).mean() > 0.5
    assert math.log2(gain) < -2
