"""Cheap header probes: what a file is, without loading it (used by scan and validate).

Each probe raises `UserError` naming the file when the header is not what its
extension promises, so a corrupt asset is reported before any render starts.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from thfm_synth.errors import UserError


@dataclass(frozen=True)
class BvhInfo:
    joints: tuple[str, ...]
    num_frames: int  # as declared by `Frames:` (includes a converter T-pose frame if any)
    frame_time: float


def bvh_info(path: Path) -> BvhInfo:
    """Joint names and the MOTION header of a BVH file.

    One BVH parser for the project: this is `thfm_synth.assets.motion.bvh.read_bvh_header`,
    which reads only the header bytes, checks the hierarchy and raises a one-line
    UserError naming the file and line for anything malformed.
    """
    from thfm_synth.assets.motion.bvh import read_bvh_header  # numpy only when a BVH is probed

    header = read_bvh_header(path)
    return BvhInfo(header.joint_names, header.num_frames, header.frame_time)


def hdri_size(path: Path) -> tuple[int, int]:
    """(width, height) of a Radiance .hdr or OpenEXR file."""
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if suffix == ".hdr":
        if not (head.startswith(b"#?RADIANCE") or head.startswith(b"#?RGBE")):
            raise UserError(f"{path} is not a Radiance HDR file (bad magic)", "replace it with a valid .hdr file")
        m = re.search(rb"\n\n([-+][YX]) (\d+) ([-+][YX]) (\d+)\n", head)
        if not m:
            raise UserError(f"{path}: Radiance HDR resolution line missing (truncated?)", "re-download the HDRI")
        a, b = int(m.group(2)), int(m.group(4))
        return (b, a) if m.group(1).endswith(b"Y") else (a, b)
    if suffix == ".exr":
        if head[:4] != b"\x76\x2f\x31\x01":
            raise UserError(f"{path} is not an OpenEXR file (bad magic)", "replace it with a valid .exr file")
        i = 8
        while i < len(head) and head[i] != 0:
            name_end = head.index(b"\0", i)
            type_end = head.index(b"\0", name_end + 1)
            (size,) = struct.unpack_from("<i", head, type_end + 1)
            value_at = type_end + 5
            if head[i:name_end] == b"dataWindow":
                x0, y0, x1, y1 = struct.unpack_from("<4i", head, value_at)
                return x1 - x0 + 1, y1 - y0 + 1
            i = value_at + size
        raise UserError(f"{path}: OpenEXR header has no dataWindow (truncated?)", "re-download the HDRI")
    raise UserError(f"{path}: unsupported HDRI format {suffix}", "use .hdr or .exr")


# Bone-name fingerprints of common rigs; the importer has the full mapping tables.
RIG_FINGERPRINTS = (
    ("mixamo", (b"mixamorig",)),
    ("biped", (b"Bip01", b"Bip001")),
    ("quaternius", (b"UpperArm.L", b"LowerLeg.R")),
    ("unreal", (b"upperarm_l", b"calf_r")),
    ("cmu_mb", (b"LHipJoint", b"LeftUpLeg")),
)


@dataclass(frozen=True)
class ModelInfo:
    rigged: bool
    rig: str  # a RIG_FINGERPRINTS name or "auto"


def _guess_rig(data: bytes) -> str:
    for name, marks in RIG_FINGERPRINTS:
        if all(m in data for m in marks) or (name in ("mixamo", "biped") and any(m in data for m in marks)):
            return name
    return "auto"


def model_info(path: Path) -> ModelInfo:
    """Whether a 3D file carries a skinned skeleton (character) or not (scene prop)."""
    suffix = path.suffix.lower()
    data = path.read_bytes()
    if suffix == ".fbx":
        if not (data.startswith(b"Kaydara FBX Binary") or b"FBXHeaderExtension" in data[:4096]):
            raise UserError(f"{path} is not an FBX file (bad header)", "re-export it as FBX or remove it")
        rigged = b"LimbNode" in data and b"Deformer" in data
        return ModelInfo(rigged, _guess_rig(data) if rigged else "auto")
    if suffix in (".glb", ".gltf"):
        if suffix == ".glb":
            if data[:4] != b"glTF":
                raise UserError(f"{path} is not a GLB file (bad magic)", "re-export it as glTF binary")
            (json_len,) = struct.unpack_from("<I", data, 12)
            doc = data[20 : 20 + json_len]
        else:
            doc = data
        try:
            gltf = json.loads(doc)
        except ValueError:
            raise UserError(f"{path}: glTF JSON is malformed", "re-export the file") from None
        rigged = bool(gltf.get("skins"))
        names = " ".join(n.get("name", "") for n in gltf.get("nodes", [])).encode()
        return ModelInfo(rigged, _guess_rig(names) if rigged else "auto")
    if suffix == ".blend":
        head = blend_head(path, data[: 1 << 16])
        if not head.startswith(b"BLENDER"):
            raise UserError(f"{path} is not a .blend file (bad header)", "re-save it from Blender")
        return ModelInfo(False, "auto")
    raise UserError(f"{path}: unsupported model format {suffix}", "use .fbx, .glb, .gltf or .blend")


def _zstd_literals_peek(data: bytes) -> bytes | None:
    """The first bytes of a zstd frame's content without a zstd decoder, when the frame starts with a raw
    block or with a compressed block whose literals are stored raw (how Blender's writer starts a file:
    the header "BLENDER..." has no repeats to compress). None when it would take a real decoder."""
    if len(data) < 6 or data[:4] != b"\x28\xb5\x2f\xfd":
        return None
    fhd = data[4]
    fcs_flag, single, dict_flag = fhd >> 6, (fhd >> 5) & 1, fhd & 3
    pos = 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_flag] + ((1 if single else 0), 2, 4, 8)[fcs_flag]
    if pos + 3 > len(data):
        return None
    block = int.from_bytes(data[pos : pos + 3], "little")
    btype, bsize = (block >> 1) & 3, block >> 3
    pos += 3
    if btype == 0:  # raw block
        return data[pos : pos + bsize]
    if btype == 1:  # RLE block
        return data[pos : pos + 1] * bsize
    if btype != 2:
        return None
    b0 = data[pos]
    ltype, size_format = b0 & 3, (b0 >> 2) & 3
    if ltype not in (0, 1):  # Huffman-coded literals: needs a decoder
        return None
    if size_format in (0, 2):
        size, hlen = b0 >> 3, 1
    elif size_format == 1:
        size, hlen = (b0 >> 4) + (data[pos + 1] << 4), 2
    else:
        size, hlen = (b0 >> 4) + (data[pos + 1] << 4) + (data[pos + 2] << 12), 3
    lit = data[pos + hlen : pos + hlen + size] if ltype == 0 else data[pos + hlen : pos + hlen + 1] * size
    return lit


def blend_head(path: Path, data: bytes) -> bytes:
    """The first bytes of a .blend's content: plain, gzip-compressed (Blender < 3) or zstd-compressed
    (Blender >= 3 with compression on; Blender 5 saves zstd by default, magic 28 b5 2f fd)."""
    if data.startswith(b"\x1f\x8b"):
        import zlib

        try:
            return zlib.decompressobj(wbits=31).decompress(data, 64)
        except zlib.error:
            raise UserError(
                f"{path}: gzip-compressed .blend does not decompress (corrupt)", "re-save it from Blender"
            ) from None
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        try:
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)[:64]
        except ImportError:
            head = _zstd_literals_peek(data)
            # without a decoder, a zstd frame we cannot peek into is taken at its word (the extension)
            return head if head is not None else b"BLENDER (zstd, header not decoded)"
        except Exception:  # zstandard.ZstdError: a truncated first frame still yields its start
            head = _zstd_literals_peek(data)
            if head is None:
                raise UserError(
                    f"{path}: zstd-compressed .blend does not decompress (corrupt)", "re-save it from Blender"
                ) from None
            return head
    return data[:64]
