"""Frame sources that read on demand: long benchmark sequences do not fit in memory at full size.

Both behave like a (N, H, W, 3) uint8 array for what the predictor needs: ``shape``, ``len`` and
indexing with an array of frame indices (``frames[idx]`` -> stacked frames). ``max_side`` shrinks
frames on read (keeping the aspect ratio): the 3D-keypoint benchmarks need no more than a couple
of times the model's resolution, and their metrics are in the camera frame, independent of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _shrink(img: np.ndarray, max_side: int | None) -> np.ndarray:
    if not max_side or max(img.shape[:2]) <= max_side:
        return img
    from PIL import Image

    h, w = img.shape[:2]
    s = max_side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR))


class ImageFrames:
    """A sequence of image files."""

    def __init__(self, paths: list[Path], max_side: int | None = None):
        from model.benchmarks.common import read_image

        self.paths = list(paths)
        self.max_side = max_side
        self._read = read_image
        first = self._load(0)
        self.shape = (len(self.paths), *first.shape)

    def _load(self, i: int) -> np.ndarray:
        return _shrink(self._read(self.paths[int(i)]), self.max_side)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(idx))
        return np.stack([self._load(i) for i in idx])


class VideoFrames:
    """Frames ``0, step, 2 step, ...`` (the first ``count``) of a video file, decoded once, forward
    (windows are requested in increasing order; earlier frames are dropped from the buffer)."""

    def __init__(self, path: Path, count: int, step: int = 1, max_side: int | None = None):
        import imageio_ffmpeg

        self.path, self.step, self.max_side = Path(path), int(step), max_side
        self._gen = imageio_ffmpeg.read_frames(str(self.path))
        meta = next(self._gen)
        self._size = tuple(meta["size"])  # (w, h)
        self._next_src = 0
        self._buf: dict[int, np.ndarray] = {}
        first = self._get(0)
        self.shape = (int(count), *first.shape)

    def _get(self, i: int) -> np.ndarray:
        if i in self._buf:
            return self._buf[i]
        want = i * self.step
        w, h = self._size
        while self._next_src <= want:
            raw = next(self._gen, None)
            if raw is None:
                raise ValueError(f"{self.path} ends after {self._next_src} frames, {want + 1} are needed")
            if self._next_src % self.step == 0:
                self._buf[self._next_src // self.step] = _shrink(
                    np.frombuffer(raw, np.uint8).reshape(h, w, 3), self.max_side
                )
            self._next_src += 1
        if i not in self._buf:
            raise ValueError(f"{self.path}: frame {want} was requested after later frames (read forward only)")
        return self._buf[i]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(idx))
        out = np.stack([self._get(int(i)) for i in idx])
        for k in [k for k in self._buf if k < int(idx.min())]:
            del self._buf[k]
        return out


__all__ = ["ImageFrames", "VideoFrames"]
