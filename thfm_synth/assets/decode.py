"""Full decoding of asset files, for `thfm-synth assets validate`: a file that does not decode to the
end fails, naming the file and where it breaks.

A header probe (probes.py) says what a file claims to be; these readers go through all of it, as a
renderer would, so a truncated or damaged file is caught before a render turns it into a black
background or a magenta texture:

* HDRIs: Radiance .hdr (every RLE scanline, in numpy) and OpenEXR (every channel of every part,
  through the OpenEXR module) -> the pixels, checked for non-finite values;
* meshes: binary FBX (every node record, every property, every compressed array inflated), ASCII
  FBX (parsed by the renderer's own reader, `blender_scripts/fbx_ascii.py`), GLB/glTF (every
  buffer, buffer view, accessor and image within its bounds), .blend (plain, gzip or zstd: every
  file block up to ENDB);
* motions: the whole BVH read (every frame), with finite and plausible root positions.

Each function raises `UserError(what, fix)`; it returns a short summary of what it read.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from thfm_synth.errors import UserError

MAX_ROOT_M = 1000.0  # a root further than this from the origin is a broken clip, not a capture

# ----------------------------------------------------------------------------- images


def _bad(path: Path, what: str, fix: str = "replace the file with a complete copy (re-download or re-export it)"):
    return UserError(f"{path}: {what}", fix)


def decode_radiance(path: str | Path) -> np.ndarray:
    """(H, W, 3) float32 linear RGB of a Radiance .hdr file (flat or new-style RLE scanlines)."""
    path = Path(path)
    data = path.read_bytes()
    if not (data.startswith(b"#?RADIANCE") or data.startswith(b"#?RGBE")):
        raise _bad(path, "not a Radiance HDR file (bad magic)")
    m = re.compile(rb"\n\n([-+])([YX]) (\d+) ([-+])([YX]) (\d+)\n").search(data, 0, 65536)
    if not m:
        raise _bad(path, "Radiance HDR resolution line missing (truncated header?)")
    if m.group(2) != b"Y" or m.group(5) != b"X":
        raise _bad(
            path,
            "Radiance HDR with rotated scanlines (+X/-X first) is not supported",
            "re-save it in the standard -Y H +X W orientation",
        )
    h, w = int(m.group(3)), int(m.group(6))
    pos = m.end()
    out = np.empty((h, w, 4), np.uint8)
    n = len(data)
    for y in range(h):
        if (
            pos + 4 <= n
            and data[pos] == 2
            and data[pos + 1] == 2
            and (data[pos + 2] << 8 | data[pos + 3]) == w
            and 8 <= w < 32768
        ):
            pos += 4
            for c in range(4):
                x = 0
                row = out[y, :, c]
                while x < w:
                    if pos >= n:
                        raise _bad(path, f"Radiance HDR data ends in scanline {y} of {h} (truncated)")
                    count = data[pos]
                    pos += 1
                    if count > 128:
                        count -= 128
                        if count > w - x or pos >= n:
                            raise _bad(path, f"Radiance HDR scanline {y} is corrupt (run overflows the line)")
                        row[x : x + count] = data[pos]
                        pos += 1
                    else:
                        if pos + count > n:
                            raise _bad(path, f"Radiance HDR data ends in scanline {y} of {h} (truncated)")
                        if count == 0 or count > w - x:
                            raise _bad(path, f"Radiance HDR scanline {y} of {h} is corrupt (bad run length)")
                        row[x : x + count] = np.frombuffer(data, np.uint8, count, pos)
                        pos += count
                    x += count
        else:  # flat RGBE pixels (old-style run lengths, which no current writer makes, read as pixels)
            if pos + 4 * w > n:
                raise _bad(path, f"Radiance HDR data ends in scanline {y} of {h} (truncated)")
            out[y] = np.frombuffer(data, np.uint8, 4 * w, pos).reshape(w, 4)
            pos += 4 * w
    e = out[..., 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0).astype(np.float32)
    return (out[..., :3].astype(np.float32) + 0.5) * scale[..., None] * (e[..., None] > 0)


def decode_exr(path: str | Path) -> dict[str, np.ndarray]:
    """Every channel of every part of an OpenEXR file, fully read."""
    import OpenEXR

    path = Path(path)
    with open(path, "rb") as fh:
        if fh.read(4) != b"\x76\x2f\x31\x01":
            raise _bad(path, "not an OpenEXR file (bad magic)")
    try:
        with OpenEXR.File(str(path)) as f:
            out = {}
            for p, part in enumerate(f.parts):
                for name, ch in part.channels.items():
                    out[f"{p}:{name}"] = np.asarray(ch.pixels)
    except (ValueError, RuntimeError, OSError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise _bad(path, f"OpenEXR data does not decode ({detail})") from None
    if not out:
        raise _bad(path, "OpenEXR file has no readable channels (truncated?)")
    return out


def decode_hdri(path: str | Path) -> tuple[int, int]:
    """Decode an HDRI fully; (width, height). Non-finite or all-black pixels are refused."""
    path = Path(path)
    if path.suffix.lower() == ".hdr":
        img = decode_radiance(path)
    elif path.suffix.lower() == ".exr":
        chans = decode_exr(path)
        planes = [a.reshape(a.shape[0], a.shape[1], -1) for a in chans.values()]
        img = np.concatenate(planes, axis=-1).astype(np.float32)
    else:
        raise _bad(path, f"unsupported HDRI format {path.suffix}", "use .hdr or .exr")
    if not np.isfinite(img).all():
        raise _bad(path, "HDRI holds non-finite pixel values")
    if float(img.max(initial=0.0)) <= 0.0:
        raise _bad(path, "HDRI is black everywhere (no light)")
    return int(img.shape[1]), int(img.shape[0])


# ----------------------------------------------------------------------------- FBX

_FBX_MAGIC = b"Kaydara FBX Binary  \x00"
_ARRAY_ITEM = {b"f": 4, b"d": 8, b"l": 8, b"i": 4, b"b": 1}
_SCALAR = {b"Y": 2, b"C": 1, b"I": 4, b"F": 4, b"D": 8, b"L": 8}


def _fbx_node(data: bytes, pos: int, wide: bool, path: Path, depth: int = 0) -> tuple[int, int]:
    """Parse the node record at `pos`: (end offset, nodes read); end offset 0 for the NULL record."""
    n = len(data)
    fmt, head = ("<QQQ", 24) if wide else ("<III", 12)
    if pos + head + 1 > n:
        raise _bad(path, f"FBX data ends inside a node record at byte {pos} (truncated)")
    end, num_props, _ = struct.unpack_from(fmt, data, pos)
    name_len = data[pos + head]
    if end == 0:
        return 0, 0
    if end > n or end <= pos or depth > 64:
        raise _bad(path, f"FBX node at byte {pos} ends at {end}, past the end of the file ({n} bytes; truncated)")
    p = pos + head + 1 + name_len
    for _ in range(num_props):
        if p >= end:
            raise _bad(path, f"FBX node at byte {pos}: properties overrun the node (corrupt)")
        t = data[p : p + 1]
        p += 1
        if t in _SCALAR:
            p += _SCALAR[t]
        elif t in _ARRAY_ITEM:
            count, encoding, length = struct.unpack_from("<III", data, p)
            p += 12
            raw = data[p : p + length]
            if len(raw) != length:
                raise _bad(path, f"FBX array at byte {p} is truncated")
            if encoding == 1:
                try:
                    raw = zlib.decompress(raw)
                except zlib.error:
                    raise _bad(path, f"FBX compressed array at byte {p} does not inflate (corrupt)") from None
            if len(raw) != count * _ARRAY_ITEM[t]:
                raise _bad(path, f"FBX array at byte {p} holds {len(raw)} bytes, not {count} values (corrupt)")
            p += length
        elif t in (b"S", b"R"):
            (length,) = struct.unpack_from("<I", data, p)
            p += 4 + length
        else:
            raise _bad(path, f"FBX property type {t!r} at byte {p - 1} is unknown (corrupt)")
    nodes = 1
    while p < end:  # nested records, closed by a NULL record
        child_end, k = _fbx_node(data, p, wide, path, depth + 1)
        nodes += k
        if child_end == 0:
            break
        p = child_end
    return end, nodes


def decode_fbx(path: str | Path) -> str:
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(_FBX_MAGIC):
        (version,) = struct.unpack_from("<I", data, 23)
        wide = version >= 7500
        pos, nodes = 27, 0
        while True:
            end, k = _fbx_node(data, pos, wide, path)
            nodes += k
            if end == 0:
                break
            pos = end
        if nodes == 0:
            raise _bad(path, "FBX file holds no nodes")
        return f"binary FBX {version}, {nodes} nodes"
    if b"FBXHeaderExtension" not in data[:4096]:
        raise _bad(path, "not an FBX file (bad header)", "re-export it as FBX or remove it")
    from blender_scripts import fbx_ascii  # the renderer's own reader (numpy and the standard library)

    text = data.decode("utf-8", errors="replace")
    if text.count("{") != text.count("}"):
        raise _bad(path, "ASCII FBX braces do not balance (truncated)")
    try:
        meshes = fbx_ascii.read_meshes(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure of the reader means the renderer would fail too
        raise _bad(path, f"ASCII FBX does not read ({type(exc).__name__}: {str(exc)[:150]})") from None
    return f"ASCII FBX, {len(meshes)} meshes"


# ----------------------------------------------------------------------------- glTF


_COMPONENT = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


def decode_gltf(path: str | Path) -> str:
    """Every buffer, buffer view, accessor and image of a GLB/glTF file lies within its data."""
    path = Path(path)
    data = path.read_bytes()
    bin_chunk = None
    if path.suffix.lower() == ".glb":
        if data[:4] != b"glTF" or len(data) < 20:
            raise _bad(path, "not a GLB file (bad magic)")
        (total,) = struct.unpack_from("<I", data, 8)
        if total != len(data):
            raise _bad(path, f"GLB header says {total} bytes, the file has {len(data)} (truncated)")
        pos, doc_bytes = 12, None
        while pos + 8 <= len(data):
            length, kind = struct.unpack_from("<I4s", data, pos)
            chunk = data[pos + 8 : pos + 8 + length]
            if len(chunk) != length:
                raise _bad(path, f"GLB chunk at byte {pos} is truncated")
            if kind == b"JSON":
                doc_bytes = chunk
            elif kind == b"BIN\x00" and bin_chunk is None:
                bin_chunk = chunk
            pos += 8 + length
        if doc_bytes is None:
            raise _bad(path, "GLB has no JSON chunk")
    else:
        doc_bytes = data
    try:
        doc = json.loads(doc_bytes)
    except ValueError:
        raise _bad(path, "glTF JSON is malformed (truncated?)", "re-export the file") from None
    sizes = []
    for i, buf in enumerate(doc.get("buffers", [])):
        uri = buf.get("uri")
        if uri is None:
            have = len(bin_chunk) if bin_chunk is not None else -1
        elif uri.startswith("data:"):
            import base64

            try:
                have = len(base64.b64decode(uri.split(",", 1)[1]))
            except (ValueError, IndexError):
                raise _bad(path, f"glTF buffer {i}: embedded data does not decode") from None
        else:
            ref = path.parent / uri
            if not ref.is_file():
                raise _bad(path, f"glTF buffer {i}: file {ref} is missing", "copy the .bin file beside the .gltf")
            have = ref.stat().st_size
        if have < int(buf.get("byteLength", 0)):
            raise _bad(path, f"glTF buffer {i} holds {have} bytes, byteLength says {buf.get('byteLength')} (truncated)")
        sizes.append(int(buf.get("byteLength", 0)))
    views = doc.get("bufferViews", [])
    for i, v in enumerate(views):
        b = v.get("buffer", -1)
        if not 0 <= b < len(sizes) or v.get("byteOffset", 0) + v.get("byteLength", 0) > sizes[b]:
            raise _bad(path, f"glTF bufferView {i} lies outside its buffer (corrupt)")
    for i, a in enumerate(doc.get("accessors", [])):
        if "bufferView" not in a:
            continue
        v = a["bufferView"]
        if not 0 <= v < len(views):
            raise _bad(path, f"glTF accessor {i} names a missing bufferView (corrupt)")
        elem = _COMPONENT.get(a.get("componentType"), 0) * _TYPE.get(a.get("type"), 0)
        if elem == 0:
            raise _bad(path, f"glTF accessor {i} has an unknown component type or type")
        stride = views[v].get("byteStride") or elem
        need = a.get("byteOffset", 0) + stride * (int(a.get("count", 0)) - 1) + elem if a.get("count") else 0
        if need > views[v].get("byteLength", 0):
            raise _bad(path, f"glTF accessor {i} reads past its bufferView (corrupt)")
    for i, img in enumerate(doc.get("images", [])):
        uri = img.get("uri")
        if uri and not uri.startswith("data:") and not (path.parent / uri).is_file():
            raise _bad(
                path,
                f"glTF image {i}: texture file {path.parent / uri} is missing",
                "copy the textures beside the glTF file",
            )
    return f"glTF, {len(doc.get('meshes', []))} meshes, {len(doc.get('accessors', []))} accessors"


# ----------------------------------------------------------------------------- .blend

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


def blend_bytes(path: str | Path) -> bytes:
    """The uncompressed bytes of a .blend file (plain, gzip or zstd - Blender 5 saves zstd by default)."""
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(GZIP_MAGIC):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error):
            raise _bad(path, "gzip-compressed .blend does not decompress (truncated or corrupt)") from None
    if data.startswith(ZSTD_MAGIC):
        try:
            import zstandard
        except ImportError:
            raise UserError(
                f"{path}: a zstd-compressed .blend needs the `zstandard` module to be checked in full",
                "install it into the main environment: pip install zstandard",
            ) from None
        try:
            with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
                return reader.read()
        except zstandard.ZstdError as exc:
            raise _bad(path, f"zstd-compressed .blend does not decompress ({exc})") from None
    return data


def decode_blend(path: str | Path) -> str:
    """Walk every file block of a .blend up to its ENDB block."""
    path = Path(path)
    data = blend_bytes(path)
    if not data.startswith(b"BLENDER"):
        raise _bad(path, "not a .blend file (bad header)", "re-save it from Blender")
    n = len(data)
    m = re.match(rb"BLENDER(\d\d)-(\d\d)([vV])(\d{4})", data[:32])
    if m:  # Blender >= 5: "BLENDER17-01v0500", 32-byte block headers, 64-bit lengths
        pos, little, version = int(m.group(1)), m.group(3) == b"v", m.group(4).decode()
        fmt, head = ("<4siQqq" if little else ">4siQqq"), 32

        def block(p):
            code, _, _, length, _ = struct.unpack_from(fmt, data, p)
            return code, length
    elif len(data) >= 12 and data[7:8] in (b"_", b"-") and data[8:9] in (b"v", b"V"):
        pos, little, version = 12, data[8:9] == b"v", data[9:12].decode(errors="replace")
        wide = data[7:8] == b"-"
        end = "<" if little else ">"
        fmt, head = (end + ("4siQii" if wide else "4siIii")), (24 if wide else 20)

        def block(p):
            code, length, *_ = struct.unpack_from(fmt, data, p)
            return code, length
    else:
        raise _bad(path, "unrecognised .blend header", "re-save it from Blender")
    blocks = 0
    while True:
        if pos + head > n:
            raise _bad(path, f".blend data ends after {blocks} blocks without its ENDB block (truncated)")
        code, length = block(pos)
        if code == b"ENDB":
            break
        if length < 0 or pos + head + length > n:
            raise _bad(path, f".blend block {blocks} ({code!r}) runs past the end of the file (truncated)")
        pos += head + length
        blocks += 1
    return f".blend {version}, {blocks} blocks"


def decode_model(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".fbx":
        return decode_fbx(path)
    if suffix in (".glb", ".gltf"):
        return decode_gltf(path)
    if suffix == ".blend":
        return decode_blend(path)
    raise _bad(Path(path), f"unsupported model format {suffix}", "use .fbx, .glb, .gltf or .blend")


# ----------------------------------------------------------------------------- motion


def decode_bvh(path: str | Path) -> str:
    """The whole clip read (every frame), with finite, plausible root positions."""
    from thfm_synth.assets.motion.bvh import read_bvh

    clip = read_bvh(path)  # UserError naming the file and line for anything malformed or truncated
    check_clip(clip, path)
    return f"BVH, {np.asarray(clip.root_translation).shape[0]} frames"


def check_clip(clip, path: str | Path) -> None:
    """A motion clip's values are finite and its root stays within MAX_ROOT_M of the origin (a BVH
    that parses but is broken would put the person kilometres out of view: bad input, not a video)."""
    root = np.asarray(clip.root_translation)
    if not np.isfinite(root).all() or not np.isfinite(clip.local_rotations).all():
        raise _bad(Path(path), "BVH motion holds non-finite values")
    far = float(np.abs(root).max(initial=0.0))
    if far > MAX_ROOT_M:
        frame = int(np.abs(root).max(axis=1).argmax())
        raise _bad(
            Path(path),
            f"BVH root is {far:.3g} m from the origin at frame {frame} (a broken clip; limit {MAX_ROOT_M:g} m)",
            "repair or re-export the clip, or remove it",
        )
