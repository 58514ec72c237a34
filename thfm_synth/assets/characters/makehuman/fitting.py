"""Fit MakeHuman proxies (garments, shoes, hair, eyebrows, eyelashes, eyes, teeth) to an anny body.

The standard MakeHuman formula, in base-mesh units and axes (decimetres, Y up)::

    p = w0 V[r0] + w1 V[r1] + w2 V[r2] + offset * (sx, sy, sz)
    s_axis = |V[a] - V[b]|_axis / s       (the proxy's x_scale / y_scale / z_scale lines)

V = the body's full hm08 vertex set: anny's vertices plus the helpers rebuilt on this body
(helpers.py). The result is converted to anny's frame (metres, Z up). Each fitted vertex is
also expressed as non-negative weights of anny body vertices (`bind_indices`,
`bind_weights`, up to 9 per vertex: each reference is an anny vertex or a helper, itself three
anny vertices): MakeHuman's weights may be slightly negative or above 1 (projections), so
the coefficients are |w_i| * b_ij renormalised. Skinning and labels read them (the proxy
moves with, and is labelled as, the skin it is bound to). `hidden` lists the anny vertices
named by the proxy's `delete_verts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.assets.characters.makehuman.helpers import MH_TO_ANNY, HelperBinding, anny_to_mh
from thfm_synth.assets.characters.makehuman.mhclo import Proxy
from thfm_synth.assets.characters.makehuman.obj import ObjMesh
from thfm_synth.errors import UserError


@dataclass
class FittedProxy:
    proxy: Proxy
    mesh: ObjMesh
    vertices: np.ndarray  # (N, 3) anny frame, metres
    bind_indices: np.ndarray  # (N, 9) anny vertex indices
    bind_weights: np.ndarray  # (N, 9) >= 0, rows sum to 1
    hidden: np.ndarray  # (D,) anny vertex indices under the proxy (delete_verts)
    scales: np.ndarray  # (3,) the axis scales used (x, y, z of the base mesh)


def axis_scales(proxy: Proxy, hm08_mh: np.ndarray) -> np.ndarray:
    out = np.ones(3)
    for k, ref in enumerate(proxy.scale_refs):
        if ref is not None:
            a, b, s = ref
            out[k] = abs(hm08_mh[a, k] - hm08_mh[b, k]) / s
    return out


def fit_proxy(proxy: Proxy, mesh: ObjMesh, binding: HelperBinding, hm08: np.ndarray) -> FittedProxy:
    """Fit `proxy` (its `.obj` is `mesh`) to the body whose full hm08 vertex set is `hm08` (anny frame)."""
    n = len(proxy.ref_vertices)
    if n != len(mesh.vertices):
        raise UserError(
            f"{proxy.path}: binds {n} vertices but its mesh {Path(mesh.path).name} has {len(mesh.vertices)}",
            "use the .mhclo and .obj of the same release",
        )
    hm08 = np.asarray(hm08, np.float64)
    scales = axis_scales(proxy, anny_to_mh(hm08))
    # the offset is in base-mesh axes: scale it there, then rotate/scale it into anny's frame
    offsets = (proxy.offsets * scales) @ MH_TO_ANNY.T
    verts = np.einsum("nk,nki->ni", proxy.weights, hm08[proxy.ref_vertices]) + offsets
    idx, w = binding.body_coefficients(proxy.ref_vertices)  # (N, 3, 3)
    coef = np.abs(proxy.weights)[:, :, None] * w
    idx = idx.reshape(n, 9)
    coef = coef.reshape(n, 9)
    total = coef.sum(axis=1, keepdims=True)
    coef = coef / np.where(total > 0, total, 1.0)
    hidden_hm = proxy.delete_verts
    anny = binding.anny_of_hm08[hidden_hm] if len(hidden_hm) else np.zeros(0, np.int64)
    return FittedProxy(proxy, mesh, verts, idx, coef, np.unique(anny[anny >= 0]), scales)


def dominant_vertex(fitted: FittedProxy) -> np.ndarray:
    """(N,) the anny vertex with the largest binding coefficient of each fitted vertex."""
    # the same vertex may appear in several of the 9 slots: sum them first
    idx, w = fitted.bind_indices, fitted.bind_weights
    same = idx[:, :, None] == idx[:, None, :]
    summed = (same * w[:, None, :]).sum(axis=2)
    return idx[np.arange(len(idx)), np.argmax(summed, axis=1)]


def blend_rows(bind_indices: np.ndarray, bind_weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """sum_j w_j values[idx_j] per row (values (V, ...))."""
    v = np.asarray(values)
    return np.einsum("nk,nk...->n...", bind_weights, v[bind_indices])
