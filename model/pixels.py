"""Pixel-space ground truth of a dense record: a compact, self-describing blob codec, and the target.

Stage 2 supervises the decoded prediction against the ground truth *pixels* (not against the
VAE's reconstruction of the target latents), under a per-pixel validity mask. The shards therefore
carry, per dense record (see :mod:`model.tasks` for the encodings):

    target_pixels   the task's pixel ground truth at model resolution
                    - depth, human_depth: metric planar depth, float16 metres (T, H, W), 0 = none
                      (the per-clip normalised-disparity target is derived from it, so evaluation can
                      also report metres)
                    - every other dense task: the [-1, 1] target quantised to uint8 (T, H, W, 3),
                      ``q = round((x + 1) * 127.5)`` (step 1/127.5: 0.45 deg for normals, 1/255 of
                      a unit for mask, UV and canonical coordinates)
    pixel_valid     the validity mask (T, H, W) bool: pixels that carry ground truth

Each is stored in the record as a 1-D uint8 array holding one blob:

    b"THFMPX01" | uint32 header length | JSON header | zstd frame

The header holds dtype, shape and the filter. Before compression a horizontal delta filter (PNG's
"Sub": each value minus its left neighbour, modulo the integer width; float16 depth is filtered
on its bit pattern, which is monotonic in the value for non-negative numbers) turns smooth label
images into mostly small numbers, and the bytes are split into planes (byte shuffle) so zstd sees
runs; masks are bit-packed. Decoding inverts both exactly (lossless on the stored values).
The record's checksum covers the blob bytes like every other array (thfm_synth/shards/record.py).

Numpy + pyarrow's zstd codec only, so the trainer's input pipeline and the preprocessing workers
use the same code and the model layer needs nothing from ``thfm_synth``.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from model.tasks import DENSE_TASKS, DEPTH_TASKS

MAGIC = b"THFMPX01"
ZSTD_LEVEL = 3  # level 3 is zstd's default; higher levels cost write time for a few % on these images
EMPTY = np.zeros((0,), np.uint8)


def _codec():
    import pyarrow as pa

    return pa.Codec("zstd", compression_level=ZSTD_LEVEL)


def _sub_filter(a: np.ndarray, axis: int) -> np.ndarray:
    d = a.copy()
    idx = [slice(None)] * a.ndim
    idx[axis] = slice(1, None)
    prev = [slice(None)] * a.ndim
    prev[axis] = slice(None, -1)
    d[tuple(idx)] = a[tuple(idx)] - a[tuple(prev)]  # unsigned ints wrap: exact and invertible
    return d


def _unsub(d: np.ndarray, axis: int) -> np.ndarray:
    return np.cumsum(d, axis=axis, dtype=d.dtype)


def encode(a: np.ndarray) -> np.ndarray:
    """An array (uint8, uint16, float16 or bool) -> a 1-D uint8 blob (see the module doc)."""
    a = np.ascontiguousarray(a)
    header = {"dtype": a.dtype.str, "shape": list(a.shape)}
    if a.dtype == np.bool_:
        raw = np.packbits(a.reshape(-1)).tobytes()
        header["filter"] = "packbits"
    else:
        if a.dtype == np.float16:
            ints = a.astype("<f2").view("<u2")
        elif a.dtype in (np.uint8, np.dtype("<u2"), np.uint16):
            ints = a.astype(a.dtype.newbyteorder("<"))
        else:
            raise ValueError(f"pixel arrays must be uint8, uint16, float16 or bool, got {a.dtype}")
        axis = 2 if ints.ndim >= 3 else ints.ndim - 1  # along the image width of (T, H, W[, C])
        filtered = _sub_filter(ints, axis) if ints.size else ints
        planes = filtered.reshape(-1).view(np.uint8).reshape(-1, ints.dtype.itemsize).T  # byte shuffle
        raw = np.ascontiguousarray(planes).tobytes()
        header.update(filter="sub", axis=axis, itemsize=ints.dtype.itemsize)
    header["raw_bytes"] = len(raw)
    body = _codec().compress(raw, asbytes=True) if raw else b""
    head = json.dumps(header, sort_keys=True).encode()
    return np.frombuffer(MAGIC + struct.pack("<I", len(head)) + head + body, np.uint8).copy()


def decode(blob: np.ndarray | bytes) -> np.ndarray:
    """Inverse of :func:`encode` (ValueError on a damaged blob)."""
    data = blob.tobytes() if isinstance(blob, np.ndarray) else bytes(blob)
    if data[:8] != MAGIC:
        raise ValueError("not a pixel blob (bad magic)")
    (hlen,) = struct.unpack_from("<I", data, 8)
    header = json.loads(data[12 : 12 + hlen])
    body = data[12 + hlen :]
    raw = _codec().decompress(body, header["raw_bytes"], asbytes=True) if header["raw_bytes"] else b""
    shape = tuple(header["shape"])
    dtype = np.dtype(header["dtype"])
    if header["filter"] == "packbits":
        n = int(np.prod(shape, dtype=np.int64))
        return np.unpackbits(np.frombuffer(raw, np.uint8), count=n).astype(bool).reshape(shape)
    item = int(header["itemsize"])
    planes = np.frombuffer(raw, np.uint8).reshape(item, -1).T
    ints = np.ascontiguousarray(planes).view(f"<u{item}").reshape(shape)
    ints = _unsub(ints, int(header["axis"])) if ints.size else ints
    return ints.view("<f2").astype(dtype) if dtype.kind == "f" else ints.astype(dtype)


def quantise(target: np.ndarray) -> np.ndarray:
    """[-1, 1] float target -> uint8 (``round((x + 1) * 127.5)``)."""
    return np.round((np.clip(np.asarray(target, np.float32), -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def dequantise(q: np.ndarray) -> np.ndarray:
    return (np.asarray(q, np.float32) / 127.5 - 1.0).astype(np.float32)


def disparity_target(depth: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T, H, W) metres + validity -> (T, H, W, 3) in [-1, 1]: disparity normalised to [0, 1] by the
    clip's min/max over the valid pixels; invalid pixels hold disparity 0 (-1). See model.tasks."""
    depth = np.asarray(depth, np.float64)
    valid = np.asarray(valid, bool) & np.isfinite(depth) & (depth > 0)
    disp = np.zeros(depth.shape, np.float64)
    disp[valid] = 1.0 / depth[valid]
    lo, hi = (disp[valid].min(), disp[valid].max()) if valid.any() else (0.0, 1.0)
    norm = np.where(valid, (disp - lo) / max(hi - lo, 1e-12), 0.0)
    signed = (norm * 2.0 - 1.0).astype(np.float32)
    return np.repeat(signed[..., None], 3, axis=-1)


