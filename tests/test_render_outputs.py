"""Blender's EXR channels -> stored modalities -> read back (no Blender needed)."""

from __future__ import annotations

import numpy as np
import pytest

from thfm_synth.render import outputs
from thfm_synth.render.imagefiles import read_exr, read_image, read_png, write_exr, write_png, write_webp

H, W = 24, 32


def _channels(rng):
    """A synthetic render result in the layout render_scene.py writes."""
    ch = {}
    lin = rng.random((H, W, 3)).astype(np.float32) * 1.5
    for i, c in enumerate("RGB"):
        ch[f"rgb.Combined.{c}"] = lin[..., i]
    ch["rgb.Combined.A"] = np.ones((H, W), np.float32)
    fg = np.zeros((H, W), np.float32)
    fg[5:15, 8:20] = 1.0
    fg[5:15, 7] = 0.4375
    ch["rgb.fg.X"] = fg
    depth = np.full((H, W), 1e10, np.float32)
    depth[5:20] = 2.0 + rng.random((15, W)).astype(np.float32)
    ch["labels.Depth.Z"] = depth
    n = rng.normal(size=(H, W, 3))
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    n[depth > 1e9] = 0
    for i, c in enumerate("XYZ"):
        ch[f"labels.Normal.{c}"] = n[..., i].astype(np.float32)
    inst = np.where(depth < 1e9, 1.0, 0.0).astype(np.float32)
    inst[5:15, 8:20] = 2.0
    ch["labels.Object Index.X"] = inst
    part = np.where(inst == 2, 7.0, 0.0).astype(np.float32)
    ch["labels.part.X"] = part
    for name in ("part_u", "part_v", "can_x", "can_y", "can_z"):
        ch[f"labels.{name}.X"] = np.where(part > 0, rng.random((H, W)), 0).astype(np.float32)
    return ch, n


def test_decode_raw_puts_everything_in_our_conventions():
    rng = np.random.default_rng(0)
    ch, n_world = _channels(rng)
    ang = np.radians(30)
    r = np.array([[np.cos(ang), -np.sin(ang), 0], [np.sin(ang), np.cos(ang), 0], [0, 0, 1]])
    fr = outputs.decode_raw(ch, r)
    sky = ch["labels.Depth.Z"] > 1e9
    assert np.all(fr.depth[sky] == 0) and np.all(fr.depth[~sky] == ch["labels.Depth.Z"][~sky])
    np.testing.assert_allclose(fr.normal[~sky], (n_world @ r.T)[~sky], atol=1e-6)
    assert np.all(fr.normal[sky] == 0)
    assert fr.rgb.dtype == np.uint8 and fr.rgb.shape == (H, W, 3)
    assert fr.part.dtype == np.uint8 and set(np.unique(fr.part)) == {0, 7}
    assert np.all(fr.part_uv[fr.part == 0] == 0) and np.all(fr.canonical[fr.part == 0] == 0)
    assert fr.instance.dtype == np.uint16 and fr.mask.max() == 1.0


def test_a_blended_part_pass_is_refused():
    ch, _ = _channels(np.random.default_rng(1))
    ch["labels.part.X"][6, 9] = 6.5  # what a multi-sample AOV does at a part border
    with pytest.raises(ValueError, match="integer"):
        outputs.decode_raw(ch, np.eye(3))


def test_srgb_transfer_matches_the_standard():
    lin = np.array([0.0, 0.0031308, 0.05, 0.2158605, 0.5, 1.0, 2.0], np.float32)
    assert outputs.srgb_encode(lin).tolist() == [0, 10, 63, 128, 188, 255, 255]
    codes = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(outputs.srgb_encode(outputs.srgb_decode(codes)), codes)


