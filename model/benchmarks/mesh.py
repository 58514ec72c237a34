"""Ground-truth depth and normals by rasterising a dataset's scan meshes (numpy, no GPU, no OpenGL).

Hi4D and Goliath ship textured scans and calibrated cameras, not depth or normal maps; the
benchmarks render them. :func:`rasterize` is a vectorised z-buffer rasteriser: every triangle in
front of the camera is projected with the pinhole ``K`` (OpenCV pixel convention: integer
coordinates are pixel centres), the pixel centres inside its screen bounding box are tested with
edge functions, depth is interpolated perspective-correctly (1/z is linear in screen space), and
the nearest surface wins per pixel. Triangles are processed in chunks so memory stays bounded
(``max_candidates`` pixel tests at a time).

:func:`render_depth_normals` gives planar depth z (camera frame, the mesh's units times
``scale``; 0 where no surface) and unit normals in the OpenCV camera frame from the mesh's
area-weighted vertex normals interpolated with the perspective-correct barycentrics, turned to face
the camera (scans are not always consistently oriented), (0, 0, 0) where no surface.

Readers: Wavefront OBJ (``v`` and ``f`` records, any ``f a/b/c`` form, polygons fanned into
triangles) and PLY (ascii or binary little/big endian, float/double vertices, list faces).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

NEAR = 1e-6


def read_obj(source: str | Path | bytes) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3) float64, faces (F, 3) int64) of an OBJ file (or its bytes)."""
    text = source.decode("utf-8", "replace") if isinstance(source, bytes) else Path(source).read_text(errors="replace")
    verts, faces = [], []
    for line in text.splitlines():
        if line.startswith("v "):
            verts.append(line.split()[1:4])
        elif line.startswith("f "):
            idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
            for k in range(1, len(idx) - 1):
                faces.append((idx[0], idx[k], idx[k + 1]))
    v = np.asarray(verts, np.float64).reshape(-1, 3)
    f = np.asarray(faces, np.int64).reshape(-1, 3)
    f = np.where(f < 0, f + len(v), f - 1)  # OBJ indices are 1-based; negative ones count from the end
    return v, f


_PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}


