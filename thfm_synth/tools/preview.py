"""`thfm-synth preview VIDEO_DIR`: every modality side by side, as an MP4 and a PNG contact sheet.

Tiles (2 rows x 3): RGB with the SMPL-24 skeleton (joints green = visible, yellow = hidden
by the subject itself, red = hidden by the scene), depth (disparity, turbo colours,
normalised over the clip), normals (OpenCV camera frame shown as RGB = (x, -y, -z)/2 + 0.5),
soft mask, IUV (part colours shaded by U/V) and canonical coordinates (as RGB). Videos with the
optional modalities get a third row: forward flow (hue = direction, saturation = speed up to the
clip's 99th percentile; invalid vectors darkened), backward flow, and albedo (sRGB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from thfm_synth.render import outputs
from thfm_synth.render.imagefiles import write_png
from thfm_synth.render.video.annotations import read_annotations, read_video_metadata

SMPL24_BONES = (
    (0, 1),
    (0, 2),
    (0, 3),
    (1, 4),
    (2, 5),
    (3, 6),
    (4, 7),
    (5, 8),
    (6, 9),
    (7, 10),
    (8, 11),
    (9, 12),
    (12, 13),
    (12, 14),
    (12, 15),
    (13, 16),
    (14, 17),
    (16, 18),
    (17, 19),
    (18, 20),
    (19, 21),
    (20, 22),
    (21, 23),
)
VIS_COLOURS = np.array([[40, 220, 60], [0, 0, 0], [250, 210, 30], [230, 40, 40]], np.uint8)


def turbo(x: np.ndarray) -> np.ndarray:
    """Google's Turbo colour map (polynomial approximation), x in [0, 1] -> uint8 RGB."""
    x = np.clip(x, 0, 1)[..., None]
    r = 0.13572138 + x * (4.61539260 + x * (-42.66032258 + x * (132.13108234 + x * (-152.94239396 + x * 59.28637943))))
    g = 0.09140261 + x * (2.19418839 + x * (4.84296658 + x * (-14.18503333 + x * (4.27729857 + x * 2.82956604))))
    b = 0.10667330 + x * (12.64194608 + x * (-60.58204836 + x * (110.36276771 + x * (-89.90310912 + x * 27.34824973))))
    return (np.clip(np.concatenate([r, g, b], -1), 0, 1) * 255).astype(np.uint8)


def _part_palette() -> np.ndarray:
    hues = (np.arange(25) * 0.618034) % 1.0
    pal = np.stack([np.abs(hues * 6 - 3) - 1, 2 - np.abs(hues * 6 - 2), 2 - np.abs(hues * 6 - 4)], -1)
    pal = np.clip(pal, 0, 1) * 0.85 + 0.15
    pal[0] = 0
    return pal


PALETTE = _part_palette()


def _draw_line(img, a, b, colour):
    n = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
    xs = np.clip(np.round(np.linspace(a[0], b[0], n)).astype(int), 0, img.shape[1] - 1)
    ys = np.clip(np.round(np.linspace(a[1], b[1], n)).astype(int), 0, img.shape[0] - 1)
    img[ys, xs] = colour


def _draw_dot(img, p, colour, r):
    h, w = img.shape[:2]
    x0, x1 = max(int(p[0]) - r, 0), min(int(p[0]) + r + 1, w)
    y0, y1 = max(int(p[1]) - r, 0), min(int(p[1]) + r + 1, h)
    if x0 < x1 and y0 < y1:
        img[y0:y1, x0:x1] = colour


def flow_colours(flow: np.ndarray, valid: np.ndarray, scale: float) -> np.ndarray:
    """(H,W,2) pixel flow -> uint8 RGB: hue = direction, saturation = |flow| / scale; invalid at half value."""
    ang = (np.arctan2(-flow[..., 1], -flow[..., 0]) / (2 * np.pi) + 0.5) % 1.0
    sat = np.clip(np.linalg.norm(flow, axis=-1) / max(scale, 1e-6), 0, 1)
    k = (np.stack([5.0, 3.0, 1.0]) + ang[..., None] * 6) % 6
    rgb = 1 - sat[..., None] * np.clip(np.minimum(k, 4 - k), 0, 1)
    return (rgb * np.where(valid, 1.0, 0.5)[..., None] * 255).astype(np.uint8)


