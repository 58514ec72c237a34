"""The MakeHuman asset folder: where it is, what it holds, and each file's provenance.

Location (first match): the `THFM_MAKEHUMAN` environment variable (a folder; set but missing
or incomplete is an error, never a silent fallback), else `default_dir()` =
`$XDG_CACHE_HOME/thfm-synth/makehuman` (default `~/.cache/thfm-synth/makehuman`), which is
where `thfm-synth assets fetch makehuman` puts it (used once the fetch has finished, i.e.
written its MANIFEST.tsv). `makehuman_dir()` returns None when neither
holds a folder; built-in characters then keep the procedural look (anny_body.py).

Layout (MakeHuman 1.x system assets; the shared test folder and a fetched folder agree)::

    3dobjs/base.obj                      hm08 base mesh with helpers (proxies are fitted to it)
    skins/<age>_<ancestry>_<sex>/*.mhmat  + skins/textures/*.png (diffuse)
    clothes/<name>/<name>.mhclo|.obj|.mhmat + textures   (shoesNN are shoes, the rest outfits)
    hair/<name>/, eyebrows/<name>/, eyelashes/<name>/    .mhclo + .obj + .mhmat + RGBA card
    eyes/high-poly/high-poly.mhclo + eyes/materials/<colour>.mhmat
    teeth/teeth_base/teeth_base.mhclo + teeth/materials/teeth.mhmat
    MANIFEST.tsv                          optional: per-file source, commit, sha256, notes

`AssetFolder(root)` lists these (sorted, so choices by index are stable), parses files once
per process (`proxy`, `mesh`, `material`) and answers `provenance(path)`: the relative path,
the file's sha256 (computed, memoised by size and mtime), licence CC0-1.0 and the manifest's
note (e.g. a 512-px stand-in for a full-resolution original).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from thfm_synth.assets.characters.makehuman.mhclo import Proxy, read_mhclo
from thfm_synth.assets.characters.makehuman.mhmat import MhMaterial, read_mhmat
from thfm_synth.assets.characters.makehuman.obj import ObjMesh, read_obj
from thfm_synth.errors import UserError

ENV = "THFM_MAKEHUMAN"
LICENCE = "CC0-1.0"
FETCH_COMMAND = "thfm-synth assets fetch makehuman --dest ~/.cache/thfm-synth/makehuman"
REQUIRED = ("3dobjs/base.obj", "skins", "clothes", "hair", "eyebrows", "eyelashes", "eyes", "teeth")
AGES = ("young", "middleage", "old")
ANCESTRIES = ("african", "asian", "caucasian")
SEXES = ("female", "male")


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "thfm-synth" / "makehuman"


def _absolute(path: str | Path) -> Path:
    """Absolute and normalised, symlinks kept (a folder of links to another stays itself)."""
    return Path(os.path.normpath(Path(path).expanduser().absolute()))


def missing_parts(root: Path) -> list[str]:
    return [p for p in REQUIRED if not (root / p).exists()]


def makehuman_dir() -> Path | None:
    """The MakeHuman folder to use, or None (see the module doc)."""
    env = os.environ.get(ENV)
    if env:
        root = Path(env).expanduser()
        gone = missing_parts(root)
        if gone:
            raise UserError(
                f"{ENV}={env}: the MakeHuman folder lacks {', '.join(gone)}",
                f"point {ENV} at a complete folder or fetch one ({FETCH_COMMAND})",
            )
        return _absolute(root)
    root = default_dir()
    # the fetch writes MANIFEST.tsv last: without it the download is unfinished
    done = root.is_dir() and not missing_parts(root) and (root / "MANIFEST.tsv").is_file()
    return _absolute(root) if done else None


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | Path) -> str:
    """sha256 of a file, memoised per process by (path, size, mtime)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise UserError(f"{p}: file not found", f"restore the MakeHuman folder ({FETCH_COMMAND})") from None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


@dataclass(frozen=True)
class SkinAsset:
    key: str  # e.g. young_african_female
    age: str
    ancestry: str
    sex: str
    mhmat: Path


