"""The asset library a dataset draws from: the built-in manifest plus the user's manifests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from thfm_synth.assets.manifest import KINDS, AssetEntry, LoadedManifest, load_manifest
from thfm_synth.errors import UserError

BUILTIN_MANIFEST = Path(__file__).resolve().parents[2] / "assets_manifest" / "builtin.yaml"


@dataclass
class Library:
    manifests: list[LoadedManifest]
    # kind -> entries sorted by id, so planning never depends on manifest order
    by_kind: dict[str, list[AssetEntry]] = field(default_factory=dict)
    _owner: dict[str, LoadedManifest] = field(default_factory=dict)

    def entry(self, asset_id: str) -> AssetEntry:
        for entries in self.by_kind.values():
            for e in entries:
                if e.id == asset_id:
                    return e
        raise UserError(f"asset {asset_id!r} is in no loaded manifest", "add its manifest with --manifest")

    def path_of(self, entry: AssetEntry) -> Path | None:
        return self._owner[entry.id].resolve(entry)

    def manifest_digests(self) -> dict[str, str]:
        return {m.manifest.name: m.digest for m in self.manifests}

    def licences(self) -> dict[str, str]:
        return {e.id: e.licence for entries in self.by_kind.values() for e in entries}


def load_library(manifest_paths: list[str | Path] | tuple = (), builtin: bool = True,
                 check_files: bool = True) -> Library:
    paths = ([BUILTIN_MANIFEST] if builtin else []) + [Path(p) for p in manifest_paths]
    if not paths:
        raise UserError("no asset library: the built-in library is off and no manifest was given",
                        "pass --manifest FILE or set assets.builtin: true")
    loaded = [load_manifest(p) for p in paths]
    lib = Library(manifests=loaded, by_kind={k: [] for k in KINDS})
    for m in loaded:
        for kind, entry in m.manifest.entries():
            if entry.id in lib._owner:
                other = lib._owner[entry.id].file
                raise UserError(f"asset id {entry.id!r} appears in both {other} and {m.file}",
                                "rename one of the entries so ids are unique")
            if check_files and entry.path is not None and not m.resolve(entry).exists():
                raise UserError(f"asset {entry.id!r} of manifest {m.file}: file {m.resolve(entry)} is missing",
                                "restore the file, fix its path, or re-scan with `thfm-synth assets scan`")
            lib._owner[entry.id] = m
            lib.by_kind[kind].append(entry)
    for kind in KINDS:
        lib.by_kind[kind].sort(key=lambda e: e.id)
    return lib
