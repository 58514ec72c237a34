"""One training record and its two encodings (ArrayRecord bytes and a Parquet row).

A record is one (video, task) pair: the RGB latents, the target latents of that task
(empty for sparse keypoint tasks), the task's pixel ground truth and validity mask at model
resolution (schema 2; compact blobs, see model/pixels.py; empty for keypoint tasks and when
preprocessing ran without pixel targets), keypoints, cameras and provenance. Its checksum is
computed over a canonical serialisation of every field, independent of the container,
so `verify` gives the same answer for Parquet and ArrayRecord and can name the record
in which a single byte changed.

The checksum is XXH3-128, written "xxh3-128:<32 hex digits>": it guards against damage (a flipped
byte, a truncated copy), not against tampering, and runs at ~30 GB/s per core where SHA-256 ran at
~1-2 GB/s and bounded every verified training read. Shards written before it hold a bare SHA-256
hex digest over the same serialisation; `Record.matches` accepts both, so they read and verify
unchanged. The stored names keep "sha256" (the header key `sha256`, the Parquet column and the
metadata key `record_sha256`): renaming them would break older shards; they mean "the record
checksum", its algorithm named by its prefix. No pickle: arrays are raw little-endian bytes described
by dtype and shape. Decoding (`from_bytes`, `from_row`) is zero-copy: the arrays are read-only
views into the given bytes; copy one (`np.array(a)`) to modify it.

ArrayRecord payload layout: b"THFMREC1" | uint32 header length | UTF-8 JSON header |
array bytes (each at a 64-byte aligned offset). The header holds the scalar fields,
each array's dtype/shape/offset and the checksum.

Optional fields (OPTIONAL_SCALARS, OPTIONAL_ARRAYS: the body-model parameters of SMPL-X
characters, shards/body_params.py; every person's keypoints in videos with several people) default to "" / empty arrays, are absent from older shards and
enter the checksum only when set, so records without them keep their checksums.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field

import numpy as np
import xxhash

from model.tasks import TASKS

SCHEMA_VERSION = 2
MAGIC = b"THFMREC1"
CHECKSUM_ALGORITHM = "xxh3-128"  # what new records are written with (a bare hex digest is legacy SHA-256)
_HASHES = {"xxh3-128": xxhash.xxh3_128, "sha256": hashlib.sha256}
SCALARS = ("schema_version", "video_id", "task", "prompt_id", "vae_id", "source_checksums", "body_model")
ARRAYS = (
    "rgb_latents",
    "target_latents",
    "keypoints_2d",
    "keypoints_3d",
    "keypoints_visibility",
    "camera_k",
    "camera_rt",
    "target_pixels",
    "pixel_valid",
    "body_params",
    "body_betas",
    "people_keypoints_2d",
    "people_keypoints_3d",
    "people_keypoints_visibility",
)
CORE_ARRAYS = ARRAYS[:7]
PIXEL_ARRAYS = ("target_pixels", "pixel_valid")
OPTIONAL_SCALARS = ("body_model",)
OPTIONAL_ARRAYS = (
    "body_params",
    "body_betas",
    "people_keypoints_2d",
    "people_keypoints_3d",
    "people_keypoints_visibility",
)
# the arrays each schema version holds (a v1 record, from before pixel ground truth, reads with the
# two pixel arrays empty and is checksummed over its own arrays); optional arrays join when set
SCHEMA_ARRAYS = {1: CORE_ARRAYS, 2: CORE_ARRAYS + PIXEL_ARRAYS}
FIELD_DOCS = {
    "schema_version": "int: version of this schema",
    "video_id": "str: id of the rendered video (plan row)",
    "task": "str: " + " | ".join(TASKS),
    "prompt_id": "str: key into the shard set's prompt table (prompts.npz)",
    "vae_id": "str: codec that made the latents (weights digest or 'codec:...')",
    "source_checksums": "str: JSON {file: sha256} of the rendered files this record came from",
    "rgb_latents": "(C, T', H', W'): latents of the RGB clip",
    "target_latents": "(C, T', H', W'): latents of the task's 3-channel target video in [-1, 1]; empty for keypoint tasks",
    "keypoints_2d": "(T, K, 2) float32: joints in normalised image coordinates [0, 1]",
    "keypoints_3d": "(T, K, 3) float32: joints in the OpenCV camera frame, metres",
    "keypoints_visibility": "(T, K) uint8: 0 visible, 1 outside, 2 self-occluded, 3 scene-occluded",
    "camera_k": "(T, 3, 3) float32: intrinsics after resizing, pixels",
    "camera_rt": "(T, 3, 4) float32: world-to-camera [R|t], OpenCV",
    "target_pixels": "uint8 blob (model/pixels.py): the task's pixel ground truth at model resolution - metric depth "
    "(T, H, W) float16 metres for depth tasks, else the [-1, 1] target as uint8 (T, H, W, 3); "
    "empty for keypoint tasks or without pixel targets",
    "pixel_valid": "uint8 blob (model/pixels.py): (T, H, W) bool, the pixels that carry ground truth "
    "(not sky / not the person for human-only tasks); empty like target_pixels",
    "body_model": "str: JSON of the body model (smplx: gender, model file sha256, layout of body_params); '' if none",
    "body_params": "(T, P) float32: SMPL-X parameters per frame (camera and world frames; layout in body_model); "
    "empty if none",
    "body_betas": "(10,) float32: SMPL-X shape; empty if none",
    "people_keypoints_2d": "(P, T, K, 2) float32: every person's joints (the subject first; videos with several "
    "people), like keypoints_2d; empty with one person",
    "people_keypoints_3d": "(P, T, K, 3) float32: every person's joints in the camera frame, metres; empty with one "
    "person",
    "people_keypoints_visibility": "(P, T, K) uint8: codes as keypoints_visibility, 4 = hidden by another person; "
    "empty with one person",
}


def _view(buf, dtype: str, shape) -> np.ndarray:
    """A read-only array over `buf` without copying (decode is the hot loop of training reads).

    Records read from shards hold such views: callers that want to modify an array copy it first
    (`np.array(rec.arrays[name])`); writing into one raises ValueError instead of silently
    changing the bytes another record or the reader's buffer shares.
    """
    a = np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape)
    a.flags.writeable = False
    return a


def _empty_array() -> np.ndarray:
    return np.zeros((0,), np.float32)


class RecordError(ValueError):
    pass


@dataclass
class Record:
    video_id: str
    task: str
    prompt_id: str
    vae_id: str
    source_checksums: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    body_model: str = ""

    def __post_init__(self) -> None:
        for name in OPTIONAL_ARRAYS:
            if name not in self.arrays:
                self.arrays[name] = _empty_array()
        for name in PIXEL_ARRAYS:  # records of schema 1 (and writers that have none) hold them empty
            self.arrays.setdefault(name, np.zeros((0,), np.uint8))
        self.body_model = self.body_model or ""

    def scalars(self) -> dict:
        return {k: getattr(self, k) for k in SCALARS}

    def array_names(self) -> tuple[str, ...]:
        """The arrays this record stores and hashes: its schema's, plus the optional ones it has."""
        base = SCHEMA_ARRAYS.get(int(self.schema_version), CORE_ARRAYS + PIXEL_ARRAYS)
        return base + tuple(n for n in OPTIONAL_ARRAYS if np.asarray(self.arrays[n]).size)

    def has_pixels(self) -> bool:
        return self.arrays["target_pixels"].size > 0

    def checksum(self, algorithm: str | None = None) -> str:
        """The record's checksum as stored: "xxh3-128:<hex>" (default), or a bare hex digest for
        algorithm "sha256" (the legacy form)."""
        algorithm = algorithm or CHECKSUM_ALGORITHM
        if algorithm not in _HASHES:
            raise RecordError(f"unknown record checksum algorithm {algorithm!r} (known: {', '.join(_HASHES)})")
        hashed = {k: v for k, v in self.scalars().items() if k not in OPTIONAL_SCALARS or v}
        h = _HASHES[algorithm](json.dumps(hashed, sort_keys=True).encode())
        for name in self.array_names():
            a = np.ascontiguousarray(self.arrays[name])
            h.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
            h.update(a.reshape(-1).view(np.uint8).data)  # hashed in place (a.tobytes() would copy)
        return h.hexdigest() if algorithm == "sha256" else f"{algorithm}:{h.hexdigest()}"

    def matches(self, stored: str) -> bool:
        """Whether `stored` (as written by any version: "xxh3-128:<hex>" or a bare SHA-256 hex digest)
        is this record's checksum; an unknown algorithm prefix raises RecordError."""
        if not isinstance(stored, str):
            return False
        algorithm = stored.split(":", 1)[0] if ":" in stored else "sha256"
        return self.checksum(algorithm) == stored

    # ---------------------------------------------------------------- ArrayRecord bytes

    def to_bytes(self) -> bytes:
        meta, blobs, offset = {}, [], 0
        for name in self.array_names():
            a = np.ascontiguousarray(self.arrays[name])
            if a.dtype.byteorder == ">":
                a = a.astype(a.dtype.newbyteorder("<"))
            pad = (-offset) % 64
            blobs.append(b"\0" * pad)
            offset += pad
            meta[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes}
            blobs.append(a.tobytes())
            offset += a.nbytes
        header = json.dumps(
            {"fields": self.scalars(), "arrays": meta, "sha256": self.checksum()}, sort_keys=True
        ).encode()
        return MAGIC + struct.pack("<I", len(header)) + header + b"".join(blobs)

    @classmethod
    def from_bytes(cls, data: bytes, verify: bool = False) -> "Record":
        if data[:8] != MAGIC:
            raise RecordError("not a thfm-synth record (bad magic)")
        (hlen,) = struct.unpack_from("<I", data, 8)
        try:
            header = json.loads(data[12 : 12 + hlen])
        except ValueError:
            raise RecordError("record header is not valid JSON") from None
        body = memoryview(data)[12 + hlen :]
        arrays = {}
        for name, m in header["arrays"].items():
            raw = body[m["offset"] : m["offset"] + m["nbytes"]]
            if len(raw) != m["nbytes"]:
                raise RecordError(f"array {name} is truncated")
            # zero-copy: a read-only view into `data` (kept alive by the array's base)
            arrays[name] = _view(raw, m["dtype"], m["shape"])
        rec = cls(**{k: v for k, v in header["fields"].items()}, arrays=arrays)
        if verify and not rec.matches(header.get("sha256")):
            raise RecordError(f"checksum mismatch in record {rec.video_id}/{rec.task}")
        return rec

    @staticmethod
    def stored_checksum(data: bytes) -> str:
        (hlen,) = struct.unpack_from("<I", data, 8)
        return json.loads(data[12 : 12 + hlen])["sha256"]

    # ---------------------------------------------------------------- Parquet row

    def to_row(self) -> dict:
        row = self.scalars()
        for name in ARRAYS:  # every column of the current schema (a v1 record's pixel columns are empty)
            a = np.ascontiguousarray(self.arrays[name])
            row[name] = a.astype(a.dtype.newbyteorder("<")).tobytes()
            row[f"{name}_dtype"] = a.dtype.newbyteorder("<").str
            row[f"{name}_shape"] = list(a.shape)
        row["record_sha256"] = self.checksum()
        return row

    @classmethod
    def from_row(cls, row: dict, verify: bool = False) -> "Record":
        arrays = {
            name: _view(row[name], row[f"{name}_dtype"], row[f"{name}_shape"])
            for name in ARRAYS
            if row.get(name) is not None
        }
        rec = cls(**{k: row[k] for k in SCALARS if k in row}, arrays=arrays)
        if verify and not rec.matches(row.get("record_sha256")):
            raise RecordError(f"checksum mismatch in record {rec.video_id}/{rec.task}")
        return rec
