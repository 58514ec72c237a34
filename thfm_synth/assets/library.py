"""The asset library a dataset draws from: the built-in manifest plus the user's manifests.

With `bodies` (the config's `character` section) at `backend: smplx`, the built-in manifest's anny
bodies are replaced by as many `format: smplx` bodies from the user's SMPL-X model folder
(`assets.builtin.smplx_characters`); the built-in manifest's digest then covers them, so a plan
records (and `plan_library` re-checks) which bodies it used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from thfm_synth.assets.manifest import KINDS, AssetEntry, CharacterEntry, LoadedManifest, load_manifest
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


def _with_smplx_bodies(m: LoadedManifest, bodies) -> LoadedManifest:
    import hashlib

    from thfm_synth.assets.builtin import smplx_characters
    from thfm_synth.assets.manifest import canonical_json
    from thfm_synth.assets.characters.smplx_model import available_genders

    available_genders(bodies.smplx_model_dir)  # a missing or wrong folder: one line naming the files
    manifest = m.manifest.model_copy(
        update={"characters": smplx_characters(bodies.smplx_model_dir, bodies.smplx_gender, bodies.smplx_texture_dir)}
    )
    digest = hashlib.sha256(canonical_json(manifest.model_dump(mode="json"))).hexdigest()
    return LoadedManifest(manifest=manifest, file=m.file, digest=digest)


def load_library(
    manifest_paths: list[str | Path] | tuple = (), builtin: bool = True, check_files: bool = True, bodies=None
) -> Library:
    """bodies: the config's CharacterSettings (None: anny built-in bodies)."""
    paths = ([BUILTIN_MANIFEST] if builtin else []) + [Path(p) for p in manifest_paths]
    if not paths:
        raise UserError(
            "no asset library: the built-in library is off and no manifest was given",
            "pass --manifest FILE or set assets.builtin: true",
        )
    loaded = [load_manifest(p) for p in paths]
    if builtin and bodies is not None and getattr(bodies, "backend", "anny") == "smplx":
        loaded[0] = _with_smplx_bodies(loaded[0], bodies)
    lib = Library(manifests=loaded, by_kind={k: [] for k in KINDS})
    for m in loaded:
        for kind, entry in m.manifest.entries():
            if entry.id in lib._owner:
                other = lib._owner[entry.id].file
                raise UserError(
                    f"asset id {entry.id!r} appears in both {other} and {m.file}",
                    "rename one of the entries so ids are unique",
                )
            if check_files and isinstance(entry, CharacterEntry) and entry.format == "smplx":
                from thfm_synth.assets.characters.smplx_model import available_genders

                available_genders(m.resolve(entry))  # names the expected model files if the folder is wrong
            elif check_files and entry.path is not None and not m.resolve(entry).exists():
                raise UserError(
                    f"asset {entry.id!r} of manifest {m.file}: file {m.resolve(entry)} is missing",
                    "restore the file, fix its path, or re-scan with `thfm-synth assets scan`",
                )
            lib._owner[entry.id] = m
            lib.by_kind[kind].append(entry)
    for kind in KINDS:
        lib.by_kind[kind].sort(key=lambda e: e.id)
    return lib
