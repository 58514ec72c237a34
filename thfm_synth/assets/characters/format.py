"""The baked character file (`.npz`, `allow_pickle=False`): read, write, validate.

The format is documented in `thfm_synth/assets/characters/__init__.py`; `blender_scripts/
character_load.py` reads the same keys with numpy 1.26 and must stay in step with it.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thfm_synth.atomic import atomic_path
from thfm_synth.errors import UserError

FORMAT_VERSION = 2  # 2: textures by reference into the folder's texture store (textures.py)
READABLE_VERSIONS = (1, 2)
# Skin weights are whole multiples of 1/WEIGHT_QUANTUM that sum to exactly 1, so a loader can add
# each bone's vertices to its vertex group in a few calls per distinct weight (no per-vertex loop).
WEIGHT_QUANTUM = 4096
MAX_INFLUENCES = 8

ARRAY_KEYS = (
    "vertices",
    "faces",
    "uv",
    "face_uv",
    "joint_names",
    "joint_source_names",
    "joint_parents",
    "joint_heads",
    "joint_tails",
    "joint_rest_rotations",
    "skin_indices",
    "skin_weights",
    "vertex_garment",
    "face_material",
    "vertex_part",
    "vertex_part_uv",
    "vertex_canonical",
    "canonical_min",
    "canonical_max",
    "face_part",
    "corner_part_uv",
)


@dataclass
class Character:
    vertices: np.ndarray  # (V, 3) float32, rest pose, world frame, metres
    faces: np.ndarray  # (F, 3) int32 triangles, counter-clockwise seen from outside
    uv: np.ndarray  # (U, 2) float32 texture coordinates
    face_uv: np.ndarray  # (F, 3) int32 indices into uv, per face corner
    joint_names: list[str]
    joint_source_names: list[str]
    joint_parents: np.ndarray  # (J,) int32, -1 = root; parents come before children
    joint_heads: np.ndarray  # (J, 3) float32
    joint_tails: np.ndarray  # (J, 3) float32
    joint_rest_rotations: np.ndarray  # (J, 3, 3) float32 bone-to-world; column 1 = head->tail
    skin_indices: np.ndarray  # (V, K) int16
    skin_weights: np.ndarray  # (V, K) float32, rows sum to 1, descending
    vertex_garment: np.ndarray  # (V,) int16: 0 = body, g > 0 = garments[g - 1]
    face_material: np.ndarray  # (F,) int16 index into materials
    vertex_part: np.ndarray  # (V,) uint8 1..24
    vertex_part_uv: np.ndarray  # (V, 2) float32
    vertex_canonical: np.ndarray  # (V, 3) float32
    canonical_min: np.ndarray  # (3,) float32
    canonical_max: np.ndarray  # (3,) float32
    face_part: np.ndarray  # (F,) uint8
    corner_part_uv: np.ndarray  # (F, 3, 2) float32
    materials: list[dict] = field(default_factory=list)
    garments: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    # sha256 -> image file for the texture references of `materials` that are not yet in the
    # store beside the npz; save_character copies them there (not part of the npz)
    textures: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def height_m(self) -> float:
        return float(self.vertices[:, 2].max() - self.vertices[:, 2].min())

    def joint(self, name: str) -> int:
        return self.joint_names.index(name)


def quantize_weights(
    indices: np.ndarray, weights: np.ndarray, k: int = MAX_INFLUENCES, quantum: int = WEIGHT_QUANTUM
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-k, normalised, quantised skin weights.

    indices/weights: (V, N) any N (weights >= 0). Returns (indices (V, k') int16, weights (V, k')
    float32, unweighted (V,) bool) with k' = min(k, N): per vertex the k largest weights,
    rounded to multiples of 1/quantum by largest remainder so each row sums to exactly 1, sorted
    descending; padding entries have index 0 and weight 0. Vertices whose weights are all zero
    are reported in `unweighted` (their row is left all-zero).
    """
    indices = np.asarray(indices, np.int64)
    weights = np.asarray(weights, np.float64).clip(min=0.0)
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    w = np.take_along_axis(weights, order, 1)
    ix = np.take_along_axis(indices, order, 1)
    total = w.sum(1, keepdims=True)
    unweighted = total[:, 0] <= 0
    w = np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)
    scaled = w * quantum
    q = np.floor(scaled).astype(np.int64)
    short = np.where(unweighted, 0, quantum - q.sum(1))
    rem = scaled - q
    rank = np.argsort(np.argsort(-rem, axis=1, kind="stable"), axis=1, kind="stable")
    q += rank < short[:, None]
    order2 = np.argsort(-q, axis=1, kind="stable")
    q = np.take_along_axis(q, order2, 1)
    ix = np.take_along_axis(ix, order2, 1)
    ix = np.where(q > 0, ix, 0)
    keep = max(1, int((q > 0).sum(1).max())) if len(q) else 1
    return ix[:, :keep].astype(np.int16), (q[:, :keep] / quantum).astype(np.float32), unweighted


