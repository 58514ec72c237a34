"""Wavefront `.obj` meshes as MakeHuman writes them (`v`, `vt`, `f v/vt ...`; quads, some triangles).

`read_obj(path)` returns an `ObjMesh`: positions in the file's own frame (MakeHuman: decimetres,
Y up, facing +Z), polygons fan-triangulated (a quad a b c d -> a b c, a c d, the split
MakeHuman's own exporters use), and per-corner texture coordinates. Normals, groups and
materials in the file are ignored (groups are read separately for `base.obj`, see
`read_obj_groups`). A missing or malformed file raises UserError naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.errors import UserError


@dataclass(frozen=True)
class ObjMesh:
    path: str
    vertices: np.ndarray  # (N, 3) float64, file units
    uv: np.ndarray  # (U, 2) float64 (empty (0, 2) if the file has none)
    faces: np.ndarray  # (F, 3) int64 triangles (fan-triangulated polygons)
    face_uv: np.ndarray  # (F, 3) int64 into uv (all 0 if the file has no vt)
    face_polygon: np.ndarray  # (F,) int64: index of the source polygon of each triangle


def bad_asset(path: Path, what: str) -> UserError:
    """The one error for a MakeHuman file that cannot be used (obj, mhclo, mhmat)."""
    return UserError(
        f"{path}: {what}",
        "restore the file from the MakeHuman asset release (thfm-synth assets fetch makehuman --dest DIR)",
    )


_bad = bad_asset


def read_asset_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise _bad(path, "file not found") from None
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror})") from None


def read_obj(path: str | Path) -> ObjMesh:
    path = Path(path)
    text = read_asset_text(path)
    verts, uvs, polys = [], [], []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("v "):
            verts.append(line[2:])
        elif line.startswith("vt "):
            uvs.append(line[3:])
        elif line.startswith("f "):
            polys.append((n, line[2:].split()))
    try:
        v = np.array(" ".join(verts).split(), np.float64)
        vt = np.array(" ".join(uvs).split(), np.float64)
    except ValueError:
        raise _bad(path, "holds a vertex or texture coordinate that is not a number") from None
    if len(verts) == 0 or v.size % len(verts) or v.size // len(verts) < 3:
        raise _bad(path, "has no vertices or malformed `v` lines")
    v = v.reshape(len(verts), -1)[:, :3]
    vt = vt.reshape(len(uvs), -1)[:, :2] if uvs else np.zeros((0, 2))
    if vt.shape[0] != len(uvs) or (uvs and vt.size != 2 * len(uvs)):
        raise _bad(path, "has malformed `vt` lines")
    if not np.isfinite(v).all() or not np.isfinite(vt).all():
        raise _bad(path, "holds non-finite coordinates")
    if not polys:
        raise _bad(path, "has no faces")
    tri_v, tri_t, tri_p = [], [], []
    for p, (n, toks) in enumerate(polys):
        if len(toks) < 3:
            raise _bad(path, f"line {n}: a face needs 3 or more corners")
        try:
            vi = [int(t.split("/")[0]) for t in toks]
            ti = [int(t.split("/")[1]) if "/" in t and t.split("/")[1] else 0 for t in toks]
        except ValueError:
            raise _bad(path, f"line {n}: malformed face corner") from None
        for k in range(1, len(toks) - 1):
            tri_v.append((vi[0], vi[k], vi[k + 1]))
            tri_t.append((ti[0], ti[k], ti[k + 1]))
            tri_p.append(p)
    f = np.asarray(tri_v, np.int64)
    ft = np.asarray(tri_t, np.int64)
    f = np.where(f < 0, f + len(v), f - 1)  # OBJ is 1-based; negative indices count from the end
    if f.min() < 0 or f.max() >= len(v):
        raise _bad(path, f"a face refers to vertex {int(f.max()) + 1} of {len(v)}")
    if len(vt):
        if (ft == 0).any():
            raise _bad(path, "some faces have texture coordinates and some do not")
        ft = np.where(ft < 0, ft + len(vt), ft - 1)
        if ft.min() < 0 or ft.max() >= len(vt):
            raise _bad(path, "a face refers to a texture coordinate past the `vt` list")
    else:
        ft = np.zeros_like(f)
    return ObjMesh(str(path), v, vt, f, ft, np.asarray(tri_p, np.int64))


def read_obj_groups(path: str | Path) -> dict[str, np.ndarray]:
    """Group name -> sorted vertex indices used by that group's faces (`g` lines)."""
    path = Path(path)
    groups: dict[str, set[int]] = {}
    current = None
    for line in read_asset_text(path).splitlines():
        if line.startswith("g "):
            current = groups.setdefault(line[2:].strip(), set())
        elif line.startswith("f ") and current is not None:
            current.update(int(t.split("/")[0]) - 1 for t in line[2:].split())
    return {k: np.array(sorted(s), np.int64) for k, s in groups.items()}
