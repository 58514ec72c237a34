"""Soft segmentation (alpha matting) on VideoMatte, PhotoMatte85 and PPM-100.

THFM's ``mask`` task predicts the person's soft coverage; the alpha is the channel mean of the
prediction mapped from [-1, 1] to [0, 1], quantised to 8 bits as a saved PNG matte would be.
Metrics (model/metrics.py, the matting benchmarks' definitions): MAD and MSE (printed x 1e3), Grad
and Conn (sums / 1e3; Grad on min-max normalised mattes with the sigma 1.4 Gaussian-derivative
filter), and for video dtSSD (printed x 1e2), exactly as RobustVideoMatting's evaluation script
(evaluate_lr.py) computes them: per frame, averaged over all frames of all clips, dtSSD of the first
frame of a clip counted as 0.

videomatte - VideoMatte240K test clips composited on static backgrounds
-----------------------------------------------------------------------
Obtain: VideoMatte240K (Lin et al., BackgroundMattingV2) is distributed by its authors for
research use; the evaluation clips are made from its test split with RobustVideoMatting's
``evaluation/generate_videomatte_with_background_image.py`` (25 clips of 100 frames, 512x288 or
1920x1080, seed 10). Expected layout (what that script writes, under RVM's folder name)::

    DATA/                                   videomatte_512x288 (or videomatte_1920x1080), or the
      videomatte_static/                    videomatte_static folder itself
        0000/
          com/0000.png ...                  the composite: the model's input
          pha/0000.png ...                  the ground-truth alpha (8-bit)
          fgr/, bgr/                        (not used)
        0001/ ...

photomatte85 - PhotoMatte85
---------------------------
Obtain: PhotoMatte85 is released with BackgroundMattingV2 (85 studio portraits, RGBA PNG:
foreground colour + alpha). Expected layout::

    DATA/
      *.png  (or rgba_image/*.png)          RGBA portraits
      background/*.jpg|png                  optional: backgrounds, the i-th image is composited on the
                                            i-th background (sorted; cycled), scaled to cover, centred

Without ``background/`` each portrait is composited on a fixed, documented background (a smooth
two-colour gradient, identical for every run), ``uint8(fgr * a + bgr * (1 - a))`` as RVM does.

ppm100 - PPM-100
----------------
Obtain: PPM-100 (Photographic Portrait Matting, MODNet authors) from the MODNet repository's
download link (research use). Expected layout (as released)::

    DATA/
      image/<name>.jpg                      100 portraits
      matte/<name>.png                      the alpha mattes (same stem)

Images are single frames: each is a one-frame clip for the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import metrics as M
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

COLUMNS = (Column("mad", "MAD", 1e3), Column("mse", "MSE", 1e3), Column("grad", "Grad"), Column("conn", "Conn"))
VIDEO_COLUMNS = COLUMNS + (Column("dtssd", "dtSSD", 1e2),)


def predicted_alpha(pred: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) in [-1, 1] -> (T, H, W) alpha in [0, 1] on the 8-bit grid (as a saved matte)."""
    a = np.clip((np.asarray(pred, np.float64).mean(-1) + 1.0) / 2.0, 0.0, 1.0)
    return np.round(a * 255.0) / 255.0


def frame_metrics(pred_alpha: np.ndarray, gt_alpha: np.ndarray) -> list[dict[str, float]]:
    return [M.matte_errors(p, g) for p, g in zip(pred_alpha, gt_alpha)]


class _ImageMatting(Benchmark):
    tasks = ("mask",)
    columns = COLUMNS

    def score(self, sample: Sample, pred: np.ndarray) -> dict[str, float]:
        alpha = predicted_alpha(pred)
        return frame_metrics(
            alpha, sample.truth["alpha"][None] if sample.truth["alpha"].ndim == 2 else sample.truth["alpha"]
        )[0]


class VideoMatte(Benchmark):
    name = "videomatte"
    title = "Soft foreground segmentation on VideoMatte (static-background composites; RVM protocol)"
    tasks = ("mask",)
    columns = VIDEO_COLUMNS
    layout = "DATA/videomatte_static/<clip>/{com,pha}/<frame>.png (RVM's generated VideoMatte240K test clips)"
    notes = (REFERENCE_SOURCE, "MAD, MSE x1e3; Grad, Conn /1e3; dtSSD x1e2 (RobustVideoMatting's evaluation)")

    def clips(self, root: Path) -> list[Path]:
        base = root / "videomatte_static" if (root / "videomatte_static").is_dir() else root
        clips = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        if not clips:
            raise LayoutError(self.name, root / "videomatte_static" / "0000", self.layout)
        return clips

    def samples(self, root: Path, **options):
        self.unknown_options(options)
        for clip in self.clips(Path(root)):
            com, pha = self.require(clip / "com"), self.require(clip / "pha")
            frames = image_files(com)
            if not frames:
                raise LayoutError(self.name, com / "0000.png", self.layout)
            alphas = []
            for f in frames:
                gt = next((p for p in image_files(pha) if p.stem == f.stem), None)
                if gt is None:
                    raise LayoutError(self.name, pha / f"{f.stem}.png", self.layout)
                alphas.append(read_gray(gt))
            yield Sample(
                key=clip.name,
                frames=np.stack([read_image(f) for f in frames]),
                truth={"alpha": np.stack(alphas)},
                fps=30.0,
            )

    def score(self, sample: Sample, pred: np.ndarray) -> dict[str, float]:
        alpha, gt = predicted_alpha(pred), sample.truth["alpha"].astype(np.float64)
        per = frame_metrics(alpha, gt)
        out = {k: float(np.mean([f[k] for f in per])) for k in per[0]}
        out["dtssd"] = M.dtssd(alpha, gt, include_first=True)
        out["frames"] = float(len(per))
        return out

    def aggregate(self, scored):
        # RVM averages over all frames of all clips: weight each clip by its frame count
        n = np.array([m["frames"] for _, m in scored])
        out = {
            k: float(np.sum([m[k] * w for (_, m), w in zip(scored, n)]) / n.sum())
            for k in ("mad", "mse", "grad", "conn", "dtssd")
        }
        return {"all": out}