def _json_array(obj) -> np.ndarray:
    return np.array(json.dumps(obj, sort_keys=True, ensure_ascii=True))


def save_character(path: str | Path, c: Character) -> Path:
    """Write `c` atomically as a compressed npz (no pickles) after validating it.

    The textures its materials reference are stored first (`path.parent/textures/`, see
    textures.py), so a written npz never refers to a texture that is not there.
    """
    from thfm_synth.assets.characters.materials import texture_refs
    from thfm_synth.assets.characters.textures import store_textures

    path = Path(path)
    validate_character(c, str(path))
    refs = texture_refs(c.materials)
    missing = {
        r["sha256"] for _, _, r in refs if r["sha256"] not in c.textures and not (path.parent / r["path"]).is_file()
    }
    if missing:
        raise UserError(
            f"{path}: materials refer to {len(missing)} texture(s) that are neither given nor stored",
            "this is a bug in the baker: report it",
        )
    if refs:
        store_textures(
            path.parent, {r["sha256"]: c.textures[r["sha256"]] for _, _, r in refs if r["sha256"] in c.textures}
        )
    arrays = {
        "format_version": np.array(FORMAT_VERSION, np.int32),
        "vertices": np.asarray(c.vertices, np.float32),
        "faces": np.asarray(c.faces, np.int32),
        "uv": np.asarray(c.uv, np.float32),
        "face_uv": np.asarray(c.face_uv, np.int32),
        "joint_names": np.array(c.joint_names, dtype=str),
        "joint_source_names": np.array(c.joint_source_names, dtype=str),
        "joint_parents": np.asarray(c.joint_parents, np.int32),
        "joint_heads": np.asarray(c.joint_heads, np.float32),
        "joint_tails": np.asarray(c.joint_tails, np.float32),
        "joint_rest_rotations": np.asarray(c.joint_rest_rotations, np.float32),
        "skin_indices": np.asarray(c.skin_indices, np.int16),
        "skin_weights": np.asarray(c.skin_weights, np.float32),
        "vertex_garment": np.asarray(c.vertex_garment, np.int16),
        "face_material": np.asarray(c.face_material, np.int16),
        "vertex_part": np.asarray(c.vertex_part, np.uint8),
        "vertex_part_uv": np.asarray(c.vertex_part_uv, np.float32),
        "vertex_canonical": np.asarray(c.vertex_canonical, np.float32),
        "canonical_min": np.asarray(c.canonical_min, np.float32),
        "canonical_max": np.asarray(c.canonical_max, np.float32),
        "face_part": np.asarray(c.face_part, np.uint8),
        "corner_part_uv": np.asarray(c.corner_part_uv, np.float32),
        "materials_json": _json_array(c.materials),
        "garments_json": _json_array(c.garments),
        "meta_json": _json_array(c.meta),
    }
    with atomic_path(path, "baked character") as tmp:
        write_npz(tmp, arrays)
    return path


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez_compressed` with fixed zip timestamps, so equal arrays give byte-identical files.

    zlib level 1: a dressed character saves 2.5x faster than at level 6 for 2% more bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            zf.writestr(info, buf.getvalue(), compresslevel=1)


def load_character(path: str | Path) -> Character:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"baked character {path} not found", "bake it again (thfm-synth characters build/import)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise UserError(
            f"baked character {path} is not a readable npz ({exc.__class__.__name__})", "delete it and bake it again"
        ) from None
    version = int(data.get("format_version", -1))
    if version not in READABLE_VERSIONS:
        raise UserError(
            f"baked character {path} has format version {version}, this code reads "
            f"{', '.join(map(str, READABLE_VERSIONS))}",
            "delete it and bake it again",
        )
    missing = [k for k in ARRAY_KEYS if k not in data]
    if missing:
        raise UserError(f"baked character {path} lacks arrays {', '.join(missing)}", "delete it and bake it again")
    kw = {k: data[k] for k in ARRAY_KEYS}
    kw["joint_names"] = [str(s) for s in kw["joint_names"]]
    kw["joint_source_names"] = [str(s) for s in kw["joint_source_names"]]
    return Character(
        **kw,
        materials=json.loads(str(data["materials_json"])),
        garments=json.loads(str(data["garments_json"])),
        meta=json.loads(str(data["meta_json"])),
    )


def validate_character(c: Character, where: str = "character") -> None:
    """Raise UserError on the first broken invariant of the format (see the package docstring)."""

    def bad(what: str) -> None:
        raise UserError(f"{where}: {what}", "this is a bug in the baker or a corrupt file: bake it again")

    v = np.asarray(c.vertices)
    nv, nf, nj = len(v), len(c.faces), len(c.joint_names)
    if v.ndim != 2 or v.shape[1] != 3 or nv == 0 or not np.isfinite(v).all():
        bad("vertices must be a finite (V, 3) array")
    f = np.asarray(c.faces)
    if f.ndim != 2 or f.shape[1] != 3 or nf == 0 or f.min() < 0 or f.max() >= nv:
        bad("faces must be (F, 3) triangles indexing the vertices")
    if np.asarray(c.face_uv).shape != (nf, 3) or (len(c.uv) and np.asarray(c.face_uv).max() >= len(c.uv)):
        bad("face_uv must be (F, 3) indices into uv")
    if len(c.joint_source_names) != nj or np.asarray(c.joint_parents).shape != (nj,):
        bad("joint arrays disagree in length")
    parents = np.asarray(c.joint_parents)
    if parents[0] != -1 or (parents[1:] < 0).any() or (parents[1:] >= np.arange(1, nj)).any():
        bad("joints must be ordered parents-before-children with a single root at index 0")
    if len(set(c.joint_names)) != nj:
        bad("joint names must be unique")
    for key, shape in (("joint_heads", (nj, 3)), ("joint_tails", (nj, 3)), ("joint_rest_rotations", (nj, 3, 3))):
        if np.asarray(getattr(c, key)).shape != shape:
            bad(f"{key} must have shape {shape}")
    r = np.asarray(c.joint_rest_rotations, np.float64)
    if np.abs(r.transpose(0, 2, 1) @ r - np.eye(3)).max() > 1e-4 or (np.linalg.det(r) < 0).any():
        bad("joint_rest_rotations must be rotation matrices")
    si, sw = np.asarray(c.skin_indices), np.asarray(c.skin_weights)
    if si.shape != sw.shape or si.shape[0] != nv or si.min() < 0 or si.max() >= nj:
        bad("skin_indices/skin_weights must be (V, K) with valid joint indices")
    sums = sw.sum(1)
    if (sw < 0).any() or np.abs(sums - 1.0).max() > 1e-4:
        n_bad = int((np.abs(sums - 1.0) > 1e-4).sum())
        bad(f"{n_bad} vertices have skin weights that do not sum to 1 (unweighted vertices)")
    for key, shape in (
        ("vertex_garment", (nv,)),
        ("face_material", (nf,)),
        ("vertex_part", (nv,)),
        ("vertex_part_uv", (nv, 2)),
        ("vertex_canonical", (nv, 3)),
        ("face_part", (nf,)),
        ("corner_part_uv", (nf, 3, 2)),
    ):
        if np.asarray(getattr(c, key)).shape != shape:
            bad(f"{key} must have shape {shape}")
    if np.asarray(c.face_material).max() >= max(len(c.materials), 1) or np.asarray(c.face_material).min() < 0:
        bad("face_material indexes past the material table")
    part = np.asarray(c.vertex_part)
    if part.min() < 1 or part.max() > 24:
        bad("vertex_part must be in 1..24")
    for key in ("vertex_part_uv", "vertex_canonical", "corner_part_uv"):
        a = np.asarray(getattr(c, key))
        if a.min() < 0.0 or a.max() > 1.0:
            bad(f"{key} must lie in [0, 1]")
