"""Asset files are what their manifest says they are: checked when a run uses them.

`assets validate` checks a whole manifest on request; this module checks, for every video a
run renders, the files of the assets that video uses - its character, motion and background -
against their manifest sha256 before anything reads them. The digests come from a
`DigestCache` (in the render output folder for the farm), so each file is hashed once per run
however many videos use it, and again only if it changes. A mismatch fails the video as bad
input with one line naming the file and both digests; the digests actually read go to the
video's metadata.json (provenance is what was rendered, not what a manifest claimed).
"""

from __future__ import annotations

from pathlib import Path

from thfm_synth.assets.library import Library
from thfm_synth.assets.manifest import KINDS, builtin_sha256
from thfm_synth.digests import DigestCache
from thfm_synth.errors import UserError


class AssetMismatch(UserError):
    """An asset file is missing or its content differs from the manifest's sha256."""


def _kind_of(library: Library, asset_id: str) -> str:
    for kind in KINDS:
        if any(e.id == asset_id for e in library.by_kind.get(kind, ())):
            return kind
    raise UserError(f"asset {asset_id!r} is in no loaded manifest", "add its manifest with --manifest")


def verify_asset(library: Library, asset_id: str, digests: DigestCache) -> dict:
    """{"sha256": digest read, "path": file or None} of one asset, or AssetMismatch."""
    entry = library.entry(asset_id)
    path = library.path_of(entry)
    manifest = library._owner[entry.id].file
    generated = path is None or getattr(entry, "format", None) == "smplx"
    if generated:  # built-in: the digest is that of its generator settings, checked the same way (an
        # SMPL-X body's path is the user's model folder; its model files are checked by digest when the
        # body is baked and posed, characters/smplx_model.py)
        actual = builtin_sha256(_kind_of(library, asset_id), entry.id, entry.params)
        if actual != entry.sha256:
            raise AssetMismatch(
                f"built-in asset {entry.id!r} of {manifest}: params digest {actual} differs from "
                f"the manifest's sha256 {entry.sha256}",
                "regenerate the manifest entry",
            )
        return {"sha256": actual, "path": None if path is None else str(path)}
    if not Path(path).exists():
        raise AssetMismatch(
            f"asset file {path} ({entry.id!r} of {manifest}) is missing",
            "restore the file, or fix the manifest's path/root",
        )
    try:
        actual = digests.content_sha256(path)
    except OSError as exc:
        raise AssetMismatch(
            f"asset file {path} ({entry.id!r} of {manifest}) cannot be read ({exc.strerror})",
            "make it readable by the render workers",
        ) from None
    if actual != entry.sha256:
        raise AssetMismatch(
            f"asset file {path} ({entry.id!r}) does not match its manifest {manifest}: expected "
            f"sha256 {entry.sha256}, read {actual}",
            "restore the original file, or re-scan the manifest if the change is intended "
            "(`thfm-synth assets scan`) and plan again",
        )
    return {"sha256": actual, "path": str(path)}


def verify_video_assets(
    spec, library: Library, digests: DigestCache | None = None, extra: tuple[str, ...] = ()
) -> dict[str, dict]:
    """Check the characters, motions and background of one planned video, and the `extra` assets its
    scene reads (a room's furniture kit); {asset id: verify_asset(...)}."""
    digests = digests if digests is not None else DigestCache()
    out = {}
    people = [(p.character_id, p.motion_id) for p in getattr(spec, "others", ())]
    ids = (spec.character_id, spec.motion_id, spec.background_id, *(a for pair in people for a in pair), *extra)
    for asset_id in ids:
        if asset_id not in out:
            out[asset_id] = verify_asset(library, asset_id, digests)
    return out