def tiles(
    fr: outputs.Frame, joints2d: np.ndarray, vis: np.ndarray, disp_range: tuple[float, float], flow_scale: float = 1.0
) -> np.ndarray:
    h, w = fr.rgb.shape[:2]
    rgb = fr.rgb.copy()
    r = max(1, w // 200)
    for a, b in SMPL24_BONES:
        if vis[a] != 1 and vis[b] != 1:
            _draw_line(rgb, joints2d[a], joints2d[b], (255, 255, 255))
    for p, v in zip(joints2d, vis):
        if v != 1:
            _draw_dot(rgb, p, VIS_COLOURS[v], r)
    valid = fr.depth > 0
    disp = np.where(valid, 1.0 / np.where(valid, fr.depth, 1.0), 0.0)
    lo, hi = disp_range
    depth = np.where(valid[..., None], turbo((disp - lo) / max(hi - lo, 1e-9)), 0).astype(np.uint8)
    n = fr.normal * np.array([1.0, -1.0, -1.0])
    normal = np.where((np.abs(fr.normal).sum(-1) > 0)[..., None], (n * 0.5 + 0.5) * 255, 0).astype(np.uint8)
    if fr.people is not None:  # several people: each person's coverage in its own colour
        mask = (np.clip(fr.people @ PALETTE[1 : fr.people.shape[-1] + 1], 0, 1) * 255).astype(np.uint8)
    else:
        mask = np.repeat((fr.mask * 255).astype(np.uint8)[..., None], 3, -1)
    shade = 0.55 + 0.45 * fr.part_uv.mean(-1, keepdims=True)
    iuv = (PALETTE[fr.part] * shade * 255).astype(np.uint8)
    canonical = (np.clip(fr.canonical, 0, 1) * 255).astype(np.uint8)
    top = np.concatenate([rgb, depth, normal], axis=1)
    bottom = np.concatenate([mask, iuv, canonical], axis=1)
    rows = [top, bottom]
    if fr.flow is not None or fr.albedo is not None:
        blank = np.zeros_like(rgb)
        fwd = flow_colours(fr.flow[..., :2], fr.flow_valid[..., 0], flow_scale) if fr.flow is not None else blank
        bwd = flow_colours(fr.flow[..., 2:], fr.flow_valid[..., 1], flow_scale) if fr.flow is not None else blank
        albedo = outputs.srgb_encode(fr.albedo) if fr.albedo is not None else blank
        rows.append(np.concatenate([fwd, bwd, albedo], axis=1))
    return np.concatenate(rows, axis=0)


def make_preview(
    video_dir: str | Path, out_mp4: str | Path | None = None, out_png: str | Path | None = None, sheet_frames: int = 4
) -> tuple[Path | None, Path]:
    video_dir = Path(video_dir)
    meta = read_video_metadata(video_dir)
    ann = read_annotations(video_dir / "annotations.npz")
    n = int(meta["stats"]["frames"])
    frames = [outputs.read_frame(video_dir, f) for f in range(n)]
    disp = np.concatenate([1.0 / fr.depth[fr.depth > 0] for fr in frames])
    rng = (float(disp.min()), float(disp.max())) if len(disp) else (0.0, 1.0)
    speeds = [np.linalg.norm(fr.flow[..., :2], axis=-1)[fr.flow_valid[..., 0]] for fr in frames if fr.flow is not None]
    speeds = np.concatenate(speeds) if speeds else np.zeros(0)
    scale = float(np.percentile(speeds, 99)) if len(speeds) else 1.0
    grids = [
        tiles(fr, ann["joints2d_smpl24"][f], ann["visibility_smpl24"][f], rng, scale) for f, fr in enumerate(frames)
    ]
    out_png = Path(out_png or video_dir / "preview.png")
    pick = np.unique(np.linspace(0, n - 1, min(sheet_frames, n)).round().astype(int))
    write_png(out_png, np.concatenate([grids[i] for i in pick], axis=0))
    out_mp4 = Path(out_mp4 or video_dir / "preview.mp4")
    try:
        import imageio_ffmpeg
    except ImportError:
        return None, out_png
    h, w = grids[0].shape[:2]
    writer = imageio_ffmpeg.write_frames(
        str(out_mp4),
        (w, h),
        fps=float(meta["spec"]["fps"]),
        codec="libx264",
        pix_fmt_out="yuv420p",
        macro_block_size=2,
        quality=8,
        output_params=["-loglevel", "error"],
    )
    writer.send(None)
    for g in grids:
        writer.send(np.ascontiguousarray(g))
    writer.close()
    return out_mp4, out_png