class AssetFolder:
    """A MakeHuman folder (see the module doc); parsed files are cached on the instance."""

    _instances: dict[str, "AssetFolder"] = {}

    def __init__(self, root: str | Path):
        self.root = _absolute(root)
        gone = missing_parts(self.root)
        if gone:
            raise UserError(
                f"MakeHuman folder {self.root} lacks {', '.join(gone)}",
                f"fetch the assets again ({FETCH_COMMAND}) or point {ENV} at a complete folder",
            )
        self._proxies: dict[str, Proxy] = {}
        self._meshes: dict[str, ObjMesh] = {}
        self._materials: dict[str, MhMaterial] = {}

    @classmethod
    def get(cls, root: str | Path) -> "AssetFolder":
        key = str(_absolute(root))
        if key not in cls._instances:
            cls._instances[key] = cls(key)
        return cls._instances[key]

    # ------------------------------------------------------------------ catalogue
    @property
    def base_obj(self) -> Path:
        return self.root / "3dobjs" / "base.obj"

    def _proxies_in(self, folder: str) -> dict[str, Path]:
        out = {}
        for d in sorted((self.root / folder).iterdir()):
            if d.is_dir():
                files = sorted(d.glob("*.mhclo"))
                if files:
                    out[d.name] = files[0]
        return out

    @cached_property
    def skins(self) -> dict[str, SkinAsset]:
        out = {}
        for d in sorted((self.root / "skins").iterdir()):
            parts = d.name.split("_")
            mats = sorted(d.glob("*.mhmat"))
            if (
                d.is_dir()
                and mats
                and len(parts) == 3
                and parts[0] in AGES
                and parts[1] in ANCESTRIES
                and parts[2] in SEXES
            ):
                out[d.name] = SkinAsset(d.name, parts[0], parts[1], parts[2], mats[0])
        if not out:
            raise UserError(
                f"{self.root / 'skins'} holds no <age>_<ancestry>_<sex> skins",
                f"fetch the assets again ({FETCH_COMMAND})",
            )
        return out

    @cached_property
    def outfits(self) -> dict[str, Path]:
        return {k: v for k, v in self._proxies_in("clothes").items() if not k.startswith("shoes")}

    @cached_property
    def shoes(self) -> dict[str, Path]:
        return {k: v for k, v in self._proxies_in("clothes").items() if k.startswith("shoes")}

    @cached_property
    def hair(self) -> dict[str, Path]:
        return self._proxies_in("hair")

    @cached_property
    def eyebrows(self) -> dict[str, Path]:
        return self._proxies_in("eyebrows")

    @cached_property
    def eyelashes(self) -> dict[str, Path]:
        return self._proxies_in("eyelashes")

    @cached_property
    def eye_materials(self) -> dict[str, Path]:
        return {p.stem: p for p in sorted((self.root / "eyes" / "materials").glob("*.mhmat"))}

    @property
    def eyes(self) -> Path:
        return self.root / "eyes" / "high-poly" / "high-poly.mhclo"

    @property
    def teeth(self) -> Path:
        return self.root / "teeth" / "teeth_base" / "teeth_base.mhclo"

    def check_catalogue(self) -> None:
        for name, table in (
            ("outfits", self.outfits),
            ("shoes", self.shoes),
            ("hair", self.hair),
            ("eyebrows", self.eyebrows),
            ("eyelashes", self.eyelashes),
            ("eye materials", self.eye_materials),
        ):
            if not table:
                raise UserError(
                    f"MakeHuman folder {self.root} holds no {name}", f"fetch the assets again ({FETCH_COMMAND})"
                )

    # ------------------------------------------------------------------ parsed files
    def proxy(self, path: str | Path) -> Proxy:
        key = str(Path(path))
        if key not in self._proxies:
            self._proxies[key] = read_mhclo(path)
        return self._proxies[key]

    def mesh(self, path: str | Path) -> ObjMesh:
        key = str(Path(path))
        if key not in self._meshes:
            self._meshes[key] = read_obj(path)
        return self._meshes[key]

    def material(self, path: str | Path) -> MhMaterial:
        key = str(Path(path))
        if key not in self._materials:
            self._materials[key] = read_mhmat(path, self.root)
        return self._materials[key]

    # ------------------------------------------------------------------ provenance
    @cached_property
    def manifest_notes(self) -> dict[str, dict]:
        path = self.root / "MANIFEST.tsv"
        if not path.is_file():
            return {}
        with open(path, newline="", encoding="utf-8") as fh:
            return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t") if row.get("file")}

    def relative(self, path: str | Path) -> str:
        p = _absolute(path)
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def provenance(self, path: str | Path) -> dict:
        rel = self.relative(path)
        row = self.manifest_notes.get(rel, {})
        out = {"file": rel, "sha256": file_digest(path), "licence": LICENCE}
        if row.get("source_repo"):
            out["source"] = f"{row['source_repo']}@{row.get('commit', '')[:12]}:{row.get('source_path', '')}"
        note = row.get("note", "")
        if "LOW-RES" in note.upper():
            out["note"] = "512-px stand-in for the full-resolution CC0 original (fetch makehuman to replace)"
        return out

    @cached_property
    def identity(self) -> str:
        """A short digest naming this asset set (its manifest, else its file list and sizes)."""
        h = hashlib.sha256()
        manifest = self.root / "MANIFEST.tsv"
        if manifest.is_file():
            h.update(manifest.read_bytes())
        else:
            for p in sorted(self.root.rglob("*")):
                if p.is_file():
                    h.update(f"{p.relative_to(self.root).as_posix()} {p.stat().st_size}\n".encode())
        return h.hexdigest()[:12]