def default_background(height: int, width: int) -> np.ndarray:
    """The fixed background of PhotoMatte85 composites without background/: a vertical gradient from a
    warm grey-blue (top) to a darker olive (bottom) - smooth, neither black nor white, not skin-toned."""
    top, bottom = np.array([150.0, 160.0, 175.0]), np.array([90.0, 95.0, 70.0])
    t = np.linspace(0.0, 1.0, height)[:, None, None]
    return np.broadcast_to(top * (1 - t) + bottom * t, (height, width, 3)).astype(np.float64)


def cover(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale an (h, w, 3) image to cover (height, width) and centre-crop it."""
    from PIL import Image

    h, w = img.shape[:2]
    s = max(height / h, width / w)
    nh, nw = max(height, round(h * s)), max(width, round(w * s))
    big = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    y, x = (nh - height) // 2, (nw - width) // 2
    return big[y : y + height, x : x + width]


def composite(fgr: np.ndarray, alpha: np.ndarray, bgr: np.ndarray) -> np.ndarray:
    return (fgr.astype(np.float64) * alpha[..., None] + bgr.astype(np.float64) * (1 - alpha[..., None])).astype(
        np.uint8
    )


class PhotoMatte85(_ImageMatting):
    name = "photomatte85"
    title = "Soft foreground segmentation on PhotoMatte85"
    layout = "DATA/*.png (or DATA/rgba_image/*.png): RGBA portraits; optional DATA/background/*"
    references = (Reference("THFM (paper)", {"all": {"mse": 0.90}}, "wizwand.com"),)
    notes = (REFERENCE_SOURCE, "MAD, MSE x1e3; Grad, Conn /1e3")

    def samples(self, root: Path, **options):
        from PIL import Image

        self.unknown_options(options)
        root = Path(root)
        base = root / "rgba_image" if (root / "rgba_image").is_dir() else root
        files = [p for p in image_files(base) if p.suffix.lower() == ".png"]
        if not files:
            raise LayoutError(self.name, base / "<name>.png", self.layout)
        backgrounds = image_files(root / "background")
        for i, f in enumerate(files):
            with Image.open(f) as im:
                if im.mode not in ("RGBA", "LA"):
                    raise LayoutError(self.name, f"an alpha channel in {f}", self.layout)
                rgba = np.asarray(im.convert("RGBA"))
            alpha = rgba[..., 3].astype(np.float64) / 255.0
            h, w = alpha.shape
            bgr = (
                cover(read_image(backgrounds[i % len(backgrounds)]), h, w) if backgrounds else default_background(h, w)
            )
            yield Sample(key=f.stem, frames=composite(rgba[..., :3], alpha, bgr)[None], truth={"alpha": alpha})


class PPM100(_ImageMatting):
    name = "ppm100"
    title = "Soft foreground segmentation on PPM-100"
    layout = "DATA/image/<name>.jpg and DATA/matte/<name>.png (PPM-100 as released)"
    notes = (REFERENCE_SOURCE, "MAD, MSE x1e3; Grad, Conn /1e3")

    def samples(self, root: Path, **options):
        self.unknown_options(options)
        root = Path(root)
        images = image_files(self.require(root / "image"))
        if not images:
            raise LayoutError(self.name, root / "image" / "<name>.jpg", self.layout)
        mattes = {p.stem: p for p in image_files(self.require(root / "matte"))}
        for f in images:
            if f.stem not in mattes:
                raise LayoutError(self.name, root / "matte" / f"{f.stem}.png", self.layout)
            img, alpha = read_image(f), read_gray(mattes[f.stem]).astype(np.float64)
            if alpha.shape != img.shape[:2]:
                raise ValueError(
                    f"{self.name}: {mattes[f.stem]} is {alpha.shape[1]}x{alpha.shape[0]}, its image "
                    f"{f} is {img.shape[1]}x{img.shape[0]}"
                )
            yield Sample(key=f.stem, frames=img[None], truth={"alpha": alpha})


__all__ = ["VideoMatte", "PhotoMatte85", "PPM100", "predicted_alpha", "default_background", "composite"]
