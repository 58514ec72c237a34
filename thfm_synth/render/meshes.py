"""Tessellations the main environment computes for the renderer (pure numpy).

Geometry is decided outside Blender: a sphere in a scene description is saved as this
icosphere (its vertices, faces, per-corner UVs and exact unit normals go into arrays.npz),
so Blender only builds the mesh it is given.
"""

from __future__ import annotations

import numpy as np


def icosphere(levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit icosphere (V,3) float64 and faces (F,3) int64, counter-clockwise seen from outside."""
    p = (1.0 + 5**0.5) / 2
    v = np.array(
        [
            [-1, p, 0],
            [1, p, 0],
            [-1, -p, 0],
            [1, -p, 0],
            [0, -1, p],
            [0, 1, p],
            [0, -1, -p],
            [0, 1, -p],
            [p, 0, -1],
            [p, 0, 1],
            [-p, 0, -1],
            [-p, 0, 1],
        ],
        float,
    )
    f = np.array(
        [
            [0, 11, 5],
            [0, 5, 1],
            [0, 1, 7],
            [0, 7, 10],
            [0, 10, 11],
            [1, 5, 9],
            [5, 11, 4],
            [11, 10, 2],
            [10, 7, 6],
            [7, 1, 8],
            [3, 9, 4],
            [3, 4, 2],
            [3, 2, 6],
            [3, 6, 8],
            [3, 8, 9],
            [4, 9, 5],
            [2, 4, 11],
            [6, 2, 10],
            [8, 6, 7],
            [9, 8, 1],
        ],
        np.int64,
    )
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for _ in range(levels):
        edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        uniq, inv = np.unique(np.sort(edges, axis=1), axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        mid = v[uniq[:, 0]] + v[uniq[:, 1]]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        m = inv + len(v)
        nf = len(f)
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        ab, bc, ca = m[:nf], m[nf : 2 * nf], m[2 * nf :]
        f = np.concatenate(
            [np.stack([a, ab, ca], 1), np.stack([b, bc, ab], 1), np.stack([c, ca, bc], 1), np.stack([ab, bc, ca], 1)]
        )
        v = np.concatenate([v, mid])
    return v, f


def sphere_corner_uv(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Equirectangular UVs per corner, with the seam unwrapped per face."""
    lon = np.arctan2(v[:, 1], v[:, 0]) / (2 * np.pi) + 0.5
    lat = np.arcsin(np.clip(v[:, 2], -1, 1)) / np.pi + 0.5
    u = lon[f]
    wrap = (u.max(axis=1) - u.min(axis=1)) > 0.5
    u[wrap] = np.where(u[wrap] < 0.5, u[wrap] + 1.0, u[wrap])
    return np.stack([u, lat[f]], axis=-1)