def read_ply(source: str | Path | bytes) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (V, 3), faces (F, 3)) of a PLY file (or its bytes): ascii or binary, list faces."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    end = data.index(b"end_header") + len(b"end_header")
    end = data.index(b"\n", end) + 1
    header = data[:end].decode("ascii", "replace").splitlines()
    fmt = next(line.split()[1] for line in header if line.startswith("format"))
    elements: list[dict] = []
    for line in header:
        parts = line.split()
        if parts[:1] == ["element"]:
            elements.append({"name": parts[1], "count": int(parts[2]), "props": []})
        elif parts[:1] == ["property"]:
            if parts[1] == "list":
                elements[-1]["props"].append((parts[4], "list", _PLY_TYPES[parts[2]], _PLY_TYPES[parts[3]]))
            else:
                elements[-1]["props"].append((parts[2], _PLY_TYPES[parts[1]]))
    body = data[end:]
    verts = faces = None
    if fmt == "ascii":
        tokens = body.split()
        pos = 0
        for el in elements:
            if el["name"] == "vertex":
                n_props = len(el["props"])
                arr = np.asarray(tokens[pos : pos + n_props * el["count"]], np.float64).reshape(el["count"], n_props)
                names = [p[0] for p in el["props"]]
                verts = arr[:, [names.index("x"), names.index("y"), names.index("z")]]
                pos += n_props * el["count"]
            elif el["name"] == "face":
                tri = []
                for _ in range(el["count"]):
                    k = int(tokens[pos])
                    idx = [int(t) for t in tokens[pos + 1 : pos + 1 + k]]
                    tri += [(idx[0], idx[j], idx[j + 1]) for j in range(1, k - 1)]
                    pos += 1 + k
                faces = np.asarray(tri, np.int64).reshape(-1, 3)
            else:
                pos += sum(1 for _ in el["props"]) * el["count"]
        return np.asarray(verts, np.float64), faces if faces is not None else np.zeros((0, 3), np.int64)
    endian = "<" if fmt == "binary_little_endian" else ">"
    buf = io.BytesIO(body)
    for el in elements:
        if all(len(p) == 2 for p in el["props"]):
            dt = np.dtype([(p[0], endian + p[1]) for p in el["props"]])
            arr = np.frombuffer(buf.read(dt.itemsize * el["count"]), dt)
            if el["name"] == "vertex":
                verts = np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float64)
            continue
        if el["name"] == "face" and len(el["props"]) == 1:
            _, _, count_t, index_t = el["props"][0]
            ct, it = np.dtype(endian + count_t), np.dtype(endian + index_t)
            raw = buf.read()
            # fast path: every face a triangle
            rec = np.dtype([("n", ct), ("i", it, (3,))])
            if len(raw) >= rec.itemsize * el["count"]:
                arr = np.frombuffer(raw[: rec.itemsize * el["count"]], rec)
                if np.all(arr["n"] == 3):
                    faces = arr["i"].astype(np.int64)
                    buf = io.BytesIO(raw[rec.itemsize * el["count"] :])
                    continue
            tri, pos = [], 0
            for _ in range(el["count"]):
                k = int(np.frombuffer(raw, ct, 1, pos)[0])
                pos += ct.itemsize
                idx = np.frombuffer(raw, it, k, pos)
                pos += it.itemsize * k
                tri += [(idx[0], idx[j], idx[j + 1]) for j in range(1, k - 1)]
            faces = np.asarray(tri, np.int64).reshape(-1, 3)
            buf = io.BytesIO(raw[pos:])
        else:
            raise ValueError("PLY elements with list properties other than a face list are not supported")
    return verts, faces if faces is not None else np.zeros((0, 3), np.int64)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (right-handed winding)."""
    v0, v1, v2 = (verts[faces[:, i]] for i in range(3))
    fn = np.cross(v1 - v0, v2 - v0)  # length = 2 x area
    n = np.zeros_like(verts)
    for i in range(3):
        np.add.at(n, faces[:, i], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def rasterize(
    verts_cam: np.ndarray, faces: np.ndarray, k: np.ndarray, height: int, width: int, max_candidates: int = 4_000_000
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer of a camera-frame mesh: (depth (H, W) with 0 = none, face id (H, W) with -1 = none,
    perspective-correct barycentrics (H, W, 3))."""
    verts_cam = np.asarray(verts_cam, np.float64)
    faces = np.asarray(faces, np.int64)
    z = verts_cam[:, 2]
    uv = np.full((len(verts_cam), 2), np.nan)
    front = z > NEAR
    uv[front] = (verts_cam[front, :2] / z[front, None]) @ np.asarray(k, np.float64)[:2, :2].T + k[:2, 2]
    keep = front[faces].all(1)
    fid_all = np.nonzero(keep)[0]
    tri = uv[faces[fid_all]]  # (F, 3, 2)
    x0 = np.clip(np.ceil(tri[..., 0].min(1)), 0, width - 1)
    x1 = np.clip(np.floor(tri[..., 0].max(1)), 0, width - 1)
    y0 = np.clip(np.ceil(tri[..., 1].min(1)), 0, height - 1)
    y1 = np.clip(np.floor(tri[..., 1].max(1)), 0, height - 1)
    inside = (
        (tri[..., 0].max(1) >= 0)
        & (tri[..., 0].min(1) <= width - 1)
        & (tri[..., 1].max(1) >= 0)
        & (tri[..., 1].min(1) <= height - 1)
        & (x1 >= x0)
        & (y1 >= y0)
    )
    fid_all, tri, x0, x1, y0, y1 = fid_all[inside], tri[inside], x0[inside], x1[inside], y0[inside], y1[inside]
    nx, ny = (x1 - x0 + 1).astype(np.int64), (y1 - y0 + 1).astype(np.int64)
    counts = nx * ny
    zbuf = np.full(height * width, np.inf)
    fbuf = np.full(height * width, -1, np.int64)
    bbuf = np.zeros((height * width, 3))
    cum = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = cum[start - 1] if start else 0
        stop = max(int(np.searchsorted(cum, base + max_candidates, side="right")), start + 1)
        sl = slice(start, stop)
        c = counts[sl]
        rep = np.repeat(np.arange(start, stop), c)
        local = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        px = x0[rep] + local % nx[rep]
        py = y0[rep] + local // nx[rep]
        a, b, cc = tri[rep, 0], tri[rep, 1], tri[rep, 2]
        area = (b[:, 0] - a[:, 0]) * (cc[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (cc[:, 0] - a[:, 0])
        ok = np.abs(area) > 1e-12
        w0 = ((b[:, 0] - px) * (cc[:, 1] - py) - (b[:, 1] - py) * (cc[:, 0] - px)) / np.where(ok, area, 1)
        w1 = ((cc[:, 0] - px) * (a[:, 1] - py) - (cc[:, 1] - py) * (a[:, 0] - px)) / np.where(ok, area, 1)
        w2 = 1.0 - w0 - w1
        eps = -1e-9
        hit = ok & (w0 >= eps) & (w1 >= eps) & (w2 >= eps)
        f = fid_all[rep[hit]]
        zs = z[faces[f]]  # (n, 3)
        inv = w0[hit] / zs[:, 0] + w1[hit] / zs[:, 1] + w2[hit] / zs[:, 2]
        depth = 1.0 / inv
        bary = np.stack([w0[hit] / zs[:, 0], w1[hit] / zs[:, 1], w2[hit] / zs[:, 2]], 1) * depth[:, None]
        pix = (py[hit] * width + px[hit]).astype(np.int64)
        order = np.lexsort((depth, pix))  # by pixel, nearest first
        pix, depth, f, bary = pix[order], depth[order], f[order], bary[order]
        first = np.ones(len(pix), bool)
        first[1:] = pix[1:] != pix[:-1]
        pix, depth, f, bary = pix[first], depth[first], f[first], bary[first]
        better = depth < zbuf[pix]
        zbuf[pix[better]] = depth[better]
        fbuf[pix[better]] = f[better]
        bbuf[pix[better]] = bary[better]
        start = stop
    zbuf[~np.isfinite(zbuf)] = 0.0
    return zbuf.reshape(height, width), fbuf.reshape(height, width), bbuf.reshape(height, width, 3)


def render_depth_normals(
    verts_world: np.ndarray,
    faces: np.ndarray,
    k: np.ndarray,
    rt: np.ndarray,
    height: int,
    width: int,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(depth (H, W) in mesh units x ``scale``, 0 = none; normals (H, W, 3) OpenCV camera frame, 0 = none)
    of a world-frame mesh seen by a camera with intrinsics ``k`` and world-to-camera ``rt`` (3x4)."""
    rt = np.asarray(rt, np.float64)
    cam = verts_world @ rt[:3, :3].T + rt[:3, 3]
    depth, fid, bary = rasterize(cam, faces, k, height, width)
    normals = np.zeros((height, width, 3))
    hit = fid >= 0
    if hit.any():
        vn = vertex_normals(cam, faces)
        tri = faces[fid[hit]]
        n = np.einsum("nk,nkc->nc", bary[hit], vn[tri])
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        ys, xs = np.nonzero(hit)
        ray = np.stack([(xs - k[0, 2]) / k[0, 0], (ys - k[1, 2]) / k[1, 1], np.ones(len(xs))], 1)
        n[(n * ray).sum(1) > 0] *= -1.0  # face the camera
        normals[hit] = n
    return depth * scale, normals.astype(np.float32)


def undistort(image: np.ndarray, k: np.ndarray, dist: np.ndarray, order: int = 1) -> np.ndarray:
    """Resample an image taken through OpenCV's radial-tangential distortion (k1, k2, p1, p2[, k3])
    onto the undistorted pinhole image with the same ``k`` (order 1: bilinear; 0: nearest, for labels)."""
    from scipy import ndimage

    d = np.zeros(5)
    dist = np.asarray(dist, np.float64).reshape(-1)[:5]
    d[: len(dist)] = dist
    if not np.any(d):
        return image
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = (xs - k[0, 2]) / k[0, 0], (ys - k[1, 2]) / k[1, 1]
    r2 = x * x + y * y
    radial = 1 + d[0] * r2 + d[1] * r2**2 + d[4] * r2**3
    xd = x * radial + 2 * d[2] * x * y + d[3] * (r2 + 2 * x * x)
    yd = y * radial + d[2] * (r2 + 2 * y * y) + 2 * d[3] * x * y
    coords = [yd * k[1, 1] + k[1, 2], xd * k[0, 0] + k[0, 2]]
    src = np.asarray(image)
    if src.ndim == 2:
        return ndimage.map_coordinates(src, coords, order=order, mode="nearest").astype(src.dtype)
    return np.stack(
        [ndimage.map_coordinates(src[..., c], coords, order=order, mode="nearest") for c in range(src.shape[-1])], -1
    ).astype(src.dtype)


__all__ = ["read_obj", "read_ply", "vertex_normals", "rasterize", "render_depth_normals", "undistort"]
