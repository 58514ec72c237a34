"""Asset manifests: the schema of `assets_manifest/*.yaml` and how they load.

A manifest lists assets of five kinds - characters, motions, HDRIs, 3D scenes and
procedural skies. Every entry has an `id` (unique across all loaded manifests), a
`licence`, a `source` and a `sha256`:

* file assets: `path` is relative to the manifest's `root` (itself relative to the
  manifest file) and `sha256` is the file's digest (a folder's digest, for scene kits,
  is the digest of its sorted `relative-path sha256` lines);
* built-in assets (`path: null`): generated from `params` at run time, and `sha256` is
  the digest of the canonical JSON of `{kind, id, params}` so a changed generator
  setting is a changed asset.

The full field reference is in assets_manifest/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

# re-exported: manifests are where users meet digests
from thfm_synth.digests import content_sha256, file_sha256, folder_sha256  # noqa: F401
from thfm_synth.errors import ConfigError, UserError

SCHEMA_VERSION = 1
KINDS = ("characters", "motions", "hdris", "scenes", "skies")
UNKNOWN_LICENCE = "UNKNOWN"


class AssetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="unique asset id")
    path: str | None = Field(None, description="file or folder, relative to the manifest root; null = built-in")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="content digest (see module doc)")
    licence: str = Field(min_length=1, description="SPDX-style licence id, e.g. CC0-1.0")
    source: str = Field(min_length=1, description="where the asset came from")
    tags: tuple[str, ...] = Field((), description="free-form labels (walk, run, indoor, ...)")
    params: dict[str, Any] = Field(
        default_factory=dict, description="generator settings for built-ins; imported characters: the import record"
    )

    @model_validator(mode="after")
    def _inside_root(self):
        # An entry may not reach outside its manifest's root (a manifest copied from elsewhere must
        # not make a run read, hash and render arbitrary files of this machine). The one exception is
        # a `format: smplx` entry: it names the user's own SMPL-X model folder, which no manifest may
        # ship (licence), and its model files are checked by digest when a body is baked and posed.
        v = self.path
        if getattr(self, "format", None) == "smplx":
            return self
        if v is not None and (os.path.isabs(v) or os.path.normpath(v).split(os.sep)[0] == os.pardir or v == ""):
            raise ValueError(
                f"path {v!r} leaves the manifest's root folder; entry paths are relative to `root` and stay inside it"
            )
        return self

    @property
    def builtin(self) -> bool:
        return self.path is None


class CharacterEntry(AssetEntry):
    format: Literal["fbx", "glb", "gltf", "blend", "npz", "anny", "smplx"] = Field(
        description="file format; 'anny' = built-in parametric body generated from params; 'smplx' = SMPL-X body "
        "generated from params and the user's SMPL-X model files (path: their folder; sha256: digest of "
        "{kind, id, params} as for built-ins)"
    )
    rig: str = Field("auto", description="bone naming table: cmu_mb, mixamo, quaternius, biped, unreal, smplx, auto")
    height_m: float | None = Field(None, gt=0.3, lt=3.0, description="standing height, metres, if known")


class MotionEntry(AssetEntry):
    format: Literal["bvh", "builtin"] = "bvh"
    fps: float = Field(gt=0, le=1000, description="frames per second of the file")
    num_frames: int = Field(gt=0, description="frames of captured motion (a converter T-pose excluded)")
    skeleton: str = Field("cmu_mb", description="joint naming of the file")
    activity: tuple[float, ...] = Field((), description="per-second motion energy, for window selection")

    @property
    def duration_s(self) -> float:
        return self.num_frames / self.fps


class HdriEntry(AssetEntry):
    format: Literal["hdr", "exr"] = "hdr"
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class SceneEntry(AssetEntry):
    format: Literal["blend", "fbx", "glb", "gltf", "kit", "procedural"]
    scene_type: Literal["room", "street", "generic"] = "generic"


class SkyEntry(AssetEntry):
    pass


ENTRY_TYPES: dict[str, type[AssetEntry]] = {
    "characters": CharacterEntry,
    "motions": MotionEntry,
    "hdris": HdriEntry,
    "scenes": SceneEntry,
    "skies": SkyEntry,
}


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    description: str = ""
    root: str = Field(".", description="folder the entry paths are relative to (relative to this file)")
    characters: list[CharacterEntry] = []
    motions: list[MotionEntry] = []
    hdris: list[HdriEntry] = []
    scenes: list[SceneEntry] = []
    skies: list[SkyEntry] = []

    @field_validator(*KINDS)
    @classmethod
    def _unique_ids(cls, entries: list[AssetEntry]) -> list[AssetEntry]:
        seen: set[str] = set()
        for e in entries:
            if e.id in seen:
                raise ValueError(f"duplicate id {e.id!r}")
            seen.add(e.id)
        return entries

    def entries(self) -> list[tuple[str, AssetEntry]]:
        return [(kind, e) for kind in KINDS for e in getattr(self, kind)]


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def builtin_sha256(kind: str, entry_id: str, params: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"kind": kind, "id": entry_id, "params": params})).hexdigest()


class LoadedManifest(BaseModel):
    """A manifest with the absolute location it was read from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    manifest: Manifest
    file: Path
    digest: str

    @property
    def root(self) -> Path:
        return (self.file.parent / self.manifest.root).resolve()

    def resolve(self, entry: AssetEntry) -> Path | None:
        return None if entry.path is None else self.root / entry.path


def _format_validation(exc: ValidationError, where: str) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return f"{where}: " + "; ".join(problems) + more


def load_manifest(path: str | Path) -> LoadedManifest:
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"asset manifest {path} not found",
            "give an existing manifest path, or build one with `thfm-synth assets scan DIR --out FILE`",
        )
    raw_bytes = path.read_bytes()
    try:
        raw = yaml.safe_load(raw_bytes)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise UserError(
            f"asset manifest {path}{line} is not valid YAML",
            "fix the syntax or re-create it with `thfm-synth assets scan`",
        ) from None
    if not isinstance(raw, dict):
        raise UserError(
            f"asset manifest {path} is empty or not a mapping", "see assets_manifest/README.md for the schema"
        )
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(
            _format_validation(exc, f"asset manifest {path}"), "correct the entry (schema: assets_manifest/README.md)"
        ) from None
    digest = hashlib.sha256(canonical_json(manifest.model_dump(mode="json"))).hexdigest()
    return LoadedManifest(manifest=manifest, file=path.resolve(), digest=digest)


def dump_manifest(manifest: Manifest) -> str:
    data = manifest.model_dump(mode="json", exclude_defaults=False)
    for kind in KINDS:  # drop empty sections to keep files readable
        if not data[kind]:
            del data[kind]
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
