"""The stored label format (thfm_synth/render/labelcodec.py): each stated bound holds, discrete labels
are exact, the integer coding is lossless, foreign and newer files fail with one line."""

from __future__ import annotations

import numpy as np
import pytest

from thfm_synth.errors import UserError
from thfm_synth.render import labelcodec as L


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between unit vectors, accurate near 0 (arccos of a float dot product is not)."""
    a = a.astype(np.float64) / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b.astype(np.float64) / np.linalg.norm(b, axis=-1, keepdims=True)
    return np.degrees(2 * np.arcsin(np.clip(np.linalg.norm(a - b, axis=-1) / 2, 0, 1)))


def _unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=-1, keepdims=True)
    special = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1], [1, 1, 0], [-1, 1, 0], [1, -1, 0]]
    special += [[1, 1, 1], [-1, -1, -1], [1e-9, 0, -1], [0, 1e-9, -1], [0.6, -0.8, 0]]
    s = np.asarray(special, np.float64)
    return np.concatenate([v, s / np.linalg.norm(s, axis=-1, keepdims=True)])


def test_octahedral_normals_within_0_03_degrees_everywhere(tmp_path):
    n = _unit_vectors(1_000_000 - 14).astype(np.float32).reshape(1000, 1000, 3)  # 14 special vectors at the end
    n[:3, :5] = 0  # no surface
    L.write_normal(tmp_path / "n.tlz", n)
    back = L.read_normal(tmp_path / "n.tlz")
    hit = np.abs(n).sum(-1) > 0
    ang = _angle_deg(back[hit], n[hit])
    assert ang.max() <= 0.03, ang.max()  # the bound the README states (the goal is 0.1)
    assert ang.mean() < 0.012
    assert np.all(back[~hit] == 0)
    np.testing.assert_allclose(np.linalg.norm(back[hit], axis=-1), 1, atol=1e-6)
    # the poles and axes come back exactly as unit axes (no drift for flat, camera-facing surfaces)
    axes = np.eye(3, dtype=np.float32)[None].repeat(2, 0)
    axes[1] *= -1
    np.testing.assert_allclose(L.oct_decode(L.oct_encode(axes)), axes, atol=1e-7)


def test_fewer_octahedral_bits_break_the_bound():
    """The test above can fail: 10 bits per axis lose up to ~0.24 deg."""
    n = _unit_vectors(200_000)
    assert _angle_deg(L.oct_decode(L.oct_encode(n, 10), 10), n).max() > 0.1


def test_depth_within_0_061_mm_up_to_20_m_and_beyond(tmp_path):
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.uniform(0.05, 20.0, 400_000), rng.uniform(20, 1000, 100_000)])
    z = np.concatenate([z, [2.0**-20, 1e-4, 0.0, 19.99999, 20.0, 524287.0]]).astype(np.float32)
    z = np.pad(z, (0, 1000 * 501 - z.size)).reshape(1000, 501)  # the padding: no surface
    L.write_depth(tmp_path / "d.tlz", z)
    back = L.read_depth(tmp_path / "d.tlz")
    assert back.dtype == np.float32
    near = (z >= 2.0**-14) & (z <= 20)  # nearer than half a step (never, past Cycles' clip start): kept > 0
    err = np.abs(back.astype(np.float64) - z.astype(np.float64))
    assert err[near].max() <= 2.0**-14 + 20 * 2.0**-24  # 0.061 mm, plus float32's own rounding
    assert err[near].max() <= 1e-4  # the goal: 0.1 mm
    far = z >= 2.0**-14
    assert np.all(err[far] <= 2.0**-14 + z[far] * 2.0**-23)
    assert np.all(back[z == 0] == 0) and np.all(back[z > 0] > 0)  # a surface never becomes sky


def test_uv_and_canonical_within_one_in_8190_and_parts_exact(tmp_path):
    rng = np.random.default_rng(2)
    part = rng.integers(0, 25, (480, 832)).astype(np.uint8)
    uv = rng.random((480, 832, 2)).astype(np.float32)
    uv[0, :2] = [0.0, 1.0]
    can = rng.random((480, 832, 3)).astype(np.float32)
    L.write_iuv(tmp_path / "i.tlz", part, uv)
    L.write_canonical(tmp_path / "c.tlz", can)
    p, uv2 = L.read_iuv(tmp_path / "i.tlz")
    np.testing.assert_array_equal(p, part)
    assert p.dtype == np.uint8
    assert np.abs(uv2 - uv).max() <= 1 / 8190 + 1e-7
    assert uv2[0, 0, 0] == 0.0 and uv2[0, 0, 1] == 1.0
    assert np.abs(L.read_canonical(tmp_path / "c.tlz") - can).max() <= 1 / 8190 + 1e-7


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32])
def test_integer_planes_round_trip_exactly_with_extreme_values(dtype):
    rng = np.random.default_rng(3)
    top = np.iinfo(dtype).max
    a = rng.integers(0, top, (37, 53), dtype=dtype, endpoint=True)
    a[0, 0], a[0, 1], a[1, 0], a[5, 5] = top, 0, top, 0  # residuals wrap around the width
    header, ch = L.decode(L.encode("x", {"a": a, "b": a.T.copy()[:37, :37].repeat(2, 1)[:, :53]}, k=1))
    np.testing.assert_array_equal(ch["a"], a)
    assert ch["a"].dtype == dtype and header["k"] == 1 and header["format"] == L.FORMAT


def test_smooth_fields_compress():
    """The predictor is what makes the files small: a smooth 832x480 depth ramp costs little."""
    v, u = np.mgrid[0:480, 0:832]
    z = 2.0 + 0.003 * u + 0.001 * v
    assert len(L.encode("depth", {"z": L.depth_encode(z)})) < 5_000


def test_foreign_newer_truncated_and_mismatched_files_fail_with_one_line(tmp_path):
    good = L.encode("depth", {"z": L.depth_encode(np.ones((4, 4)))}, step_m=L.DEPTH_STEP_M)
    cases = {
        "foreign.tlz": (b"\x89PNG\r\n\x1a\n" + good[8:], "not a thfm-synth label file"),
        "newer.tlz": (good.replace(b'"format": 2', b'"format": 3'), "format 3"),
        "truncated.tlz": (good[:-5], "truncated or corrupt"),
        "empty.tlz": (good[:10], "truncated or corrupt"),
    }
    for name, (data, msg) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match=msg) as err:
            L.read_depth(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "d.tlz").write_bytes(good)
    with pytest.raises(UserError, match="holds 'depth', not 'normal'"):
        L.read_normal(tmp_path / "d.tlz")


def test_the_zstd_level_changes_only_the_size(tmp_path):
    """Depth is written at its own level (labelcodec.DEPTH_ZSTD_LEVEL); any level reads back the same."""
    v, u = np.mgrid[0:96, 0:128]
    z = 2.0 + 0.003 * u + 0.001 * v + np.random.default_rng(8).normal(0, 1e-3, u.shape)
    z[:10, :10] = 0
    blobs = {lv: L.encode("depth", {"z": L.depth_encode(z)}, lv, step_m=L.DEPTH_STEP_M) for lv in (3, 10, 16)}
    assert len(set(blobs.values())) == 3  # the levels differ ...
    for data in blobs.values():  # ... and decode alike
        np.testing.assert_array_equal(L.decode(data)[1]["z"], L.depth_encode(z))
    L.write_depth(tmp_path / "d.tlz", z)
    assert (tmp_path / "d.tlz").read_bytes() == blobs[16] == blobs[L.DEPTH_ZSTD_LEVEL]


def test_files_are_deterministic():
    n = _unit_vectors(5000 - 14, 4).reshape(50, 100, 3)
    assert L.encode("normal", {"u": L.oct_encode(n)[..., 0]}) == L.encode("normal", {"u": L.oct_encode(n)[..., 0]})
