"""Evaluation metrics as THFM reports them (numpy/scipy; run on host arrays, not in the step).

Normals: mean/median angular error (degrees) and % of pixels within 11.25/22.5/30 deg.
Depth: RMSE and AbsRel after a least-squares scale-and-shift alignment of the prediction
(in disparity space by default, as affine-invariant depth models predict disparity; the aligned
depth capped at the farthest ground truth, as MiDaS' evaluation caps it).
Masks (alpha mattes in [0, 1]): MSE, MAD, Grad and Conn (Rhemann et al. 2009, as in the
Deep Image Matting evaluation code and the video-matting benchmarks' re-implementation in
RobustVideoMatting's evaluate_lr.py: Grad on min-max normalised alphas with the first-order
Gaussian-derivative filter of sigma 1.4 normalised to unit L2 norm, replicated borders, summed
squared difference of the gradient magnitudes / 1000; Conn with threshold step 0.1, 4-connected
largest component, phi offsets below 0.15 ignored, summed / 1000) and dtSSD (Erofeev et al. 2015:
per frame sqrt(mean over pixels of the squared difference of the temporal derivatives), averaged
over frames).
Keypoints: MPJPE, PA-MPJPE (per-frame similarity Procrustes) and acceleration error (the HMR
papers' definition, as in VIBE's compute_error_accel: mean over joints and frames of the norm of
the difference of the second finite differences, frames next to an invisible one excluded).
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
    return {
        "mean": float(ang.mean()),
        "median": float(np.median(ang)),
        "within_11.25": float((ang < 11.25).mean() * 100),
        "within_22.5": float((ang < 22.5).mean() * 100),
        "within_30": float((ang < 30).mean() * 100),
    }


# ------------------------------------------------------------------ depth


def align_scale_shift(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Least-squares (s, b) minimising ||s * pred + b - gt||^2."""
    a = np.stack([pred, np.ones_like(pred)], axis=1)
    (s, b), *_ = np.linalg.lstsq(a, gt, rcond=None)
    return float(s), float(b)


def depth_errors(
    pred: np.ndarray,
    gt_depth: np.ndarray,
    valid: np.ndarray | None = None,
    space: str = "disparity",
    depth_cap: float | None = None,
) -> dict[str, float]:
    """RMSE (metres) and AbsRel of the aligned prediction against metric depth.

    space="disparity": pred is aligned to 1/gt and inverted; space="depth": aligned to gt. As in
    the MiDaS/DPT evaluation, the aligned disparity is floored at 1 / ``depth_cap`` before inverting
    (default cap: the farthest ground-truth depth), so a near-zero aligned disparity cannot turn
    into an arbitrarily far depth; in depth space only an explicit ``depth_cap`` clips.
    """
    v = (np.isfinite(gt_depth) & (gt_depth > 0)) if valid is None else valid
    p, g = pred[v].astype(np.float64), gt_depth[v].astype(np.float64)
    if space == "disparity":
        cap = float(depth_cap if depth_cap is not None else g.max())
        s, b = align_scale_shift(p, 1.0 / g)
        aligned = 1.0 / np.maximum(s * p + b, 1.0 / cap)
    else:
        s, b = align_scale_shift(p, g)
        aligned = s * p + b if depth_cap is None else np.clip(s * p + b, 1e-6, depth_cap)
    return {"rmse": float(np.sqrt(np.mean((aligned - g) ** 2))), "absrel": float(np.mean(np.abs(aligned - g) / g))}


# ------------------------------------------------------------------ mattes


def gauss_derivative_filter(sigma: float = 1.4, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) first-order Gaussian-derivative filters of the matting Grad metric: half size
    ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma epsilon))), each normalised to unit L2 norm."""
    half = int(np.ceil(sigma * np.sqrt(-2.0 * np.log(np.sqrt(2.0 * np.pi) * sigma * epsilon))))
    r = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(r**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))
    dg = -r * g / sigma**2
    fx = g[:, None] * dg[None, :]  # rows: gaussian, columns: its derivative
    fx /= np.sqrt((fx**2).sum())
    return fx, fx.T


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _gauss_gradient(img: np.ndarray, sigma: float) -> np.ndarray:
    fx, fy = gauss_derivative_filter(sigma)
    gx = ndimage.correlate(img, fx, mode="nearest")  # correlation with replicated borders, as cv2.filter2D
    gy = ndimage.correlate(img, fy, mode="nearest")
    return np.sqrt(gx**2 + gy**2)


def grad_error(pred: np.ndarray, gt: np.ndarray, sigma: float = 1.4) -> float:
    """Gradient error of one (H, W) alpha matte (see the module doc), in the usual unit (/1000)."""
    gp = _gauss_gradient(_minmax(np.asarray(pred, np.float64)), sigma)
    gg = _gauss_gradient(_minmax(np.asarray(gt, np.float64)), sigma)
    return float(np.sum((gp - gg) ** 2) / 1000.0)


def matte_errors(pred: np.ndarray, gt: np.ndarray, sigma: float = 1.4, step: float = 0.1) -> dict[str, float]:
    """Per-frame matte errors for (H, W) alphas in [0, 1], as in the matting benchmarks.

    MSE and MAD are means (the tables print them x 1e3); Grad and Conn are sums over pixels divided
    by 1000 (the usual reporting unit).
    """
    pred = pred.astype(np.float64)
    gt = gt.astype(np.float64)
    return {
        "mse": float(np.mean((pred - gt) ** 2)),
        "mad": float(np.mean(np.abs(pred - gt))),
        "grad": grad_error(pred, gt, sigma),
        "conn": connectivity_error(pred, gt, step) / 1000.0,
    }


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


def dtssd_frames(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T, H, W) mattes -> (T - 1,) per-frame dtSSD: sqrt(mean_p ((a_t - a_t-1)_pred - (a_t - a_t-1)_gt)^2)."""
    d = np.diff(pred.astype(np.float64), axis=0) - np.diff(gt.astype(np.float64), axis=0)
    return np.sqrt(np.mean(d**2, axis=(1, 2))) if len(d) else np.zeros((0,))


def dtssd(pred: np.ndarray, gt: np.ndarray, include_first: bool = False) -> float:
    """Temporal coherence of (T, H, W) mattes: the mean of :func:`dtssd_frames`. ``include_first``
    counts frame 0 as 0 in the mean, as RobustVideoMatting's evaluation script does."""
    f = dtssd_frames(pred, gt)
    if include_first:
        f = np.concatenate([[0.0], f])
    return float(f.mean()) if len(f) else 0.0


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


def acceleration_error(pred: np.ndarray, gt: np.ndarray, fps: float = 1.0, valid: np.ndarray | None = None) -> float:
    """(T, J, 3): mean over joints and frames of |a_pred - a_gt| with a = x[t-1] - 2 x[t] + x[t+1]
    (units per frame^2; x fps^2 for units / s^2). ``valid`` (T,) bool: a second difference is kept only
    when its three frames are valid (VIBE's compute_error_accel)."""
    acc = (np.diff(pred, n=2, axis=0) - np.diff(gt, n=2, axis=0)) * fps**2
    if not len(acc):
        return 0.0
    err = np.linalg.norm(acc, axis=-1)  # (T - 2, J)
    if valid is not None:
        v = np.asarray(valid, bool)
        keep = v[:-2] & v[1:-1] & v[2:]
        if not keep.any():
            return float("nan")
        err = err[keep]
    return float(err.mean())
