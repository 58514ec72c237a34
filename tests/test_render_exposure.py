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
    assert exposure.metering_gain([_grey(0.0)]) == pytest.approx(2.0**exposure.MAX_STOPS)
    assert exposure.metering_gain([_grey(1e9)]) == pytest.approx(2.0**exposure.MIN_STOPS)
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
    (render / "render_info.json").write_text(
        json.dumps({"frames": [{"frame": i, "files": [f]} for i, f in enumerate(files)]})
    )
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


def _studio(person_lum: float, background_lum: float, size=(120, 160)):
    """A person covering ~5% of the frame (a soft-edged box) in front of a flat background."""
    h, w = size
    mask = np.zeros(size, np.float32)
    mask[30:90, 70:80] = 1.0
    mask[30:90, 69] = mask[30:90, 80] = 0.5
    rng = np.random.default_rng(1)
    frame = np.full((h, w, 3), background_lum, np.float32)
    person = person_lum * (0.6 + 0.8 * rng.random((h, w, 1))).astype(np.float32)
    frame = np.where(mask[..., None] > 0, mask[..., None] * person + (1 - mask[..., None]) * frame, frame)
    return frame.astype(np.float32), mask


def test_a_brightly_lit_person_in_a_dim_room_is_not_blown_out():
    """Was: metering the whole frame (person 5% of it) lifted a dim studio by many stops and turned
    the lamp-lit person into a white silhouette."""
    frame, mask = _studio(person_lum=3.0, background_lum=0.004)
    whole = exposure.metering_gain([frame])
    ours = exposure.metering_gain([frame], masks=[mask])
    rgb_whole = outputs.srgb_encode(frame * np.float32(whole))
    rgb_ours = outputs.srgb_encode(frame * np.float32(ours))
    solid = mask >= 0.99
    assert (rgb_whole[solid].max(-1) >= 254).mean() > 0.9  # the old metering: a white silhouette
    assert (rgb_ours[solid].max(-1) >= 254).mean() <= 0.01  # the person's highlights stay below white
    assert np.percentile(frame[solid].max(-1), 99) * ours == pytest.approx(exposure.HIGHLIGHT_WHITE, rel=1e-6)


def test_a_person_in_shadow_against_a_bright_sky_is_metered_up():
    frame, mask = _studio(person_lum=0.02, background_lum=2.0)
    whole = exposure.metering_gain([frame])
    ours = exposure.metering_gain([frame], masks=[mask])
    assert ours > 8 * whole  # the person counts for most of the metering however small they are
    lum = exposure.luminance(frame * ours)[mask >= 0.99]
    assert 0.03 < np.exp(np.log(lum).mean()) < 0.18  # towards middle grey; the sky may clip instead


def test_qa_fails_a_blown_out_person_and_passes_a_well_exposed_one():
    from thfm_synth.render import qa

    frame, mask = _studio(person_lum=3.0, background_lum=0.004)
    white = outputs.srgb_encode(frame * np.float32(exposure.metering_gain([frame])))
    good = outputs.srgb_encode(frame * np.float32(exposure.metering_gain([frame], masks=[mask])))
    assert qa.subject_clipped(white, mask) > 0.9 and qa.subject_clipped(good, mask) <= 0.01
    assert np.isnan(qa.subject_clipped(good, np.zeros_like(mask)))  # no person: no evidence
    reports = [qa.QaReport([{"subject_clipped": qa.subject_clipped(im, mask)}]).summarize() for im in (white, good)]
    assert "subject_overexposed" in reports[0]["failures"] and "subject_overexposed" not in reports[1]["failures"]
