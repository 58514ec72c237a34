"""Depth on Goliath, the selection DAViD evaluates on: 4 subjects, 12 cameras, 16 frames, with face,
upper-body and full-body crops; RMSE and AbsRel after the standard scale-and-shift alignment.

Obtain: Goliath (Martinez et al., Codec Avatar Studio, 2024) is gated: request access as its
repository (facebookresearch/goliath) says; no redistribution. Expected layout: the body captures
as downloaded (one folder per capture, its name containing "Body", as the Goliath data loader
expects)::

    DATA/<capture with "Body" in its name>/
        camera_calibration.json          {"KRT": [{"cameraId", "K" (3x3, transposed), "T" (4x4 world-to-camera,
                                         transposed)}, ...]}
        image/cam<ID>.zip                cam<ID>/<FFFFFF>.avif (images at the calibration's resolution / ds)
        segmentation_fgbg/cam<ID>.zip    cam<ID>/<FFFFFF>.png (foreground mask)
        scan_mesh/scan_mesh.zip          <FFFFFF>.ply (the frame's scan, world frame)
        frame_splits_list.csv            frame,split (the test frames are used)
    DATA/david_selection.json            optional: {"<capture>": {"cameras": [...], "frames": [...]}}

Selection: DAViD's list of cameras and frames is not published in the sources available to us,
so without ``david_selection.json`` each capture contributes 12 cameras evenly spaced over its
sorted camera ids (those with images) and 16 frames evenly spaced over its test frames that have
a scan - deterministic, same counts as DAViD. Put DAViD's list in david_selection.json to
reproduce it exactly.

Ground truth: the scan is rendered with the camera (model/benchmarks/mesh.py), planar depth in
metres (Goliath's scans and calibration are in millimetres: a scan whose extent exceeds 50 units
is scaled by 1e-3); image downsampling ``ds`` (Goliath ships images at half the
calibration's resolution) is detected from the principal point and K scaled like Goliath's loader
(f / ds, (c + 0.5) / ds - 0.5). Scored pixels: rendered surface inside the foreground mask.

Crops (from the mask's bounding box, each clipped to the image): full body = the box grown by 10%
on every side; upper body = the top 50% of the box, grown by 10%; face = the top 15% of the box,
its width the mask's extent in that band, grown by 30%. Each crop is one image for the model.

Metric per crop image: the prediction's normalised disparity (``human_depth``, else ``depth``) is
aligned to the ground-truth disparity 1/z by least squares (scale + shift over the scored pixels),
inverted to depth, and RMSE (metres) and AbsRel (mean |d - d*| / d*) are taken; averaged over the
images of each crop type.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from model import metrics as M
from model.benchmarks.common import REFERENCE_SOURCE, Benchmark, Column, LayoutError, Reference, Sample
from model.benchmarks.mesh import read_ply, render_depth_normals

CROPS = ("face", "upper", "full")
NUM_CAMERAS, NUM_FRAMES = 12, 16


def read_zip_member(path: Path, member: str, benchmark: str, layout: str) -> bytes:
    if not path.is_file():
        raise LayoutError(benchmark, path, layout)
    with zipfile.ZipFile(path) as z:
        try:
            return z.read(member)
        except KeyError:
            raise LayoutError(benchmark, f"{path}:{member}", layout) from None


def decode_image(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def decode_mask(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., 0]
    return a > (127 if a.dtype == np.uint8 and a.max() > 1 else 0)


def crop_boxes(mask: np.ndarray) -> dict[str, tuple[int, int, int, int]]:
    """Face / upper / full-body boxes (y0, y1, x0, x1) from a person mask (see the module doc)."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return {}
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    bh = y1 - y0

    def grow(a0, a1, b0, b1, f):
        dy, dx = (a1 - a0) * f, (b1 - b0) * f
        return (
            int(max(0, np.floor(a0 - dy))),
            int(min(h, np.ceil(a1 + dy))),
            int(max(0, np.floor(b0 - dx))),
            int(min(w, np.ceil(b1 + dx))),
        )

    boxes = {"full": grow(y0, y1, x0, x1, 0.10), "upper": grow(y0, y0 + 0.5 * bh, x0, x1, 0.10)}
    band = mask[y0 : int(np.ceil(y0 + 0.15 * bh))]
    cols = np.nonzero(band.any(0))[0]
    fx0, fx1 = (cols.min(), cols.max() + 1) if len(cols) else (x0, x1)
    boxes["face"] = grow(y0, y0 + 0.15 * bh, fx0, fx1, 0.30)
    return boxes


def calibration(capture: Path, benchmark: str, layout: str) -> dict[str, dict]:
    path = capture / "camera_calibration.json"
    if not path.is_file():
        raise LayoutError(benchmark, path, layout)
    return {str(c["cameraId"]): c for c in json.loads(path.read_text())["KRT"]}


def scaled_k(krt: dict, width: int) -> tuple[np.ndarray, int]:
    """Goliath's K (transposed in the JSON) for images ``ds`` times smaller than the calibration."""
    k = np.asarray(krt["K"], np.float64).T.copy()
    ds = max(1, int(round(2.0 * k[0, 2] / width)))
    k[:2, :2] /= ds
    k[:2, 2] = (k[:2, 2] + 0.5) / ds - 0.5
    return k, ds


