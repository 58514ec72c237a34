"""Evaluation metrics as THFM reports them (numpy/scipy; run on host arrays, not in the step).

Normals: mean/median angular error (degrees) and % of pixels within 11.25/22.5/30 deg.
Depth: RMSE and AbsRel after a least-squares scale-and-shift alignment of the prediction
(in disparity space by default, as affine-invariant depth models predict disparity).
Masks (alpha mattes in [0, 1]): MSE, MAD, Grad and Conn (Rhemann et al. 2009, as in the
Deep Image Matting evaluation code) and dtSSD (Erofeev et al. 2015, temporal coherence).
Keypoints: MPJPE, PA-MPJPE (per-frame similarity Procrustes) and acceleration error.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# ------------------------------------------------------------------ normals


def normal_errors(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> dict[str, float]:
    """pred, gt: (..., 3) unit-ish vectors. Returns degrees and percentages."""
    p = pred / np.linalg.norm(pred, axis=-1, keepdims=True)
    g = gt / np.linalg.norm(gt, axis=-1, keepdims=True)
    ang = np.degrees(np.arccos(np.clip((p * g).sum(-1), -1.0, 1.0)))
    ang = ang[valid] if valid is not None else ang.ravel()
    return {"mean": float(ang.mean()), "median": float(np.median(ang)),
            "within_11.25": float((ang < 11.25).mean() * 100), "within_22.5": float((ang < 22.5).mean() * 100),
            "within_30": float((ang < 30).mean() * 100)}


# ------------------------------------------------------------------ depth


def align_scale_shift(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Least-squares (s, b) minimising ||s * pred + b - gt||^2."""
    a = np.stack([pred, np.ones_like(pred)], axis=1)
    (s, b), *_ = np.linalg.lstsq(a, gt, rcond=None)
    return float(s), float(b)


def depth_errors(pred: np.ndarray, gt_depth: np.ndarray, valid: np.ndarray | None = None,
                 space: str = "disparity") -> dict[str, float]:
    """RMSE (metres) and AbsRel of the aligned prediction against metric depth.

    space="disparity": pred is aligned to 1/gt and inverted; space="depth": aligned to gt.
    """
    v = (np.isfinite(gt_depth) & (gt_depth > 0)) if valid is None else valid
    p, g = pred[v].astype(np.float64), gt_depth[v].astype(np.float64)
    if space == "disparity":
        s, b = align_scale_shift(p, 1.0 / g)
        aligned = 1.0 / np.clip(s * p + b, 1e-6, None)
    else:
        s, b = align_scale_shift(p, g)
        aligned = s * p + b
    return {"rmse": float(np.sqrt(np.mean((aligned - g) ** 2))), "absrel": float(np.mean(np.abs(aligned - g) / g))}


# ------------------------------------------------------------------ mattes


def _gauss_gradient(img: np.ndarray, sigma: float) -> np.ndarray:
    gx = ndimage.gaussian_filter(img, sigma, order=(0, 1))
    gy = ndimage.gaussian_filter(img, sigma, order=(1, 0))
    return np.sqrt(gx**2 + gy**2)


def matte_errors(pred: np.ndarray, gt: np.ndarray, sigma: float = 1.4, step: float = 0.1) -> dict[str, float]:
    """Per-frame matte errors for (H, W) alphas in [0, 1], summed as in the matting benchmarks.

    MSE and MAD are means; Grad and Conn are sums over pixels divided by 1000 (the usual
    reporting unit).
    """
    pred = pred.astype(np.float64)
    gt = gt.astype(np.float64)
    grad = np.sum((_gauss_gradient(pred, sigma) - _gauss_gradient(gt, sigma)) ** 2) / 1000.0
    return {"mse": float(np.mean((pred - gt) ** 2)), "mad": float(np.mean(np.abs(pred - gt))),
            "grad": float(grad), "conn": connectivity_error(pred, gt, step) / 1000.0}


def connectivity_error(pred: np.ndarray, gt: np.ndarray, step: float = 0.1) -> float:
    thresholds = np.arange(0.0, 1.0 + step, step)
    round_down = -np.ones_like(gt)
    for i in range(1, len(thresholds)):
        both = (gt >= thresholds[i]) & (pred >= thresholds[i])
        labels, n = ndimage.label(both)  # 4-connectivity
        if n:
            sizes = np.bincount(labels.ravel())[1:]
            omega = labels == (1 + int(np.argmax(sizes)))
        else:
            omega = np.zeros_like(both)
        flag = (round_down == -1) & ~omega
        round_down[flag] = thresholds[i - 1]
    round_down[round_down == -1] = 1.0
    gt_d, pred_d = gt - round_down, pred - round_down
    gt_phi = 1 - gt_d * (gt_d >= 0.15)
    pred_phi = 1 - pred_d * (pred_d >= 0.15)
    return float(np.sum(np.abs(gt_phi - pred_phi)))


def dtssd(pred: np.ndarray, gt: np.ndarray) -> float:
    """Temporal coherence of (T, H, W) mattes: mean over t of sqrt(sum_p (dα_pred - dα_gt)^2)."""
    d = np.diff(pred.astype(np.float64), axis=0) - np.diff(gt.astype(np.float64), axis=0)
    return float(np.mean(np.sqrt(np.sum(d**2, axis=(1, 2))))) if len(d) else 0.0


# ------------------------------------------------------------------ keypoints


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """(..., J, 3) -> mean Euclidean joint error (same unit as the input)."""
    return float(np.linalg.norm(pred - gt, axis=-1).mean())


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity transform (scale, rotation, translation) of pred (J, 3) that best fits gt."""
    mp, mg = pred.mean(0), gt.mean(0)
    p, g = pred - mp, gt - mg
    u, s, vt = np.linalg.svd(p.T @ g)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    rot = u @ fix @ vt
    scale = (s * np.diag(fix)).sum() / (p**2).sum()
    return scale * p @ rot + mg


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """(T, J, 3): MPJPE after per-frame Procrustes alignment."""
    pred = pred.reshape(-1, *pred.shape[-2:])
    gt = gt.reshape(-1, *gt.shape[-2:])
    return float(np.mean([mpjpe(procrustes_align(p, g), g) for p, g in zip(pred, gt)]))


def acceleration_error(pred: np.ndarray, gt: np.ndarray, fps: float = 1.0) -> float:
    """(T, J, 3): mean norm of the difference of second finite differences (unit / s^2 with fps)."""
    acc = (np.diff(pred, n=2, axis=0) - np.diff(gt, n=2, axis=0)) * fps**2
    return float(np.linalg.norm(acc, axis=-1).mean()) if len(acc) else 0.0
