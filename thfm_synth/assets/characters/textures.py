"""Content-addressed texture store beside baked characters, and texture checks.

A baked character never holds an absolute texture path. Its materials (materials.py) refer
to images as `{"path": "textures/<sha256>.<ext>", "sha256": "<sha256>"}`, the path relative
to the folder of the character's npz. Every character of a folder shares that folder's
`textures/` store (one copy per distinct image), so a character library is self-contained:
copy the folder (npz files, manifest.yaml, textures/) to another node and `verify_folder`
checks every reference and digest there.

* `texture_ref(src)` -> the reference of an image file (its digest is computed, memoised);
* `store_textures(folder, sources)` copies images into `folder/textures/` atomically
  (temporary file, digest checked, rename), skipping ones already present and intact;
* `resolve_texture(npz, ref)` -> absolute path, digest verified (memoised by size and mtime);
  a missing or altered file is a UserError naming it and the fix;
* `check_image(path)` verifies an image's structure (or decodes it) once and raises UserError
  if it cannot be read; `image_rgba(path, size)` decodes it and returns a small float copy
  (linear RGB + alpha) for statistics.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from thfm_synth.errors import UserError

STORE = "textures"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".tga", ".tif", ".tiff", ".bmp", ".exr", ".hdr", ".webp")


def _digest(path: Path) -> str:
    from thfm_synth.assets.characters.makehuman.assets import file_digest

    return file_digest(path)


def texture_ref(src: str | Path) -> dict:
    src = Path(src)
    ext = src.suffix.lower()
    if ext not in EXTENSIONS:
        raise UserError(
            f"texture {src}: unsupported image type {ext or '(none)'}", f"convert it to one of {', '.join(EXTENSIONS)}"
        )
    sha = _digest(src)
    return {"path": f"{STORE}/{sha}{ext}", "sha256": sha}


def is_ref(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("path"), str) and isinstance(value.get("sha256"), str)


def store_textures(folder: str | Path, sources: dict[str, str | Path]) -> list[Path]:
    """Copy `{sha256: source file}` into `folder/textures/` (see module doc); returns the stored paths."""
    folder = Path(folder)
    out = []
    for sha, src in sorted(sources.items()):
        src = Path(src)
        dest = folder / STORE / f"{sha}{src.suffix.lower()}"
        if dest.is_file() and _digest(dest) == sha:
            out.append(dest)
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            try:
                shutil.copyfile(src, tmp)
                got = _digest(tmp)
                if got != sha:
                    raise UserError(
                        f"texture {src} changed while it was copied (sha256 {got}, expected {sha})",
                        "make sure nothing writes to the asset folder, then build again",
                    )
                os.replace(tmp, dest)
            finally:
                if tmp.exists():
                    tmp.unlink()
        except OSError as exc:
            raise UserError(
                f"cannot store texture {src} in {dest.parent}: {exc.strerror}",
                "choose a writable output folder with free space",
            ) from None
        out.append(dest)
    return out


def resolve_texture(npz_path: str | Path, ref: dict, verify: bool = True) -> Path:
    """Absolute path of a texture reference of the character at `npz_path`, digest checked."""
    npz_path = Path(npz_path)
    path = (npz_path.parent / ref["path"]).resolve()
    fix = (
        f"copy the character folder together with its {STORE}/ folder, or bake the character again "
        f"(delete {npz_path.name})"
    )
    if not path.is_file():
        raise UserError(f"texture {path} of character {npz_path} is missing", fix)
    if verify and _digest(path) != ref["sha256"]:
        raise UserError(
            f"texture {path} of character {npz_path} does not match its sha256 {ref['sha256'][:16]}...", fix
        )
    return path


_CHECKED: dict[str, tuple[int, int, int]] = {}
_SMALL: dict[tuple[str, int], np.ndarray] = {}


_VERIFIED: set[str] = set()


def check_image(path: str | Path, decode: bool = False, size: int = 256) -> None:
    """Raise a UserError naming an image that cannot be read.

    Without `decode` the file's structure is verified (PIL `verify`: every chunk and its CRC,
    cheap); with it the image is decoded in full, keeping a small linear copy for `image_rgba`.
    Both are memoised by digest."""
    path = Path(path)
    sha = _digest(path)
    if sha in _CHECKED and (not decode or (sha, size) in _SMALL):
        return
    if not decode and sha in _VERIFIED:
        return
    from PIL import Image

    try:
        with Image.open(path) as im:
            if not decode:
                im.verify()
                _VERIFIED.add(sha)
                return
            im.load()
            _CHECKED[sha] = (im.width, im.height, len(im.getbands()))
            small = im.convert("RGBA").resize((size, size), Image.Resampling.BOX)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the same thing
        raise UserError(
            f"texture {path} cannot be read as an image ({type(exc).__name__}: {exc})",
            "restore the file from the MakeHuman asset release (thfm-synth assets fetch makehuman --dest DIR)",
        ) from None
    a = np.asarray(small, np.float32) / 255.0
    rgb = a[..., :3]
    a[..., :3] = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    _SMALL[(sha, size)] = a


def image_rgba(path: str | Path, size: int = 256) -> np.ndarray:
    """(size, size, 4) float32: linear RGB (sRGB decoded) and alpha in [0, 1]; row 0 = top (v = 1)."""
    path = Path(path)
    check_image(path, decode=True, size=size)
    return _SMALL[(_digest(path), size)]


def sample_texture(img: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Nearest-texel lookup of (N, 2) UVs (v up, wrapped) in an (H, W, C) image."""
    h, w = img.shape[:2]
    u = np.mod(np.asarray(uv)[:, 0], 1.0)
    v = np.mod(np.asarray(uv)[:, 1], 1.0)
    col = np.minimum((u * w).astype(np.int64), w - 1)
    row = np.minimum(((1.0 - v) * h).astype(np.int64), h - 1)
    return img[row, col]


def verify_folder(folder: str | Path) -> dict:
    """Check every texture reference of every character npz in `folder`; returns counts."""
    import json

    folder = Path(folder)
    refs = checked = 0
    for npz in sorted(folder.glob("*.npz")):
        with np.load(npz, allow_pickle=False) as z:
            mats = json.loads(str(z["materials_json"])) if "materials_json" in z.files else []
        for m in mats:
            for key, value in m.items():
                if is_ref(value):
                    refs += 1
                    resolve_texture(npz, value)
                    checked += 1
    return {"characters": len(list(folder.glob("*.npz"))), "references": refs, "verified": checked}