class GoliathDepth(Benchmark):
    name = "goliath"
    title = "Depth estimation on Goliath (DAViD selection: 4 subjects, 12 cameras, 16 frames)"
    tasks = ("human_depth", "depth")
    groups = CROPS
    group_titles = {"face": "Face", "upper": "UpperBody", "full": "FullBody"}
    columns = (Column("rmse", "RMSE", 1.0, "{:.3f}"), Column("absrel", "AbsRel", 1.0, "{:.3f}"))
    references = (
        Reference(
            "THFM (paper)", {"face": {"rmse": 0.021}, "upper": {"rmse": 0.028}, "full": {"rmse": 0.037}}, "wizwand.com"
        ),
    )
    notes = (REFERENCE_SOURCE, "RMSE in metres, AbsRel, after least-squares scale and shift in disparity")
    layout = (
        "DATA/<capture with 'Body' in its name>/{camera_calibration.json, image/cam<ID>.zip, "
        "segmentation_fgbg/cam<ID>.zip, scan_mesh/scan_mesh.zip, frame_splits_list.csv} (Goliath as downloaded)"
    )

    def captures(self, root: Path) -> list[Path]:
        caps = sorted(p for p in root.iterdir() if p.is_dir() and "Body" in p.name)
        if not caps:
            raise LayoutError(self.name, root / "<capture>--Body", self.layout)
        return caps

    def selection(self, root: Path, capture: Path, calib: dict) -> tuple[list[str], list[int]]:
        chosen = {}
        sel = root / "david_selection.json"
        if sel.is_file():
            chosen = json.loads(sel.read_text()).get(capture.name, {})
        cams = sorted((c for c in calib if (capture / "image" / f"cam{c}.zip").is_file()), key=lambda c: (len(c), c))
        if not cams:
            raise LayoutError(self.name, capture / "image" / f"cam{next(iter(calib), 'ID')}.zip", self.layout)
        splits = capture / "frame_splits_list.csv"
        if not splits.is_file():
            raise LayoutError(self.name, splits, self.layout)
        with open(splits) as fh:
            test = sorted(int(r["frame"]) for r in csv.DictReader(fh) if r.get("split") == "test")
        scan_zip = capture / "scan_mesh" / "scan_mesh.zip"
        if not scan_zip.is_file():
            raise LayoutError(self.name, scan_zip, self.layout)
        with zipfile.ZipFile(scan_zip) as z:
            have = {int(Path(n).stem) for n in z.namelist() if n.endswith(".ply")}
        frames = [f for f in test if f in have]
        if not frames:
            raise LayoutError(self.name, f"{scan_zip}:<test frame>.ply", self.layout)
        pick = lambda xs, n: [  # noqa: E731
            xs[i]
            for i in np.unique(
                np.linspace(0, len(xs) - 1, min(n, len(xs)))
                .round()  # noqa
                .astype(int)
            )
        ]
        return (
            [str(c) for c in chosen.get("cameras", pick(cams, NUM_CAMERAS))],
            [int(f) for f in chosen.get("frames", pick(frames, NUM_FRAMES))],
        )

    def samples(self, root: Path, **options):
        self.unknown_options(options)
        root = Path(root)
        for cap in self.captures(root):
            calib = calibration(cap, self.name, self.layout)
            cams, frames = self.selection(root, cap, calib)
            for frame in frames:
                v, f = read_ply(
                    read_zip_member(cap / "scan_mesh" / "scan_mesh.zip", f"{frame:06d}.ply", self.name, self.layout)
                )
                # a person's scan spans ~2 units in metres, ~2000 in millimetres (Goliath's unit)
                scale = 1e-3 if np.linalg.norm(np.ptp(v, axis=0)) > 50 else 1.0
                for cam in cams:
                    if cam not in calib:
                        raise LayoutError(self.name, f"camera {cam} in {cap / 'camera_calibration.json'}", self.layout)
                    img = decode_image(
                        read_zip_member(
                            cap / "image" / f"cam{cam}.zip", f"cam{cam}/{frame:06d}.avif", self.name, self.layout
                        )
                    )
                    mask = decode_mask(
                        read_zip_member(
                            cap / "segmentation_fgbg" / f"cam{cam}.zip",
                            f"cam{cam}/{frame:06d}.png",
                            self.name,
                            self.layout,
                        )
                    )
                    h, w = img.shape[:2]
                    k, _ = scaled_k(calib[cam], w)
                    rt = np.asarray(calib[cam]["T"], np.float64).T[:3, :4]
                    depth, _ = render_depth_normals(v, f, k, rt, h, w, scale=scale)
                    valid = mask & (depth > 0)
                    for crop, (y0, y1, x0, x1) in crop_boxes(mask).items():
                        yield Sample(
                            key=f"{cap.name}/cam{cam}/{frame:06d}/{crop}",
                            frames=img[None, y0:y1, x0:x1],
                            truth={"depth": depth[y0:y1, x0:x1], "valid": valid[y0:y1, x0:x1]},
                            group=crop,
                        )

    def score(self, sample: Sample, pred: np.ndarray) -> dict:
        disp = np.clip((np.asarray(pred, np.float64)[0].mean(-1) + 1.0) / 2.0, 0.0, 1.0)
        valid = sample.truth["valid"]
        if valid.sum() < 2:
            return {}
        return M.depth_errors(disp, sample.truth["depth"], valid, space="disparity")


__all__ = ["GoliathDepth", "crop_boxes", "scaled_k", "CROPS"]