def test_write_then_read_every_modality(tmp_path):
    ch, _ = _channels(np.random.default_rng(2))
    fr = outputs.decode_raw(ch, np.eye(3))
    sizes = outputs.write_frame(tmp_path, 3, fr)
    assert set(sizes) == set(outputs.MODALITIES) and all(v > 0 for v in sizes.values())
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind
    back = outputs.read_frame(tmp_path, 3)
    np.testing.assert_array_equal(back.rgb, fr.rgb)
    # the bounds stated in labelcodec.py (tested in depth in tests/test_labelcodec.py)
    np.testing.assert_allclose(back.depth, fr.depth, rtol=2**-23, atol=2**-14)
    assert np.all(back.depth[fr.depth == 0] == 0) and np.all(back.depth[fr.depth > 0] > 0)
    np.testing.assert_allclose(back.normal, fr.normal, atol=np.radians(0.03))
    assert np.all(back.normal[fr.depth == 0] == 0)
    np.testing.assert_allclose(back.mask, fr.mask, atol=1 / 65535)
    assert np.all(back.mask[fr.mask == 1] == 1) and np.all(back.mask[fr.mask == 0] == 0)
    np.testing.assert_array_equal(back.part, fr.part)
    np.testing.assert_allclose(back.part_uv, fr.part_uv, atol=1 / 8190)
    np.testing.assert_allclose(back.canonical, fr.canonical, atol=1 / 8190)
    np.testing.assert_array_equal(back.instance, fr.instance)


def test_label_format_1_videos_still_read(tmp_path):
    """A video folder written before the .tlz files (depth PXR24 float EXR, the others half EXR)."""
    ch, _ = _channels(np.random.default_rng(3))
    fr = outputs.decode_raw(ch, np.eye(3))
    for mod in ("depth", "normal", "iuv", "canonical"):
        (tmp_path / mod).mkdir()
    half = lambda x, names: {c: x[..., i].astype(np.float16) for i, c in enumerate(names)}  # noqa: E731
    write_exr(tmp_path / "depth" / "00000.exr", {"Z": fr.depth}, "PXR24")
    write_exr(tmp_path / "normal" / "00000.exr", half(fr.normal, "XYZ"))
    iuv = np.concatenate([fr.part[..., None].astype(np.float32), fr.part_uv], -1)
    write_exr(tmp_path / "iuv" / "00000.exr", half(iuv, "IUV"))
    write_exr(tmp_path / "canonical" / "00000.exr", half(fr.canonical, "XYZ"))
    assert outputs.path_of(tmp_path, "depth", 0).name == "00000.exr"
    assert outputs.path_of(tmp_path, "depth", 1).name == "00001.tlz"  # neither exists: the current format
    back = outputs.read_frame(tmp_path, 0)
    np.testing.assert_allclose(back.depth, fr.depth, rtol=2**-15)
    np.testing.assert_allclose(back.normal, fr.normal, atol=2**-11)
    np.testing.assert_array_equal(back.part, fr.part)
    np.testing.assert_allclose(back.part_uv, fr.part_uv, atol=2**-11)
    np.testing.assert_allclose(back.canonical, fr.canonical, atol=2**-11)


def test_rgb_is_lossless_webp_bit_exact(tmp_path):
    """Noise (nothing to predict), a smooth render-like ramp, the extremes; RGBA keeps the colour under alpha 0."""
    rng = np.random.default_rng(5)
    v, u = np.mgrid[0:48, 0:64]
    smooth = np.stack([u * 4, v * 5, (u + v) * 2], -1).astype(np.uint8)
    for rgb in (rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), smooth, np.full((3, 5, 3), 255, np.uint8)):
        sizes = outputs.write_frame(tmp_path, 0, outputs.Frame(rgb=rgb), modalities=("rgb",))
        path = tmp_path / "rgb" / "00000.webp"
        assert outputs.path_of(tmp_path, "rgb", 0) == path and sizes["rgb"] == path.stat().st_size
        head = path.read_bytes()[:16]
        assert head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8L"  # VP8L: the lossless bitstream
        back = outputs.read_frame(tmp_path, 0, ("rgb",)).rgb
        assert back.dtype == np.uint8 and back.shape == rgb.shape
        np.testing.assert_array_equal(back, rgb)
    rgba = np.concatenate([rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), np.zeros((8, 8, 1), np.uint8)], -1)
    rgba[::2, :, 3] = 255
    write_webp(tmp_path / "a.webp", rgba)
    np.testing.assert_array_equal(read_image(tmp_path / "a.webp"), rgba)
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16), np.zeros((4, 4, 2), np.uint8)):
        with pytest.raises(TypeError):
            write_webp(tmp_path / "x.webp", bad)