def encode_truth(task: str, pixels: np.ndarray, valid: np.ndarray) -> dict[str, np.ndarray]:
    """The two record arrays of a dense task: ``pixels`` is metric depth (T, H, W) for the depth tasks,
    else the [-1, 1] target (T, H, W, 3); ``valid`` (T, H, W)."""
    if task not in DENSE_TASKS:
        raise ValueError(f"{task} has no pixel ground truth (not a dense task)")
    valid = np.asarray(valid, bool)
    if task in DEPTH_TASKS:
        depth = np.where(valid & np.isfinite(pixels), np.asarray(pixels, np.float32), 0.0)
        stored = depth.astype(np.float16)
    else:
        stored = quantise(pixels)
    if stored.shape[:3] != valid.shape:
        raise ValueError(f"{task}: pixels {stored.shape} and validity {valid.shape} differ in (T, H, W)")
    return {"target_pixels": encode(stored), "pixel_valid": encode(valid)}


def decode_truth(task: str, target_pixels: np.ndarray, pixel_valid: np.ndarray) -> dict[str, np.ndarray]:
    """Record arrays -> ``{"target": (T, H, W, 3) float32 in [-1, 1], "valid": (T, H, W) bool}`` plus
    ``"depth"`` (T, H, W) float32 metres for the depth tasks. Empty arrays -> {} (no pixel truth)."""
    if np.asarray(target_pixels).size == 0:
        return {}
    stored, valid = decode(target_pixels), decode(pixel_valid)
    if task in DEPTH_TASKS:
        depth = stored.astype(np.float32)
        valid = valid & (depth > 0)
        return {"target": disparity_target(depth, valid), "valid": valid, "depth": depth}
    return {"target": dequantise(stored), "valid": valid}


__all__ = ["encode", "decode", "quantise", "dequantise", "disparity_target", "encode_truth", "decode_truth", "EMPTY"]
