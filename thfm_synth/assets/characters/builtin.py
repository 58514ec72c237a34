"""Build libraries of built-in bodies, and materialise built-in manifest entries.

* `build_characters(count, seed, out_dir, age_range)`: bakes characters 0..count-1 of
  `seed` into `out_dir/anny-<seed>-<i:05d>.npz` and writes `out_dir/manifest.yaml`
  (atomically) listing them as `format: npz` entries whose params record every sampled
  choice (phenotype and appearance).
* `bake_builtin(entry, cache_dir)`: a `format: anny` entry of the default library
  (params `{"generator": "anny", "seed": N, "age_range": "adult"}`, optional `index`,
  default 0) baked once into `cache_dir` under a name that holds the entry's sha256, the
  format/generator versions and the look (MakeHuman asset set or procedural), then reused.
  Entry seed N gives the same body as character 0 of `build_characters(..., seed=N)`.
  Textures go to `cache_dir/textures/` (content-addressed, shared by every cached body).
* SMPL-X bodies (the user's model files, smplx_body.py): `build_characters(..., backend="smplx",
  model_dir=DIR)` bakes `smplx-<seed>-<i:05d>.npz`; a `format: smplx` entry (path: the model
  folder; params `{"generator": "smplx", "seed": N, "index": i, "gender": "mixed",
  "texture_dir": null}`) is baked on first use like a built-in, cached under its sha256 and the
  digests of the model files. Their licence is the user's SMPL-X licence (non-commercial).

Built-in anny bodies are dressed with the MakeHuman assets when a MakeHuman folder is configured
(`$THFM_MAKEHUMAN` or the `thfm-synth assets fetch makehuman` location; see
characters/makehuman/assets.py), else keep the procedural look and warn once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from thfm_synth.assets.manifest import CharacterEntry, Manifest, dump_manifest, file_sha256
from thfm_synth.atomic import write_text
from thfm_synth.assets.characters.anny_body import (
    AGE_RANGES,
    GENERATOR_VERSION,
    LICENCE,
    bake_anny,
    look_tag,
    source_text,
)
from thfm_synth.assets.characters.format import FORMAT_VERSION, save_character
from thfm_synth.errors import UserError

BACKENDS = ("anny", "smplx")


def character_id(seed: int, index: int, backend: str = "anny") -> str:
    return f"{backend}-{seed}-{index:05d}"


def character_tags(params: dict) -> tuple[str, ...]:
    """Manifest tags of a built-in: age band, sex, and what it wears."""
    ph, app = params["phenotype"], params["appearance"]
    tags = {ph["age_band"], ph["sex"]}
    if app.get("source") == "makehuman":
        tags |= {"makehuman", app["outfit"]["asset"], app["skin"]["ancestry"]}
        tags.add(f"hair-{app['hair']['asset'] or 'none'}")
    else:
        tags |= {"procedural", app["top"]["type"], app["bottom"]["type"]}
    return tuple(sorted(tags))


def build_characters(
    count: int,
    seed: int,
    out_dir: str | Path,
    age_range: str = "adult",
    progress: Callable[[int, int, str], None] | None = None,
    backend: str = "anny",
    model_dir: str | Path | None = None,
    gender: str = "mixed",
    texture_dir: str | Path | None = None,
) -> Manifest:
    """Bake `count` built-in characters of `seed` into `out_dir` and write its manifest.yaml.

    backend "smplx" needs `model_dir` (the user's SMPL-X model files); `gender` (mixed, neutral,
    male, female) and `texture_dir` (SMPL-X UV textures instead of procedural clothes) apply to it."""
    if count < 1:
        raise UserError(f"character count {count} must be at least 1", "pass --count 1 or more")
    if backend not in BACKENDS:
        raise UserError(f"unknown body backend {backend!r}", f"use one of: {', '.join(BACKENDS)}")
    if backend == "smplx":
        return _build_smplx(count, seed, Path(out_dir), model_dir, gender, texture_dir, progress)
    if age_range not in AGE_RANGES:
        raise UserError(f"unknown age range {age_range!r}", f"use one of: {', '.join(AGE_RANGES)}")
    out_dir = Path(out_dir)
    entries = []
    for i in range(count):
        cid = character_id(seed, i)
        t0 = time.perf_counter()
        c = bake_anny(seed, i, age_range, character_id=cid)
        path = save_character(out_dir / f"{cid}.npz", c)
        source = source_text() + (
            "; dressed with CC0 MakeHuman system assets (makehumancommunity/makehuman-assets)"
            if "makehuman" in c.meta
            else ""
        )
        entries.append(
            CharacterEntry(
                id=cid,
                path=path.name,
                sha256=file_sha256(path),
                licence=LICENCE,
                source=source,
                tags=character_tags(c.meta["params"]),
                params=c.meta["params"],
                format="npz",
                rig="cmu_mb",
                height_m=round(c.height_m, 4),
            )
        )
        if progress is not None:
            progress(i + 1, count, f"{cid} {time.perf_counter() - t0:.2f}s")
    manifest = Manifest(
        name=f"anny-{seed}",
        root=".",
        description=f"{count} built-in anny characters, seed {seed}, ages {age_range} "
        f"(baked npz format v{FORMAT_VERSION}, generator v{GENERATOR_VERSION})",
        characters=entries,
    )
    write_text(
        out_dir / "manifest.yaml",
        "# Built by thfm-synth (thfm_synth.assets.characters.build_characters).\n" + dump_manifest(manifest),
        "character manifest",
    )
    return manifest


def _build_smplx(count: int, seed: int, out_dir: Path, model_dir, gender: str, texture_dir, progress) -> Manifest:
    from thfm_synth.assets.characters.smplx_body import GENERATOR_VERSION as SMPLX_VERSION, bake_smplx
    from thfm_synth.assets.characters.smplx_model import LICENCE as SMPLX_LICENCE, LICENCE_TEXT, available_genders

    if model_dir is None:
        raise UserError(
            "the smplx backend needs the folder of your SMPL-X model files",
            "pass --model-dir DIR (holding SMPLX_NEUTRAL.npz, SMPLX_MALE.npz, SMPLX_FEMALE.npz)",
        )
    available_genders(model_dir)  # a missing or wrong folder fails before anything is written
    entries = []
    for i in range(count):
        cid = character_id(seed, i, "smplx")
        t0 = time.perf_counter()
        c = bake_smplx(model_dir, seed, i, gender, texture_dir, character_id=cid)
        path = save_character(out_dir / f"{cid}.npz", c)
        phen = c.meta["params"]["phenotype"]
        app = c.meta["params"]["appearance"]
        tags = {phen["sex"], f"smplx-{c.meta['smplx']['gender']}", "smplx"}
        tags |= {"uv-texture"} if "texture" in app else {app["top"]["type"], app["bottom"]["type"]}
        entries.append(
            CharacterEntry(
                id=cid,
                path=path.name,
                sha256=file_sha256(path),
                licence=SMPLX_LICENCE,
                source=f"{c.meta['source']}; licence: {LICENCE_TEXT}",
                tags=tuple(sorted(tags)),
                params=c.meta["params"],
                format="npz",
                rig="smplx",
                height_m=round(c.height_m, 4),
            )
        )
        if progress is not None:
            progress(i + 1, count, f"{cid} {time.perf_counter() - t0:.2f}s")
    manifest = Manifest(
        name=f"smplx-{seed}",
        root=".",
        description=f"{count} SMPL-X characters, seed {seed}, gender {gender}, baked from the user's "
        f"SMPL-X model files (NON-COMMERCIAL SMPL-X licence: {LICENCE_TEXT}); baked npz "
        f"format v{FORMAT_VERSION}, generator v{SMPLX_VERSION}",
        characters=entries,
    )
    write_text(
        out_dir / "manifest.yaml",
        "# Built by thfm-synth (thfm_synth.assets.characters.build_characters, backend "
        "smplx).\n# The SMPL-X model files are the user's: SMPL-X licence, non-commercial research only.\n"
        + dump_manifest(manifest),
        "character manifest",
    )
    return manifest


def smplx_cache_path(entry: CharacterEntry, model_dir: str | Path, cache_dir: str | Path) -> Path:
    """Cache file of a `format: smplx` entry: its id and sha256, the model files' digests, the versions."""
    import hashlib

    from thfm_synth.assets.characters.smplx_body import GENERATOR_VERSION as SMPLX_VERSION
    from thfm_synth.assets.characters.smplx_model import available_genders, file_digest, find_model_file

    files = "".join(file_digest(find_model_file(model_dir, g)) for g in available_genders(model_dir))
    key = hashlib.sha256(files.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{entry.id}-{entry.sha256[:16]}-{key}-f{FORMAT_VERSION}s{SMPLX_VERSION}.npz"


def bake_smplx_entry(entry: CharacterEntry, model_dir: str | Path, cache_dir: str | Path) -> Path:
    """Path of the baked npz of a `format: smplx` entry (model_dir: its resolved path), baked on first use."""
    from thfm_synth.assets.characters.smplx_body import bake_smplx

    params = entry.params or {}
    if params.get("generator", "smplx") != "smplx":
        raise UserError(f"asset {entry.id!r}: unknown generator {params.get('generator')!r}", "use generator: smplx")
    try:
        seed, index = int(params["seed"]), int(params.get("index", 0))
    except (KeyError, TypeError, ValueError):
        raise UserError(f"asset {entry.id!r}: params.seed must be an integer", "set params.seed, e.g. 0") from None
    out = smplx_cache_path(entry, model_dir, cache_dir)
    if out.is_file():
        return out
    c = bake_smplx(
        model_dir, seed, index, params.get("gender", "mixed"), params.get("texture_dir"), character_id=entry.id
    )
    c.meta["entry_sha256"] = entry.sha256
    return save_character(out, c)


def builtin_cache_path(entry: CharacterEntry, cache_dir: str | Path) -> Path:
    """Cache file of a built-in entry: its id and digest, the format/generator versions and the
    look (`mh<asset set digest>` with a MakeHuman folder, `proc` without), so fetching the assets
    later, or another asset set, bakes the body again instead of reusing the old look."""
    return Path(cache_dir) / f"{entry.id}-{entry.sha256[:16]}-f{FORMAT_VERSION}g{GENERATOR_VERSION}-{look_tag()}.npz"


def bake_builtin(entry: CharacterEntry, cache_dir: str | Path) -> Path:
    """Path of the baked npz of a built-in (`format: anny`) entry, baking it on first use."""
    if entry.format != "anny" or entry.path is not None:
        raise UserError(
            f"asset {entry.id!r} is not a built-in anny character (format {entry.format})",
            "only entries with format: anny and path: null are generated",
        )
    params = entry.params or {}
    if params.get("generator", "anny") != "anny":
        raise UserError(f"asset {entry.id!r}: unknown generator {params.get('generator')!r}", "use generator: anny")
    try:
        seed = int(params["seed"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"asset {entry.id!r}: params.seed must be an integer", "set params.seed, e.g. 0") from None
    age_range = params.get("age_range", "adult")
    index = int(params.get("index", 0))
    out = builtin_cache_path(entry, cache_dir)
    if out.is_file():
        return out
    c = bake_anny(seed, index, age_range, character_id=entry.id)
    c.meta["entry_sha256"] = entry.sha256
    return save_character(out, c)


def character_npz(entry: CharacterEntry, file_path: str | Path | None, cache_dir: str | Path) -> Path:
    """The baked npz of any character entry, baking/importing it into `cache_dir` on first use.

    `file_path` is the entry's resolved file (`Library.path_of(entry)`; None for built-ins).
    format anny -> `bake_builtin`; smplx -> `bake_smplx_entry` (file_path: the model folder); npz -> the file itself; fbx/glb/gltf -> `import_character`
    with the entry's rig and height_m, cached under the entry id and sha256 (the file digest).
    """
    if entry.format == "anny":
        return bake_builtin(entry, cache_dir)
    if entry.format == "smplx":
        if file_path is None:
            raise UserError(
                f"asset {entry.id!r} (smplx) has no model folder",
                "set its path to the folder of your SMPL-X model files",
            )
        return bake_smplx_entry(entry, file_path, cache_dir)
    if file_path is None:
        raise UserError(f"asset {entry.id!r} ({entry.format}) has no file", "give the entry a path")
    file_path = Path(file_path)
    if entry.format == "npz":
        return file_path
    if entry.format in ("fbx", "glb", "gltf"):
        from thfm_synth.assets.characters.importer import import_character

        out = Path(cache_dir) / f"{entry.id}-{entry.sha256[:16]}-f{FORMAT_VERSION}.npz"
        if not out.is_file():
            import_character(file_path, out, rig=entry.rig, height_m=entry.height_m)
        return out
    raise UserError(
        f"asset {entry.id!r}: characters in .{entry.format} files are not supported",
        "export the character as FBX or glTF with its armature",
    )
