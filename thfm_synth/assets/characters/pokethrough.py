"""Garment poke-through: how much skin shows through cloth in posed frames (a numpy visibility measure).

`pokethrough(character, posed)` looks at a baked character's posed vertices from several
directions with an orthographic z-buffer and counts, per frame:

* cloth pixels: the nearest surface is cloth (outfit, shoes; not hair, eyes or teeth);
* poke-through pixels: the nearest surface is a body triangle that belongs under the cloth
  (all three vertices "under cloth", see below) and cloth lies behind it within `reach_m`
  on the same pixel - skin that pierced the garment it should be inside.

ratio = poke / (poke + cloth pixels), i.e. the fraction of the pixels where cloth should be
seen that show skin instead. A body vertex is *under cloth* if at rest it lies within
`near_m` of the cloth and on its inner side (behind the nearest cloth vertex's outward
normal), so a bare forearm in front of a shirt or a hand on a hip never counts.

The z-buffer splats points sampled on every triangle (a barycentric lattice finer than half a
pixel), keeping the nearest per pixel; pixels are `pixel_m` square (default 8 mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from thfm_synth.assets.characters.format import Character
from thfm_synth.assets.characters.garments import vertex_normals

CLOTH = ("outfit", "shoes", "top", "bottom", "skirt", "headwear")
VIEWS = {
    "front": np.array([0.0, -1.0, 0.0]),
    "back": np.array([0.0, 1.0, 0.0]),
    "left": np.array([1.0, 0.0, 0.0]),
    "right": np.array([-1.0, 0.0, 0.0]),
}


@dataclass
class PokeResult:
    cloth_pixels: np.ndarray  # (F, views)
    poke_pixels: np.ndarray  # (F, views)

    @property
    def ratio(self) -> np.ndarray:
        """(F,) poke-through fraction per frame over all views."""
        c, p = self.cloth_pixels.sum(axis=1), self.poke_pixels.sum(axis=1)
        return p / np.maximum(c + p, 1)


def cloth_vertices(c: Character) -> np.ndarray:
    ids = [g["id"] for g in c.garments if g.get("name") in CLOTH]
    return np.isin(c.vertex_garment, ids)


def under_cloth(c: Character, near_m: float = 0.06) -> np.ndarray:
    """(V,) body vertices inside the cloth at rest (see module doc)."""
    v = np.asarray(c.vertices, np.float64)
    cloth = cloth_vertices(c)
    body = c.vertex_garment == 0
    out = np.zeros(len(v), bool)
    if not cloth.any():
        return out
    cloth_faces = c.faces[cloth[c.faces].all(axis=1)]
    n = vertex_normals(v, cloth_faces)
    idx = np.flatnonzero(cloth)
    d, j = cKDTree(v[idx]).query(v[body])
    near = idx[j]
    inside = np.einsum("ij,ij->i", v[body] - v[near], n[near]) < 0
    out[np.flatnonzero(body)] = (d < near_m) & inside
    return out


def _lattice(n: int) -> np.ndarray:
    pts = [(i / n, j / n) for i in range(n + 1) for j in range(n + 1 - i)]
    a = np.array(pts)
    return np.stack([1 - a[:, 0] - a[:, 1], a[:, 0], a[:, 1]], axis=1)


def _splat(pts: np.ndarray, depth: np.ndarray, label: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Nearest depth and its label per pixel (pts: integer pixel coordinates)."""
    h, w = shape
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    pix = pts[ok, 1] * w + pts[ok, 0]
    d, lab = depth[ok], label[ok]
    zbuf = np.full(h * w, np.inf)
    np.minimum.at(zbuf, pix, d)
    lbuf = np.full(h * w, -1, np.int64)
    win = d == zbuf[pix]
    lbuf[pix[win]] = lab[win]
    return zbuf, lbuf


def pokethrough(
    c: Character, posed: np.ndarray, pixel_m: float = 0.008, reach_m: float = 0.05, views=tuple(VIEWS)
) -> PokeResult:
    """Poke-through counts of `posed` ((F, V, 3) vertices of character `c`) from `views`."""
    posed = np.asarray(posed, np.float64)
    if posed.ndim == 2:
        posed = posed[None]
    cloth_v = cloth_vertices(c)
    under = under_cloth(c)
    faces = np.asarray(c.faces, np.int64)
    f_cloth = cloth_v[faces].all(axis=1)
    f_body = (c.vertex_garment[faces] == 0).all(axis=1)
    f_under = f_body & under[faces].all(axis=1)
    keep = f_cloth | f_body  # hair, eyes, teeth are not part of the measure
    faces, kind = faces[keep], np.where(f_cloth[keep], 1, np.where(f_under[keep], 2, 0))
    out_c = np.zeros((len(posed), len(views)), np.int64)
    out_p = np.zeros((len(posed), len(views)), np.int64)
    for fi, v in enumerate(posed):
        tri = v[faces]
        edge = np.max(np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2), axis=1)
        n_sub = np.clip(np.ceil(1.5 * edge / pixel_m), 1, 12).astype(int)
        pts, labs = [], []
        for n in np.unique(n_sub):
            sel = np.flatnonzero(n_sub == n)
            lat = _lattice(int(n))
            pts.append(np.einsum("pk,tki->tpi", lat, tri[sel]).reshape(-1, 3))
            labs.append(np.repeat(kind[sel], len(lat)))
        p3 = np.concatenate(pts)
        lab = np.concatenate(labs)
        lo, hi = v.min(axis=0) - 0.05, v.max(axis=0) + 0.05
        for vi, name in enumerate(views):
            fwd = VIEWS[name]  # looking along fwd
            right = np.cross(fwd, [0.0, 0.0, 1.0])
            up = np.array([0.0, 0.0, 1.0])
            x = (p3 - lo) @ right
            y = (hi - p3) @ up
            z = p3 @ fwd
            xmin = min((lo - lo) @ right, (hi - lo) @ right)
            w = int(np.ceil(abs((hi - lo) @ right) / pixel_m)) + 2
            h = int(np.ceil((hi - lo)[2] / pixel_m)) + 2
            px = np.stack([np.floor((x - xmin) / pixel_m), np.floor(y / pixel_m)], axis=1).astype(np.int64)
            zb, lb = _splat(px, z, lab, (h, w))
            cloth_px = lb == 1
            # nearest cloth depth per pixel, to see whether cloth lies just behind visible skin
            cz, _ = _splat(px[lab == 1], z[lab == 1], lab[lab == 1], (h, w))
            with np.errstate(invalid="ignore"):
                poke = (lb == 2) & np.isfinite(cz) & (cz - zb < reach_m)
            out_c[fi, vi] = int(cloth_px.sum())
            out_p[fi, vi] = int(poke.sum())
    return PokeResult(out_c, out_p)


def clip_poses(c: Character, clip, every: int = 1) -> np.ndarray:
    """(F, V, 3) posed vertices of a retargeted clip (thfm_synth.assets.motion MotionClip on c's skeleton)."""
    from thfm_synth.assets.characters.skinning import forward_kinematics, linear_blend_skinning

    q = np.asarray(clip.local_rotations)[::every]
    r = np.asarray(clip.root_translation)[::every]
    return linear_blend_skinning(c, forward_kinematics(c, q, r))
