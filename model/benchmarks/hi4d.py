"""Surface normals on Hi4D: pairs 28, 32 and 37 seen from camera 4 (the protocol THFM cites).

Obtain: Hi4D (Yin et al., CVPR 2023) from yifeiyin04.github.io/Hi4D after accepting its licence
(no redistribution). Expected layout (the release unpacked as its dataset.md describes)::

    DATA/pair28/<action>/
        cameras/rgb_cameras.npz        ids (8,), intirnsics (8, 3, 3) [sic; "intrinsics" also read],
                                       extrinsics (8, 3, 4) world-to-camera, dist_coeffs (8, 5)
        images/4/000XXX.jpg            camera 4's frames (940 x 1280)
        seg/img_seg_mask/4/all/000XXX.png   the two people's mask
        frames/mesh-f00XXX.obj         the textured scan of frame XXX (metres, world frame)
    DATA/pair32/..., DATA/pair37/...

Ground truth: each frame's scan is rendered from camera 4 (model/benchmarks/mesh.py: z-buffer,
smooth vertex normals interpolated perspective-correctly, OpenCV camera frame, facing the
camera); the image and mask are undistorted with the camera's distortion coefficients first, so
image and rendering share one pinhole model. Pixels scored: the rendered surface inside the
people's mask. Metrics over all scored pixels of all frames: mean and median angular error
(degrees) and % of pixels within 11.25, 22.5 and 30 degrees (model.metrics.normal_errors'
definitions; the median from a 0.01-degree histogram). The prediction of the ``human_normals``
task (``normals`` for checkpoints without it) is normalised per pixel.

Every action folder of the three pairs is evaluated, each in clips of at most ``chunk`` frames
(default 81; normal errors are per pixel, so clip boundaries do not matter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.benchmarks.common import (
    REFERENCE_SOURCE,
    Benchmark,
    Column,
    LayoutError,
    Reference,
    Sample,
    image_files,
    read_gray,
    read_image,
)
from model.benchmarks.mesh import read_obj, render_depth_normals, undistort

PAIRS = ("pair28", "pair32", "pair37")
CAMERA = 4
BINS = 18000  # 0.01 degree histogram bins for the median
THRESHOLDS = (11.25, 22.5, 30.0)


def camera(npz: Path, cam: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K, [R|t] world-to-camera, distortion) of camera ``cam`` in Hi4D's rgb_cameras.npz."""
    with np.load(npz, allow_pickle=False) as z:
        ids = [int(i) for i in z["ids"]]
        if cam not in ids:
            raise ValueError(f"{npz}: no camera {cam} (ids {ids})")
        i = ids.index(cam)
        k = z["intirnsics"][i] if "intirnsics" in z.files else z["intrinsics"][i]
        return (
            np.asarray(k, np.float64),
            np.asarray(z["extrinsics"][i], np.float64)[:3, :4],
            np.asarray(z["dist_coeffs"][i], np.float64),
        )


def angle_stats(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict:
    """Sums, counts and a histogram of per-pixel angular errors (degrees) of one clip."""
    p = np.asarray(pred, np.float64)[valid]
    g = np.asarray(gt, np.float64)[valid]
    p /= np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-12)
    g /= np.maximum(np.linalg.norm(g, axis=-1, keepdims=True), 1e-12)
    ang = np.degrees(np.arccos(np.clip((p * g).sum(-1), -1.0, 1.0)))
    out = {
        "sum": float(ang.sum()),
        "n": float(len(ang)),
        "hist": np.histogram(ang, BINS, (0.0, 180.0))[0],
        "min": float(ang.min()) if len(ang) else 180.0,
        "max": float(ang.max()) if len(ang) else 0.0,
    }
    for t in THRESHOLDS:
        out[f"below_{t:g}"] = float((ang < t).sum())
    return out


def summarise(parts: list[dict]) -> dict[str, float]:
    n = sum(p["n"] for p in parts)
    if not n:
        return {}
    hist = np.sum([p["hist"] for p in parts], axis=0)
    cdf = np.cumsum(hist)
    k = int(np.searchsorted(cdf, n / 2.0))
    before = cdf[k - 1] if k else 0
    median = (k + (n / 2.0 - before) / max(hist[k], 1)) * 180.0 / BINS
    median = float(np.clip(median, min(p["min"] for p in parts), max(p["max"] for p in parts)))
    out = {"mean": sum(p["sum"] for p in parts) / n, "median": float(median)}
    for t in THRESHOLDS:
        out[f"within_{t:g}"] = 100.0 * sum(p[f"below_{t:g}"] for p in parts) / n
    return out


class Hi4DNormals(Benchmark):
    name = "hi4d"
    title = "Surface normal estimation on Hi4D (pairs 28, 32, 37; camera 4)"
    tasks = ("human_normals", "normals")
    columns = (
        Column("mean", "Mean"),
        Column("median", "Median"),
        Column("within_11.25", "11.25°", lower_is_better=False),
        Column("within_22.5", "22.5°", lower_is_better=False),
        Column("within_30", "30°", lower_is_better=False),
    )
    references = (Reference("THFM (paper)", {"all": {"mean": 11.01}}, "wizwand.com"),)
    notes = (REFERENCE_SOURCE, "angular errors in degrees over the people's pixels; % of pixels within a threshold")
    layout = (
        "DATA/pair28|pair32|pair37/<action>/{cameras/rgb_cameras.npz, images/4/000XXX.jpg, "
        "seg/img_seg_mask/4/all/000XXX.png, frames/mesh-f00XXX.obj} (Hi4D as released)"
    )

    def samples(self, root: Path, chunk: int = 81, pairs=PAIRS, camera_id: int = CAMERA, **options):
        self.unknown_options(options)
        root = Path(root)
        for pair in pairs:
            actions = sorted(p for p in self.require(root / pair).iterdir() if p.is_dir())
            if not actions:
                raise LayoutError(self.name, root / pair / "<action>", self.layout)
            for action in actions:
                k, rt, dist = camera(self.require(action / "cameras" / "rgb_cameras.npz"), camera_id)
                images = image_files(self.require(action / "images" / str(camera_id)))
                if not images:
                    raise LayoutError(self.name, action / "images" / str(camera_id) / "000000.jpg", self.layout)
                for s in range(0, len(images), chunk):
                    frames, normals, valid = [], [], []
                    for img in images[s : s + chunk]:
                        fid = int(img.stem)
                        mesh = self.require(action / "frames" / f"mesh-f{fid:05d}.obj")
                        mask_path = self.require(
                            action / "seg" / "img_seg_mask" / str(camera_id) / "all" / f"{img.stem}.png"
                        )
                        rgb = undistort(read_image(img), k, dist, order=1)
                        mask = undistort(read_gray(mask_path), k, dist, order=0) > 0.5
                        h, w = rgb.shape[:2]
                        v, f = read_obj(mesh)
                        depth, n = render_depth_normals(v, f, k, rt, h, w)
                        frames.append(rgb)
                        normals.append(n)
                        valid.append(mask & (depth > 0))
                    yield Sample(
                        key=f"{pair}/{action.name}/{images[s].stem}",
                        frames=np.stack(frames),
                        truth={"normals": np.stack(normals), "valid": np.stack(valid)},
                    )

    def score(self, sample: Sample, pred: np.ndarray) -> dict:
        return angle_stats(pred, sample.truth["normals"], sample.truth["valid"])

    def aggregate(self, scored):
        return {"all": summarise([m for _, m in scored])}


__all__ = ["Hi4DNormals", "angle_stats", "summarise", "camera"]
