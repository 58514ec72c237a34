"""`thfm-synth assets validate MANIFEST`: every problem of a manifest, each naming its file.

Per entry: the licence, the sha256 of the file (or folder), and the file decoded in full as a renderer
would read it (assets/decode.py: every HDRI scanline, every mesh block or node, every BVH frame), so
a truncated or damaged file is reported here, not discovered as a black or magenta render."""

from __future__ import annotations

from pathlib import Path

from thfm_synth.assets import decode as full
from thfm_synth.assets import probes
from thfm_synth.assets.manifest import UNKNOWN_LICENCE, builtin_sha256, content_sha256, load_manifest
from thfm_synth.errors import UserError


def validate(manifest_path: str | Path, check_hashes: bool = True, decode: bool = True) -> tuple[int, list[str]]:
    """Return (entries checked, problems). Schema errors raise instead (nothing else can be checked).
    `decode`: read every file in full (assets/decode.py), not only its header."""
    loaded = load_manifest(manifest_path)
    problems: list[str] = []
    entries = loaded.manifest.entries()
    for kind, entry in entries:
        where = f"{loaded.file} [{kind}/{entry.id}]"
        if entry.licence.strip().upper() in (UNKNOWN_LICENCE, "", "NONE", "TODO"):
            problems.append(f"{where}: licence is {entry.licence!r} - fix: set the asset's licence (e.g. CC0-1.0)")
        if kind == "characters" and entry.format == "smplx":  # generated like a built-in, from the user's models
            from thfm_synth.assets.characters.smplx_model import available_genders

            if entry.sha256 != builtin_sha256(kind, entry.id, entry.params):
                problems.append(
                    f"{where}: sha256 of a smplx entry must be the digest of its params "
                    f"(expected {builtin_sha256(kind, entry.id, entry.params)[:12]}...) - fix: regenerate it"
                )
            try:
                available_genders(loaded.resolve(entry))
            except UserError as exc:
                problems.append(f"{exc.one_line()} ({where})")
            continue
        if entry.path is None:
            expected = builtin_sha256(kind, entry.id, entry.params)
            if entry.sha256 != expected:
                problems.append(
                    f"{where}: built-in sha256 does not match its params (expected {expected[:12]}...) "
                    f"- fix: regenerate the entry"
                )
            continue
        path = loaded.resolve(entry)
        if not path.exists():
            problems.append(f"{path}: missing ({where}) - fix: restore the file or correct `path`/`root`")
            continue
        if check_hashes:
            actual = content_sha256(path)
            if actual != entry.sha256:
                problems.append(
                    f"{path}: sha256 mismatch, manifest {entry.sha256[:12]}... file {actual[:12]}... "
                    f"({where}) - fix: restore the original file, or re-scan if the change is intended"
                )
        try:
            if kind == "motions":
                probes.bvh_info(path)
                if decode:
                    full.decode_bvh(path)
            elif kind == "hdris":
                size = full.decode_hdri(path) if decode else probes.hdri_size(path)
                if size != (entry.width, entry.height):
                    problems.append(
                        f"{path}: HDRI is {size[0]}x{size[1]}, the manifest says {entry.width}x"
                        f"{entry.height} ({where}) - fix: re-scan the manifest"
                    )
            elif kind == "characters" and entry.format == "npz":
                from thfm_synth.assets.characters import load_character, validate_character

                from thfm_synth.assets.characters.materials import TEXTURE_KEYS, normalise
                from thfm_synth.assets.characters.textures import resolve_texture

                c = load_character(path)
                validate_character(c, str(path))
                # the textures travel with the library (textures/ beside the npz): every reference
                # must be there with its digest, or render-one would fail on the node
                for m in c.materials:
                    for key in TEXTURE_KEYS:
                        ref = normalise(m)[key]
                        if ref is None:
                            continue
                        if ref.get("sha256") is None:  # format 1: an absolute path outside the library
                            if not Path(ref["path"]).is_file():
                                problems.append(
                                    f"{path}: texture {ref['path']} is missing ({where}) - fix: "
                                    "import the character again (its textures then live in the library)"
                                )
                            continue
                        resolve_texture(path, ref, verify=check_hashes)
            elif kind in ("characters", "scenes") and path.is_file():
                info = probes.model_info(path)
                if decode:
                    full.decode_model(path)
                if kind == "characters" and not info.rigged:
                    problems.append(
                        f"{path}: character has no skinned armature ({where}) - fix: export it with its rig"
                    )
            elif kind == "scenes" and path.is_dir() and decode:  # a kit: every model file in it
                for part in sorted(path.rglob("*")):
                    if part.is_file() and part.suffix.lower() in (".fbx", ".glb", ".gltf", ".blend"):
                        full.decode_model(part)
        except UserError as exc:
            problems.append(f"{exc.one_line()} ({where})")
        except OSError as exc:
            problems.append(f"{path}: cannot read ({exc.strerror}) ({where})")
        except (ValueError, KeyError) as exc:  # a baked character that does not load
            problems.append(f"{path}: not a valid baked character ({exc}) ({where}) - fix: rebuild it")
    return len(entries), problems
