"""Image files for the stored modalities: PNG and lossless WebP through Pillow, OpenEXR through `OpenEXR` 3.x.

EXR reading returns every channel of every part of a multi-part file (Blender 5 writes one
part per view layer and pass); writing makes single-part scanline files.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def write_png(path: str | os.PathLike, arr: np.ndarray, compress_level: int = 6) -> int:
    """Lossless PNG of an (H,W) uint8/uint16 or (H,W,3|4) uint8 array (Pillow); returns bytes written."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype == np.uint16 and arr.ndim != 2:
        raise TypeError("16-bit PNG is written for single-channel images only (Pillow)")
    if arr.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"PNG needs uint8 or uint16, got {arr.dtype}")
    img = Image.fromarray(arr)
    with open(path, "wb") as fh:
        img.save(fh, format="PNG", compress_level=compress_level)
    return os.path.getsize(path)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """Any image Pillow reads (PNG, WebP, ...) as a numpy array; 16-bit gray as uint16."""
    with Image.open(path) as img:
        arr = np.asarray(img)
    return arr.astype(np.uint16) if arr.dtype.kind in "iu" and arr.dtype.itemsize > 1 else arr


read_image = read_png

# Lossless WebP (VP8L): its spatial predictors and colour transforms make an 832x480 render
# 21-28% smaller than PNG level 6 on room and HDRI backgrounds (benchmarks/label_bytes.py prints the table). `method` and `quality` are
# only the encoder's effort in lossless mode (the pixels are the same at any setting); these keep
# the write time near PNG's level 6.
WEBP_METHOD = 2
WEBP_QUALITY = 50


def write_webp(path: str | os.PathLike, arr: np.ndarray, method: int = WEBP_METHOD, quality: int = WEBP_QUALITY) -> int:
    """Lossless WebP of an (H,W,3|4) uint8 array, bit-exact on read (`exact`: RGB kept under alpha 0)."""
    arr = np.ascontiguousarray(arr)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise TypeError(f"lossless WebP takes (H,W,3|4) uint8, got {arr.shape} {arr.dtype}")
    img = Image.fromarray(arr)
    with open(path, "wb") as fh:
        img.save(fh, format="WEBP", lossless=True, method=method, quality=quality, exact=True)
    return os.path.getsize(path)


# The stored RGB frame (`rgb/NNNNN.<RGB_EXT>`): the one place that chooses its file format.
RGB_EXT = "webp"


def write_rgb_frame(path: str | os.PathLike, rgb: np.ndarray) -> int:
    return write_webp(path, rgb)


# ---------------------------------------------------------------------------- OpenEXR
def _openexr():
    try:
        import OpenEXR
    except ImportError as exc:  # pragma: no cover - a dependency of the main environment
        raise ImportError("reading/writing EXR needs the `openexr` package (pip install openexr)") from exc
    return OpenEXR


def read_exr(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every channel of every part, keyed by its full name (e.g. Blender's `<layer>.<pass>.<channel>`)."""
    OpenEXR = _openexr()
    with OpenEXR.File(str(path), separate_channels=True) as f:
        return {name: ch.pixels for part in f.parts for name, ch in part.channels.items()}


EXR_COMPRESSION = ("NONE", "ZIP", "ZIPS", "PIZ", "PXR24", "RLE")  # lossless, except PXR24 (float32 -> 24 bit)


def write_exr(
    path: str | os.PathLike, channels: dict[str, np.ndarray], compression: str = "ZIP", header: dict | None = None
) -> int:
    """Write one single-part scanline EXR. float32 arrays stay FLOAT, float16 arrays are HALF."""
    OpenEXR = _openexr()
    comp = getattr(OpenEXR, f"{compression}_COMPRESSION")
    hdr = {"compression": comp, "type": OpenEXR.scanlineimage}
    hdr.update(header or {})
    chans = {}
    for name, arr in channels.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype not in (np.float16, np.float32, np.uint32):
            raise TypeError(f"EXR channel {name}: dtype {arr.dtype} (use float16, float32 or uint32)")
        chans[name] = OpenEXR.Channel(arr)
    with OpenEXR.File(hdr, chans) as f:
        f.write(str(path))
    return os.path.getsize(path)
