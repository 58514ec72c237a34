"""The stored label file format (`.tlz`): quantised integer planes, 2-D predicted, zstd-compressed.

Used by both the writer (`outputs.write_frame`) and every reader (`outputs.read_frame` and the
`read_*` functions), so the precision stated here is the precision of the dataset:

    depth      uint32 planar depth in steps of 2^-13 m (0.12 mm): error <= 2^-14 m = 0.061 mm at any
               depth up to 524 km (float32's own rounding adds < 2^-24 relative); 0 = no surface
    normal     octahedral encoding (Cigolle et al. 2014), 2 x uint16, each axis quantised to 2^13 - 1
               levels: angular error <= 0.03 deg for every unit vector; 0 = no surface
    part_uv    2 x uint16 fixed point, 12 bits: U, V = q / 4095, error <= 1 / 8190 (1.2e-4)
    canonical  3 x uint16 fixed point, 12 bits, the same bound
    part       uint8 body part 0..24: exact

(12-bit U, V and canonical coordinates are no coarser than the half floats of format 1, whose
step is 2^-11 in [0.5, 1); 13-bit normals match half floats' 0.03 deg.)

File layout, little-endian: 8 bytes magic `THFMLBL\\n`, uint32 n, n bytes of JSON header
(`format`, `kind`, `shape` [H, W], `channels` [{name, dtype}], the kind's quantisation, e.g.
`step_m` or `levels`), then one zstd frame holding, channel after channel, the zigzagged residuals of
the gradient predictor (left + up - up-left, zero outside the image; modulo the channel's width)
as byte planes, low byte first. The predictor's inverse is a cumulative sum down the rows then
along them, so decoding is a few numpy passes. Bytes per frame are measured in
`benchmarks/label_bytes.py`.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np

from thfm_synth.errors import UserError

MAGIC = b"THFMLBL\n"
FORMAT = 2  # format 1: the EXR label files before (still read by outputs.py)
EXT = "tlz"
ZSTD_LEVEL = 10  # 3: ~5% larger; 19: ~5% smaller at ~10x the time
# Depth (a uint32 plane: 4 byte planes after the predictor) gains most from a deeper search: level 16
# is 8-21% smaller than 10 on rendered 832x480 frames (21% on a room) for 0.05-0.08 s more CPU per
# frame (the other labels gain 3-9%); benchmarks/label_bytes.py prints the table. The reader does not depend on the level.
DEPTH_ZSTD_LEVEL = 16

DEPTH_STEP_M = 2.0**-13
NORMAL_BITS = 13
UNIT_BITS = 12
_UNSIGNED = {"uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32}
_SIGNED = {"uint8": np.int8, "uint16": np.int16, "uint32": np.int32}


# ------------------------------------------------------------------ quantisers (pure numpy)
def depth_encode(z: np.ndarray, step: float = DEPTH_STEP_M) -> np.ndarray:
    """Metres (0 = no surface) -> uint32 steps; a surface nearer than one step is kept as 1 step."""
    z = np.asarray(z, np.float64)
    q = np.clip(np.floor(z / step + 0.5), 1, 2**32 - 1)
    return np.where(z > 0, q, 0).astype(np.uint32)


def depth_decode(q: np.ndarray, step: float = DEPTH_STEP_M) -> np.ndarray:
    return (q.astype(np.float64) * step).astype(np.float32)


def oct_encode(n: np.ndarray, bits: int = NORMAL_BITS) -> np.ndarray:
    """(..., 3) unit vectors -> (..., 2) uint16 in 1..2^bits - 1 (0 where the vector is ~0: no surface)."""
    n = np.asarray(n, np.float64)
    l1 = np.abs(n).sum(-1, keepdims=True)
    p = n / np.where(l1 > 0, l1, 1.0)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    sx, sy = np.where(x >= 0, 1.0, -1.0), np.where(y >= 0, 1.0, -1.0)
    u = np.where(z < 0, (1 - np.abs(y)) * sx, x)  # the lower hemisphere folds over the diagonals
    v = np.where(z < 0, (1 - np.abs(x)) * sy, y)
    m = 2**bits - 2  # even, so 0 (the equator's axes) is a level
    q = np.floor((np.stack([u, v], -1) + 1) * (m / 2) + 0.5) + 1
    return np.where(l1 > 0.5, q, 0).astype(np.uint16)


def oct_decode(q: np.ndarray, bits: int = NORMAL_BITS) -> np.ndarray:
    """(..., 2) uint16 -> (..., 3) float32 unit vectors, (0, 0, 0) where q is 0."""
    m = 2**bits - 2
    uv = (q.astype(np.float32) - np.float32(m // 2 + 1)) / np.float32(m // 2)  # exact at 0 and +-1; float32: ~1e-7 rad
    u, v = uv[..., 0], uv[..., 1]
    z = 1 - np.abs(u) - np.abs(v)
    t = np.maximum(-z, 0)
    n = np.stack([u - np.copysign(t, u), v - np.copysign(t, v), z], -1)
    n *= 1 / np.sqrt(np.einsum("...i,...i->...", n, n))[..., None]
    n[q[..., 0] == 0] = 0
    return n


def unit_encode(x: np.ndarray, bits: int = UNIT_BITS) -> np.ndarray:
    """Values in [0, 1] -> uint16 fixed point q = round(x * (2^bits - 1))."""
    return np.floor(np.clip(np.asarray(x, np.float64), 0, 1) * (2**bits - 1) + 0.5).astype(np.uint16)


def unit_decode(q: np.ndarray, bits: int = UNIT_BITS) -> np.ndarray:
    return (q.astype(np.float64) / (2**bits - 1)).astype(np.float32)


# ------------------------------------------------------------------ planes <-> bytes
def _residual(a: np.ndarray) -> np.ndarray:
    """Gradient-predictor residual modulo the dtype's width, zigzagged to small unsigned numbers."""
    d = np.diff(a, axis=0, prepend=np.zeros((1, a.shape[1]), a.dtype))
    d = np.diff(d, axis=1, prepend=np.zeros((a.shape[0], 1), a.dtype))
    s = d.view(_SIGNED[a.dtype.name])
    bits = 8 * a.dtype.itemsize
    return ((s << 1) ^ (s >> (bits - 1))).view(a.dtype)


