"""Image quality against a reference: PSNR and SSIM (pure numpy), for the render quality benchmark.

Images are float arrays (H, W) or (H, W, C) on the same scale; `data_range` is the span of that
scale (1.0 for [0, 1] images, 255 for 8-bit). SSIM is Wang et al. 2004 with the usual constants
(K1 = 0.01, K2 = 0.03) and an 11x11 Gaussian window of sigma 1.5, over the window positions that
lie wholly inside the image ("valid"), averaged over positions and channels.
"""

from __future__ import annotations

import math

import numpy as np


def psnr(image: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio, dB (inf for identical images)."""
    a, b = _pair(image, reference)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


def _pair(image: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(image, np.float64)
    b = np.asarray(reference, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image {a.shape} and reference {b.shape} differ in shape")
    return a, b


def _gaussian(size: int, sigma: float) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable correlation of (H, W) `x` with `g` along both axes, valid positions only."""
    k = len(g)
    rows = np.lib.stride_tricks.sliding_window_view(x, k, axis=0) @ g
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g


def ssim(
    image: np.ndarray, reference: np.ndarray, data_range: float = 1.0, window: int = 11, sigma: float = 1.5
) -> float:
    """Mean structural similarity in [-1, 1] (1 for identical images)."""
    a, b = _pair(image, reference)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[:2]) < window:
        raise ValueError(f"images {a.shape[:2]} are smaller than the {window}x{window} SSIM window")
    g = _gaussian(window, sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    scores = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        mx, my = _filter_valid(x, g), _filter_valid(y, g)
        sxx = _filter_valid(x * x, g) - mx * mx
        syy = _filter_valid(y * y, g) - my * my
        sxy = _filter_valid(x * y, g) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        scores.append(float(s.mean()))
    return float(np.mean(scores))
