"""`thfm-synth assets import-characters DIR --out LIBRARY`: a folder of rigged files -> a library.

Every `.fbx`/`.glb`/`.gltf` under DIR (hidden files and LIBRARY itself left out) is imported with
`import_character` into `LIBRARY/<id>.npz` (textures into `LIBRARY/textures/`, textures.py) and gets
an entry in `LIBRARY/manifest.yaml` (format npz; rig, height, and in `params.import` the source
file's name and sha256, material names and texture digests). A file that cannot be a character
(no armature, no skin weights, a rig that maps to no known table or bone map, no licence) is
*refused* with the one-line reason and never filed as anything else.

Licence of a file, first found wins:
1. a sidecar `<file stem>.licence.txt` (or `.license.txt`) beside it: its first line that is not
   empty and not a `#` comment is the SPDX id, the rest is free text (attribution);
2. `LICENCES.yaml` (or `LICENSES.yaml`) in DIR: `file name or glob: SPDX id`, first match wins,
   names relative to DIR;
3. `--licence SPDX` (`licence=`);
4. a LICENSE/README text above the file that `assets scan` recognises;
otherwise `UNKNOWN`, refused unless `allow_unknown_licence`.

Bone maps (rigs.load_bone_map): `bone_map` (`--bone-map`) applies to every file; a sidecar
`<file stem>.bonemap.yaml` beside a file is that file's own map and wins.

Re-running is idempotent: a file whose entry already holds its sha256 (and whose npz is intact)
is skipped; the manifest is rewritten atomically after every import, so an interrupted run
loses at most the file it was importing and the rerun carries on.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from thfm_synth.assets.manifest import UNKNOWN_LICENCE, CharacterEntry, Manifest, file_sha256
from thfm_synth.errors import UserError

SUPPORTED = (".fbx", ".glb", ".gltf")
SIDECAR_SUFFIXES = (".licence.txt", ".license.txt")
LICENCE_FILES = ("LICENCES.yaml", "LICENSES.yaml")
BONE_MAP_SUFFIX = ".bonemap.yaml"  # NAME.bonemap.yaml beside NAME.fbx: that file's bone map
MANIFEST = "manifest.yaml"


@dataclass
class FolderImport:
    imported: list[tuple[str, str]] = field(default_factory=list)  # (file, one-line summary)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, id already present)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, unexpected error)
    manifest: Path | None = None

    @property
    def ok(self) -> bool:
        """Something is in the library from this folder and nothing failed unexpectedly."""
        return bool(self.imported or self.skipped) and not self.failed

    def lines(self) -> list[str]:
        out = [
            f"{len(self.imported)} imported, {len(self.skipped)} already present, {len(self.refused)} refused, "
            f"{len(self.failed)} failed -> {self.manifest}"
        ]
        out += [f"  imported {f}: {s}" for f, s in self.imported]
        out += [f"  already present {f}: {s}" for f, s in self.skipped]
        out += [f"  refused {f}: {r}" for f, r in self.refused]
        out += [f"  FAILED {f}: {r}" for f, r in self.failed]
        return out


def character_files(top: Path, exclude: Path | None = None) -> list[Path]:
    out = []
    for p in sorted(top.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in SUPPORTED:
            continue
        rel = p.relative_to(top)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if exclude is not None and (p.resolve() == exclude or exclude in p.resolve().parents):
            continue
        out.append(p)
    return out


def _first_licence_line(path: Path) -> str | None:
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.split()[0]
    return None


class LicenceFinder:
    """The licence of each file by the rules of the module doc; `(spdx, where it came from)`."""

    def __init__(self, top: Path, default: str | None):
        from thfm_synth.assets.scan import _Notes

        self.top, self.default, self.notes = top, default, _Notes(top)
        self.table: list[tuple[str, str]] = []
        for name in LICENCE_FILES:
            f = top / name
            if f.is_file():
                import yaml

                try:
                    raw = yaml.safe_load(f.read_text())
                except yaml.YAMLError:
                    raise UserError(f"{f} is not valid YAML", "write lines `file name or glob: SPDX id`") from None
                if not isinstance(raw, dict):
                    raise UserError(f"{f} is not a mapping", "write lines `file name or glob: SPDX id`")
                self.table = [(str(k), str(v).strip()) for k, v in raw.items()]
                self.table_file = f
                break

    def __call__(self, path: Path) -> tuple[str, str]:
        for suffix in SIDECAR_SUFFIXES:
            side = path.with_name(path.stem + suffix)
            if side.is_file():
                spdx = _first_licence_line(side)
                if spdx:
                    return spdx, side.name
        rel = path.relative_to(self.top).as_posix()
        for pattern, spdx in self.table:
            if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(path.name, pattern):
                return spdx, f"{self.table_file.name} ({pattern})"
        if self.default:
            return self.default, "--licence"
        spdx, note = self.notes.licence(path)
        return spdx, note or "none found"


def _new_id(path: Path, top: Path, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "-", path.stem).strip("-.") or "character"
    if not base[0].isalnum():
        base = "c" + base
    candidates = [base, f"{base}-{path.suffix.lstrip('.').lower()}"]
    rel = path.relative_to(top)
    if len(rel.parts) > 1:
        candidates.append(re.sub(r"[^A-Za-z0-9_.\-]+", "-", "-".join(rel.with_suffix("").parts)).strip("-."))
    for c in candidates:
        if c not in taken:
            return c
    i = 2
    while f"{base}-{i}" in taken:
        i += 1
    return f"{base}-{i}"


def _load_existing(manifest_path: Path, name: str) -> Manifest:
    if not manifest_path.is_file():
        return Manifest(name=name, description="characters imported by thfm-synth assets import-characters")
    from thfm_synth.assets.manifest import load_manifest

    loaded = load_manifest(manifest_path)
    if loaded.manifest.root != ".":
        raise UserError(
            f"{manifest_path} has root {loaded.manifest.root!r}; an import library's manifest sits in its folder",
            "choose an empty --out folder",
        )
    return loaded.manifest


def _write_manifest(path: Path, manifest: Manifest) -> None:
    from thfm_synth.assets.manifest import dump_manifest
    from thfm_synth.atomic import write_text

    header = "# Made by: thfm-synth assets import-characters (entries' paths are relative to this folder)\n"
    write_text(path, header + dump_manifest(manifest), "manifest")


def import_folder(
    top: str | Path,
    library: str | Path,
    licence: str | None = None,
    allow_unknown_licence: bool = False,
    rig: str = "auto",
    bone_map: dict[str, str] | None = None,
    height_m: float | None = None,
    name: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    importer: Callable | None = None,
) -> FolderImport:
    """Import every character file under `top` into `library` (see module doc)."""
    from thfm_synth.assets.characters.importer import import_character
    from thfm_synth.assets.characters.materials import texture_refs
    from thfm_synth.assets.characters.rigs import load_bone_map

    importer = importer or import_character
    top = Path(top).resolve()
    library = Path(library)
    if not top.is_dir():
        raise UserError(f"character folder {top} not found", "give the folder holding your .fbx/.glb/.gltf files")
    if library.exists() and not library.is_dir():
        raise UserError(f"--out {library} is a file", "give a folder for the library")
    lib_abs = library.resolve()
    files = character_files(top, exclude=lib_abs)
    if not files:
        raise UserError(f"no .fbx, .glb or .gltf files under {top}", "give the folder holding your character files")
    licences = LicenceFinder(top, licence)
    manifest_path = library / MANIFEST
    manifest = _load_existing(manifest_path, name or lib_abs.name)
    created = not library.exists()
    library.mkdir(parents=True, exist_ok=True)
    result = FolderImport(manifest=manifest_path)
    entries = {e.id: e for e in manifest.characters}
    by_source = {e.params.get("import", {}).get("file_sha256"): e for e in manifest.characters}
    taken = set(entries)
    for k, path in enumerate(files):
        rel = path.relative_to(top).as_posix()
        if progress:
            progress(k, len(files), rel)
        sha = file_sha256(path)
        old = by_source.get(sha)
        if old is not None and (library / old.path).is_file() and file_sha256(library / old.path) == old.sha256:
            result.skipped.append((rel, f"id {old.id}"))
            continue
        spdx, licence_from = licences(path)
        if spdx.strip().upper() == UNKNOWN_LICENCE and not allow_unknown_licence:
            result.refused.append(
                (
                    rel,
                    f"licence unknown (fix: add {path.stem}.licence.txt with its SPDX id, a {LICENCE_FILES[0]} line, "
                    f"or --licence SPDX; --allow-unknown-licence to import anyway)",
                )
            )
            continue
        aid = old.id if old is not None else _new_id(path, top, taken)
        out = library / f"{aid}.npz"
        try:
            side = path.with_name(path.stem + BONE_MAP_SUFFIX)
            file_map = load_bone_map(side) if side.is_file() else bone_map
            c = importer(path, out, rig=rig, height_m=height_m, bone_map=file_map)
        except UserError as exc:
            result.refused.append((rel, exc.one_line().replace(str(path), rel)))
            continue
        except Exception as exc:  # noqa: BLE001 - reported per file; the run goes on and exits non-zero
            result.failed.append((rel, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"))
            continue
        refs = texture_refs(c.materials)
        entry = CharacterEntry(
            id=aid,
            path=out.name,
            sha256=file_sha256(out),
            licence=spdx,
            source=f"{rel} (imported by thfm-synth assets import-characters)",
            format="npz",
            rig=str(c.meta.get("rig", rig)),
            height_m=round(float(c.height_m), 4),
            params={
                "import": {
                    "file": rel,
                    "file_sha256": sha,
                    "licence_from": licence_from,
                    "materials": [str(m["name"]) for m in c.materials],
                    "textures": sorted({r["sha256"] for _, _, r in refs}),
                    "vertices": int(len(c.vertices)),
                    "rescaled": c.meta.get("rescaled"),
                    "bone_map": dict(file_map) if file_map else None,
                }
            },
        )
        entries[aid] = entry
        taken.add(aid)
        by_source[sha] = entry
        manifest = manifest.model_copy(update={"characters": list(entries.values())})
        _write_manifest(manifest_path, manifest)
        result.imported.append(
            (
                rel,
                f"{aid} ({entry.rig} rig, {entry.height_m:.2f} m, {len(c.vertices)} vertices, "
                f"{len(entry.params['import']['textures'])} textures, {spdx})",
            )
        )
    if progress:
        progress(len(files), len(files), "")
    if created and not manifest_path.is_file():
        try:  # nothing imported into a folder this run made: leave no empty folder behind
            os.rmdir(library)
        except OSError:
            pass
    return result
