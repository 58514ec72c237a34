"""MakeHuman material files (`.mhmat`): colours, texture maps and a few shading switches.

`read_mhmat(path)` returns an `MhMaterial`. Texture paths are resolved against the file's folder
(MakeHuman also accepts paths relative to its data root, e.g. `data/...`; those are tried
against the asset folder root given as `root`). Maps we render: diffuse (base colour, its
alpha channel for transparent materials), normal (+ intensity), specular and transparency
maps; bump maps and ambient-occlusion maps are recorded but not rendered (Cycles computes
occlusion itself; the MakeHuman bump maps duplicate the diffuse alpha cards). A texture the
file names that does not exist is reported by `missing` (the caller decides whether that map
matters: a missing diffuse map is an error, a missing AO map is not).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from thfm_synth.assets.characters.makehuman.obj import bad_asset, read_asset_text

MAP_KEYS = {
    "diffuseTexture": "diffuse",
    "normalmapTexture": "normal",
    "specularmapTexture": "specular",
    "transparencymapTexture": "transparency",
    "bumpTexture": "bump",
    "aomapTexture": "ao",
    "displacementmapTexture": "displacement",
}
COLOUR_KEYS = ("ambientColor", "diffuseColor", "specularColor", "emissiveColor")
FLOAT_KEYS = (
    "shininess",
    "opacity",
    "translucency",
    "normalmapIntensity",
    "bumpmapIntensity",
    "aomapIntensity",
    "specularmapIntensity",
    "transparencymapIntensity",
    "sssRScale",
    "sssGScale",
    "sssBScale",
)
BOOL_KEYS = (
    "transparent",
    "alphaToCoverage",
    "backfaceCull",
    "shadeless",
    "sssEnabled",
    "castShadows",
    "receiveShadows",
    "depthless",
    "wireframe",
)


@dataclass(frozen=True)
class MhMaterial:
    path: str
    name: str
    colours: dict  # key -> (r, g, b) in [0, 1] (display values)
    values: dict  # key -> float
    flags: dict  # key -> bool
    maps: dict  # role (diffuse, normal, ...) -> absolute Path that exists
    missing: dict = field(default_factory=dict)  # role -> Path named by the file but absent

    def value(self, key: str, default: float) -> float:
        return float(self.values.get(key, default))

    def flag(self, key: str, default: bool = False) -> bool:
        return bool(self.flags.get(key, default))

    def colour(self, key: str, default=(1.0, 1.0, 1.0)) -> tuple:
        return tuple(self.colours.get(key, default))


_bad = bad_asset


def _resolve(rel: str, folder: Path, root: Path | None) -> Path:
    rel = rel.strip().replace("\\", "/")
    cands = [folder / rel]
    if root is not None:
        stripped = rel[5:] if rel.startswith("data/") else rel
        cands += [root / stripped, folder / Path(rel).name]
    else:
        cands.append(folder / Path(rel).name)
    for c in cands:
        if c.is_file():  # absolute but not resolved: a folder of symlinks stays that folder
            return Path(os.path.normpath(c.absolute()))
    return cands[0]


def read_mhmat(path: str | Path, root: str | Path | None = None) -> MhMaterial:
    path = Path(path)
    text = read_asset_text(path)
    name = path.stem
    colours, values, flags, maps, missing = {}, {}, {}, {}, {}
    rootp = Path(root) if root is not None else None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("//"):
            continue
        words = line.split()
        key, rest = words[0], words[1:]
        try:
            if key == "name":
                name = " ".join(rest)
            elif key in COLOUR_KEYS:
                c = tuple(float(x) for x in rest[:3])
                if len(c) != 3:
                    raise ValueError
                colours[key] = c
            elif key in FLOAT_KEYS:
                values[key] = float(rest[0])
            elif key in BOOL_KEYS:
                flags[key] = rest[0].lower() in ("true", "1", "yes")
            elif key in MAP_KEYS:
                p = _resolve(" ".join(rest), path.parent, rootp)
                (maps if p.is_file() else missing)[MAP_KEYS[key]] = p
        except (ValueError, IndexError):
            raise _bad(path, f"line {n}: malformed `{key}` value") from None
    return MhMaterial(str(path), name, colours, values, flags, maps, missing)
