"""MakeHuman proxy files (`.mhclo`): how a garment, hairstyle, eyebrow set, eyes or teeth mesh
is bound to the hm08 base mesh.

One line per proxy vertex after `verts 0`, in the order of the proxy's `.obj` vertices:

* `r0 r1 r2 w0 w1 w2 d0 d1 d2`: three base-mesh vertex indices, their weights and an offset
  (base-mesh units and axes: decimetres, Y up);
* `r0`: the vertex sits exactly on base-mesh vertex r0 (weight 1, no offset).

`x_scale a b s` (likewise y, z) scales the offset's axis by |V[a] - V[b]| / s on that axis of the
body being dressed, so the standard fit is `sum_i w_i V[r_i] + offset * (sx, sy, sz)` (see
fitting.py). `delete_verts` lists base-mesh vertices (single indices and `a - b` ranges,
inclusive) hidden under the proxy. Also read: `name`, `uuid`, `obj_file`, `material`,
`z_depth`, `tag`s and `basemesh`; other keys are kept in `extra`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thfm_synth.assets.characters.makehuman.obj import bad_asset, read_asset_text
from thfm_synth.errors import UserError

HM08_VERTICES = 19158  # vertices of MakeHuman's hm08 base mesh (3dobjs/base.obj), helpers included


@dataclass(frozen=True)
class Proxy:
    path: str
    name: str
    uuid: str
    obj_file: str  # relative to the .mhclo's folder
    material: str | None  # .mhmat, relative to the .mhclo's folder
    ref_vertices: np.ndarray  # (N, 3) int64 base-mesh indices
    weights: np.ndarray  # (N, 3) float64
    offsets: np.ndarray  # (N, 3) float64, base-mesh units/axes before axis scaling
    scale_refs: tuple  # ((a, b, s) or None) for x, y, z
    delete_verts: np.ndarray  # (D,) int64 sorted base-mesh indices
    z_depth: int = 50
    tags: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return Path(self.path).parent

    @property
    def obj_path(self) -> Path:
        return self.folder / self.obj_file

    @property
    def material_path(self) -> Path | None:
        return None if self.material is None else self.folder / self.material


_bad = bad_asset


def _ranges(tokens: list[str], path: Path) -> list[int]:
    """`delete_verts` tokens (all lines joined: a range may wrap) -> vertex indices."""
    out: list[int] = []
    k = 0
    try:
        while k < len(tokens):
            a = int(tokens[k])
            if k + 2 < len(tokens) and tokens[k + 1] == "-":
                b = int(tokens[k + 2])
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
                k += 3
            else:
                out.append(a)
                k += 1
    except ValueError:
        raise _bad(path, "malformed delete_verts list") from None
    return out


def read_mhclo(path: str | Path, base_vertices: int = HM08_VERTICES) -> Proxy:
    path = Path(path)
    text = read_asset_text(path)
    keys: dict = {}
    tags: list[str] = []
    scale: list = [None, None, None]
    refs, weights, offsets, deleted = [], [], [], []
    state = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        head = words[0]
        if head[0].isdigit() or head[0] == "-":
            if state == "verts":
                try:
                    nums = [float(w) for w in words]
                except ValueError:
                    raise _bad(path, f"line {n}: malformed vertex binding") from None
                if len(nums) == 1:
                    refs.append((int(nums[0]),) * 3)
                    weights.append((1.0, 0.0, 0.0))
                    offsets.append((0.0, 0.0, 0.0))
                elif len(nums) in (6, 9):
                    if any(x != int(x) for x in nums[:3]):
                        raise _bad(path, f"line {n}: vertex references must be whole numbers")
                    refs.append(tuple(int(x) for x in nums[:3]))
                    weights.append(tuple(nums[3:6]))
                    offsets.append(tuple(nums[6:9]) if len(nums) == 9 else (0.0, 0.0, 0.0))
                else:
                    raise _bad(path, f"line {n}: a vertex binding has 1, 6 or 9 numbers, not {len(nums)}")
            elif state == "delete":
                deleted.extend(words)
            else:
                raise _bad(path, f"line {n}: numbers outside a `verts` or `delete_verts` section")
            continue
        # other keywords leave the section open, as MakeHuman's loader does (shoes put
        # `material` between `verts 0` and the bindings)
        if head == "verts":
            state = "verts"
        elif head == "delete_verts":
            state = "delete"
            deleted.extend(words[1:])
        elif head in ("x_scale", "y_scale", "z_scale"):
            try:
                a, b, s = int(words[1]), int(words[2]), float(words[3])
            except (ValueError, IndexError):
                raise _bad(path, f"line {n}: {head} needs two vertex indices and a distance") from None
            if s <= 0 or not np.isfinite(s):
                raise _bad(path, f"line {n}: {head} distance must be positive")
            scale["xyz".index(head[0])] = (a, b, s)
        elif head == "tag":
            tags.append(" ".join(words[1:]))
        else:
            keys[head] = " ".join(words[1:])
    if not refs:
        raise _bad(path, "has no vertex bindings (`verts 0` section)")
    if "obj_file" not in keys:
        raise _bad(path, "names no obj_file")
    if keys.get("basemesh", "hm08") != "hm08":
        raise UserError(
            f"{path}: fitted to base mesh {keys['basemesh']!r}, not hm08", "use a MakeHuman 1.x (hm08) proxy"
        )
    r = np.asarray(refs, np.int64)
    d = np.unique(np.asarray(_ranges(deleted, path), np.int64))
    used = [x[:2] for x in scale if x is not None]
    worst = max([int(r.max()), int(d.max()) if len(d) else -1] + [max(u) for u in used])
    if r.min() < 0 or worst >= base_vertices or (len(d) and d.min() < 0):
        raise UserError(
            f"{path}: refers to base-mesh vertex {worst}, but hm08 has {base_vertices} (0..{base_vertices - 1})",
            "this proxy was not made for MakeHuman's hm08 base mesh; use one that is",
        )
    w = np.asarray(weights, np.float64)
    o = np.asarray(offsets, np.float64)
    if not (np.isfinite(w).all() and np.isfinite(o).all()):
        raise _bad(path, "holds non-finite weights or offsets")
    try:
        z_depth = int(float(keys.pop("z_depth", 50)))
    except ValueError:
        raise _bad(path, "z_depth is not a number") from None
    return Proxy(
        path=str(path),
        name=keys.pop("name", path.stem),
        uuid=keys.pop("uuid", ""),
        obj_file=keys.pop("obj_file"),
        material=keys.pop("material", None),
        ref_vertices=r,
        weights=w,
        offsets=o,
        scale_refs=tuple(scale),
        delete_verts=d,
        z_depth=z_depth,
        tags=tuple(tags),
        extra=keys,
    )
