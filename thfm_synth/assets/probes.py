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

    One BVH parser for the project: this is `thfm_synth.motion.bvh.read_bvh_header`,
    which reads only the header bytes, checks the hierarchy and raises a one-line
    UserError naming the file and line for anything malformed.
    """
    from thfm_synth.motion.bvh import read_bvh_header  # numpy only when a BVH is probed

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
            doc = data[20:20 + json_len]
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
        if not data.startswith(b"BLENDER"):
            raise UserError(f"{path} is not a .blend file (bad header)", "re-save it from Blender")
        return ModelInfo(False, "auto")
    raise UserError(f"{path}: unsupported model format {suffix}", "use .fbx, .glb, .gltf or .blend")