def _unresidual(z: np.ndarray) -> np.ndarray:
    s = (z >> 1).view(_SIGNED[z.dtype.name]) ^ -(z & 1).view(_SIGNED[z.dtype.name])
    d = s.view(z.dtype)
    return np.cumsum(np.cumsum(d, axis=0, dtype=z.dtype), axis=1, dtype=z.dtype)


def _planes(z: np.ndarray) -> bytes:
    b = z.astype(z.dtype.newbyteorder("<"), copy=False).view(np.uint8).reshape(z.shape + (z.dtype.itemsize,))
    return np.ascontiguousarray(np.moveaxis(b, -1, 0)).tobytes()


def _from_planes(buf: memoryview, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    size = dtype.itemsize
    b = np.frombuffer(buf, np.uint8).reshape((size,) + shape)
    return np.ascontiguousarray(np.moveaxis(b, 0, -1)).view(dtype.newbyteorder("<"))[..., 0].astype(dtype)


def encode(kind: str, channels: dict[str, np.ndarray], level: int = ZSTD_LEVEL, **quantisation) -> bytes:
    """The file's bytes: `channels` (H, W) unsigned integer planes, in order; `quantisation` goes
    into the header so that a reader decodes with the writer's parameters."""
    import zstandard

    shape = next(iter(channels.values())).shape
    header = {
        "format": FORMAT,
        "kind": kind,
        "shape": list(shape),
        "channels": [{"name": k, "dtype": np.asarray(v).dtype.name} for k, v in channels.items()],
        **quantisation,
    }
    payload = b"".join(_planes(_residual(np.ascontiguousarray(v))) for v in channels.values())
    head = json.dumps(header, sort_keys=True).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + zstandard.ZstdCompressor(level=level).compress(payload)


def decode(data: bytes, where: str | os.PathLike = "label file") -> tuple[dict, dict[str, np.ndarray]]:
    """(header, {channel: (H, W) array}) of a file's bytes; a foreign or newer file is a one-line UserError."""
    import zstandard

    if data[: len(MAGIC)] != MAGIC:
        raise UserError(f"{where} is not a thfm-synth label file (bad magic)", "re-render the video")
    start = len(MAGIC) + 4
    try:
        (n,) = struct.unpack_from("<I", data, len(MAGIC))
        header = json.loads(data[start : start + n])
        h, w = header["shape"]
        payload = memoryview(zstandard.ZstdDecompressor().decompress(data[start + n :]))
    except (struct.error, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
        raise UserError(f"{where} is truncated or corrupt ({exc})", "re-render the video") from None
    if header.get("format") != FORMAT:
        raise UserError(
            f"{where}: label file format {header.get('format')}, this thfm-synth reads format {FORMAT}",
            "use the thfm-synth version that rendered it, or re-render the video",
        )
    out, at = {}, 0
    for ch in header["channels"]:
        dtype = np.dtype(_UNSIGNED[ch["dtype"]])
        size = h * w * dtype.itemsize
        if at + size > len(payload):
            raise UserError(f"{where} is truncated", "re-render the video")
        out[ch["name"]] = _unresidual(_from_planes(payload[at : at + size], (h, w), dtype))
        at += size
    return header, out


def write(
    path: str | os.PathLike, kind: str, channels: dict[str, np.ndarray], level: int = ZSTD_LEVEL, **quantisation
) -> None:
    Path(path).write_bytes(encode(kind, channels, level, **quantisation))


def read(path: str | os.PathLike, kind: str) -> tuple[dict, dict[str, np.ndarray]]:
    header, ch = decode(Path(path).read_bytes(), path)
    if header["kind"] != kind:
        raise UserError(f"{path} holds {header['kind']!r}, not {kind!r}", "re-render the video")
    return header, ch


# ------------------------------------------------------------------ one function per stored label
def write_depth(path, depth: np.ndarray, level: int = DEPTH_ZSTD_LEVEL) -> None:
    write(path, "depth", {"z": depth_encode(depth)}, level, step_m=DEPTH_STEP_M)


def read_depth(path) -> np.ndarray:
    header, ch = read(path, "depth")
    return depth_decode(ch["z"], header["step_m"])


def write_normal(path, normal: np.ndarray) -> None:
    q = oct_encode(normal)
    write(path, "normal", {"u": q[..., 0], "v": q[..., 1]}, octahedral_bits=NORMAL_BITS)


def read_normal(path) -> np.ndarray:
    header, ch = read(path, "normal")
    return oct_decode(np.stack([ch["u"], ch["v"]], -1), header["octahedral_bits"])


def write_iuv(path, part: np.ndarray, uv: np.ndarray) -> None:
    q = unit_encode(uv)
    write(path, "iuv", {"i": part.astype(np.uint8), "u": q[..., 0], "v": q[..., 1]}, uv_bits=UNIT_BITS)


def read_iuv(path) -> tuple[np.ndarray, np.ndarray]:
    header, ch = read(path, "iuv")
    return ch["i"], unit_decode(np.stack([ch["u"], ch["v"]], -1), header["uv_bits"])


def write_canonical(path, canonical: np.ndarray) -> None:
    q = unit_encode(canonical)
    write(path, "canonical", {c: q[..., i] for i, c in enumerate("xyz")}, bits=UNIT_BITS)


def read_canonical(path) -> np.ndarray:
    header, ch = read(path, "canonical")
    return unit_decode(np.stack([ch[c] for c in "xyz"], -1), header["bits"])