def test_webp_is_smaller_than_png_on_a_render_like_image(tmp_path):
    """Smooth shading with mild texture and sensor-like noise: lossless WebP beats PNG level 6 by > 15%
    (a rendered 832x480 room: ~30%, benchmarks/label_bytes.py)."""
    rng = np.random.default_rng(6)
    v, u = np.mgrid[0:240, 0:416] / 100.0
    base = np.stack([np.sin(u) + v, np.cos(v * 2) + u / 3, np.sin(u + v)], -1) * 50 + 120
    img = np.clip(base + rng.normal(0, 1, base.shape), 0, 255).astype(np.uint8)
    png = write_png(tmp_path / "a.png", img)
    webp = write_webp(tmp_path / "a.webp", img)
    assert webp < 0.85 * png, (webp, png)


def test_rgb_png_videos_still_read(tmp_path):
    """A video folder written before the WebP RGB (rgb/NNNNN.png): the same pixels come back."""
    rgb = np.random.default_rng(7).integers(0, 256, (H, W, 3), dtype=np.uint8)
    (tmp_path / "rgb").mkdir()
    write_png(tmp_path / "rgb" / "00000.png", rgb)
    assert outputs.path_of(tmp_path, "rgb", 0).name == "00000.png"
    assert outputs.path_of(tmp_path, "rgb", 1).name == "00001.webp"  # neither exists: the current format
    np.testing.assert_array_equal(outputs.read_frame(tmp_path, 0, ("rgb",)).rgb, rgb)
    outputs.write_frame(tmp_path, 0, outputs.Frame(rgb=255 - rgb), modalities=("rgb",))
    assert outputs.path_of(tmp_path, "rgb", 0).name == "00000.webp"  # the current file wins where both exist
    np.testing.assert_array_equal(outputs.read_frame(tmp_path, 0, ("rgb",)).rgb, 255 - rgb)


def test_many_instances_switch_to_16_bit(tmp_path):
    fr = outputs.Frame(instance=np.arange(H * W, dtype=np.uint16).reshape(H, W))
    outputs.write_frame(tmp_path, 0, fr, modalities=("instance",))
    np.testing.assert_array_equal(outputs.read_frame(tmp_path, 0).instance, fr.instance)


def test_exr_reader_reads_every_part_of_a_multipart_file(tmp_path):
    import OpenEXR

    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    parts = [
        OpenEXR.Part(
            {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
            {f"{layer}.{name}": OpenEXR.Channel(a + i)},
            name=f"{layer}.{name}",
        )
        for i, (layer, name) in enumerate([("rgb", "fg.X"), ("labels", "Depth.Z")])
    ]
    with OpenEXR.File(parts) as f:
        f.write(str(tmp_path / "multi.exr"))
    ch = read_exr(tmp_path / "multi.exr")
    np.testing.assert_array_equal(ch["rgb.fg.X"], a)
    np.testing.assert_array_equal(ch["labels.Depth.Z"], a + 1)


def test_png_and_exr_helpers_refuse_what_they_cannot_store(tmp_path):
    with pytest.raises(TypeError):
        write_png(tmp_path / "x.png", np.zeros((2, 2), np.float32))
    with pytest.raises(TypeError):
        write_png(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint16))
    with pytest.raises(TypeError):
        write_exr(tmp_path / "x.exr", {"Z": np.zeros((2, 2), np.float64)})
    g = (np.arange(6, dtype=np.uint16) * 10000).reshape(2, 3)
    write_png(tmp_path / "g.png", g)
    np.testing.assert_array_equal(read_png(tmp_path / "g.png"), g)
