"""PSNR and SSIM against values worked out by hand and by a naive per-window implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from thfm_synth.render.quality import psnr, ssim


def test_psnr_of_a_uniform_error_is_twenty_log_of_range_over_error():
    a = np.full((8, 9, 3), 0.25)
    assert psnr(a + 0.01, a) == pytest.approx(40.0, abs=1e-9)
    assert psnr(a * 255 + 2.55, a * 255, data_range=255.0) == pytest.approx(40.0, abs=1e-9)
    assert psnr(a, a) == math.inf
    b = a.copy()
    b[0, 0, 0] += 0.5  # mse = 0.25 / 216
    assert psnr(b, a) == pytest.approx(10 * math.log10(216 / 0.25), abs=1e-9)


def test_ssim_of_flat_images_is_the_luminance_term():
    c1 = 0.01**2
    for mu_x, mu_y in ((0.5, 0.5), (0.5, 0.6), (0.2, 0.9)):
        expect = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
        assert ssim(np.full((16, 16), mu_x), np.full((16, 16), mu_y)) == pytest.approx(expect, abs=1e-12)


def _naive_ssim(x, y, data_range=1.0, size=11, sigma=1.5):
    """Wang et al. 2004, one window position at a time (Gaussian weights, population statistics)."""
    t = np.arange(size) - (size - 1) / 2
    w = np.exp(-(t[:, None] ** 2 + t[None, :] ** 2) / (2 * sigma**2))
    w /= w.sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    vals = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            px, py = x[i : i + size, j : j + size], y[i : i + size, j : j + size]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            vals.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_the_per_window_definition_and_orders_noise_levels():
    rng = np.random.default_rng(0)
    ref = rng.random((20, 24, 3))
    noisy = np.clip(ref + 0.1 * rng.standard_normal(ref.shape), 0, 1)
    noisier = np.clip(ref + 0.3 * rng.standard_normal(ref.shape), 0, 1)
    expect = np.mean([_naive_ssim(noisy[..., c], ref[..., c]) for c in range(3)])
    assert ssim(noisy, ref) == pytest.approx(expect, abs=1e-10)
    assert ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    assert 1.0 > ssim(noisy, ref) > ssim(noisier, ref) > 0.0
    assert ssim(noisy * 255, ref * 255, data_range=255.0) == pytest.approx(ssim(noisy, ref), abs=1e-10)
    assert ssim(1.0 - ref, ref) < 0.0  # anti-correlated structure


def test_mismatched_or_too_small_images_are_refused():
    with pytest.raises(ValueError, match="shape"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="window"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
