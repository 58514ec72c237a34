"""A minimal reader for ASCII FBX 7.x static meshes, in numpy and the standard library only.

Blender's FBX importer refuses ASCII files ("ASCII FBX files are not supported"), and the
Kenney furniture kit ships as ASCII FBX. `read_meshes(path)` returns, per FBX Model with
geometry, plain arrays (no Blender types), so the parser is tested in the main environment
(tests/test_fbx_ascii.py) and `scene_import.read_ascii_fbx` only turns the arrays into meshes.

What is read: Model transforms (Lcl T/R/S, pre/post rotation, pivots, rotation order, geometric
transform) and their parent chain, Geometry (n-gon polygons, per-polygon materials, UVs),
Material diffuse colours; the file's axis system (Up/Front/Coord axis) and UnitScaleFactor are
applied as Blender's importer would (X right, Z up, front = -Y, metres). The whole transform is
baked into the vertices.
"""

import math
import re

import numpy as np

_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"|;[^\n]*|[A-Za-z_][A-Za-z0-9_|]*:|\*\d+|'
    r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[{},]|[A-Za-z_][\w|+\-]*"
)


def is_ascii_fbx(path):
    with open(path, "rb") as fh:
        return not fh.read(20).startswith(b"Kaydara FBX Binary")


def parse_ascii_fbx(text):
    """Node tree of an ASCII FBX: {"name", "props": [...], "children": [...]}; arrays flattened."""
    root = {"name": "", "props": [], "children": []}
    stack, cur = [root], None
    for m in _TOKEN.finditer(text):
        t = m.group(0)
        c = t[0]
        if c == ";" or t == "," or c == "*":
            continue
        if c != '"' and t.endswith(":"):
            cur = {"name": t[:-1], "props": [], "children": []}
            stack[-1]["children"].append(cur)
        elif t == "{":
            stack.append(cur if cur is not None else {"name": "", "props": [], "children": []})
        elif t == "}":
            if len(stack) > 1:
                stack.pop()
            cur = None
        elif cur is None:
            continue
        elif c == '"':
            cur["props"].append(t[1:-1])
        else:
            try:
                cur["props"].append(float(t))
            except ValueError:
                cur["props"].append(t)
    return root


def _child(node, name):
    for c in node["children"]:
        if c["name"] == name:
            return c
    return None


def _array(node, name):
    c = _child(node, name)
    if c is None:
        return None
    a = _child(c, "a")
    return np.asarray((a or c)["props"], np.float64)


def _props70(node):
    out = {}
    p70 = _child(node, "Properties70")
    for p in p70["children"] if p70 else []:
        if p["name"] == "P" and p["props"]:
            out[p["props"][0]] = p["props"][4:]
    return out


def _euler(deg, order):
    """FBX euler (degrees) -> 3x3; order enum 0 XYZ .. 5 ZYX means X applied first for XYZ."""
    rx, ry, rz = (math.radians(float(a)) for a in deg)
    cx, sx, cy, sy, cz, sz = math.cos(rx), math.sin(rx), math.cos(ry), math.sin(ry), math.cos(rz), math.sin(rz)
    mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    seq = {0: "XYZ", 1: "XZY", 2: "YZX", 3: "YXZ", 4: "ZXY", 5: "ZYX"}.get(int(order), "XYZ")
    m = np.eye(3)
    for axis in seq:  # first axis applied first: M = R_last ... R_first
        m = {"X": mx, "Y": my, "Z": mz}[axis] @ m
    return m


def _h(r=None, t=None, s=None):
    m = np.eye(4)
    if r is not None:
        m[:3, :3] = r
    if s is not None:
        m[:3, :3] = m[:3, :3] @ np.diag(s)
    if t is not None:
        m[:3, 3] = t
    return m


def _model_local(p):
    """FBX local transform: T Roff Rp Rpre R Rpost^-1 Rp^-1 Soff Sp S Sp^-1."""

    def v(key, default):
        x = p.get(key)
        return np.asarray(x[:3], np.float64) if x and len(x) >= 3 else np.asarray(default, np.float64)

    order = (p.get("RotationOrder") or [0])[0]
    t = v("Lcl Translation", (0, 0, 0))
    r = _euler(v("Lcl Rotation", (0, 0, 0)), order)
    s = v("Lcl Scaling", (1, 1, 1))
    pre = _euler(v("PreRotation", (0, 0, 0)), 0)
    post = _euler(v("PostRotation", (0, 0, 0)), 0)
    roff, rp = v("RotationOffset", (0, 0, 0)), v("RotationPivot", (0, 0, 0))
    soff, sp = v("ScalingOffset", (0, 0, 0)), v("ScalingPivot", (0, 0, 0))
    return (
        _h(t=t)
        @ _h(t=roff)
        @ _h(t=rp)
        @ _h(r=pre)
        @ _h(r=r)
        @ np.linalg.inv(_h(r=post))
        @ _h(t=-rp)
        @ _h(t=soff)
        @ _h(t=sp)
        @ _h(s=s)
        @ _h(t=-sp)
    )


def _geometric(p):
    def v(key, default):
        x = p.get(key)
        return np.asarray(x[:3], np.float64) if x and len(x) >= 3 else np.asarray(default, np.float64)

    return _h(
        r=_euler(v("GeometricRotation", (0, 0, 0)), 0),
        t=v("GeometricTranslation", (0, 0, 0)),
        s=v("GeometricScaling", (1, 1, 1)),
    )


def _axis_matrix(settings):
    """File axes -> Blender (X right, Z up, front = -Y), times the unit scale (metres)."""
    up, up_s = int((settings.get("UpAxis") or [1])[0]), (settings.get("UpAxisSign") or [1])[0]
    front, front_s = int((settings.get("FrontAxis") or [2])[0]), (settings.get("FrontAxisSign") or [1])[0]
    coord, coord_s = int((settings.get("CoordAxis") or [0])[0]), (settings.get("CoordAxisSign") or [1])[0]
    scale = float((settings.get("UnitScaleFactor") or [1.0])[0]) / 100.0
    m = np.zeros((3, 3))
    m[0, coord] = coord_s
    m[2, up] = up_s
    m[1, front] = -front_s
    if abs(np.linalg.det(m)) < 0.5:  # inconsistent axis system: fall back to Y up, Z front
        m = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    return _h(r=m * scale)


def _layer_values(layer, key, index_key, n_poly_verts, poly_index_of_corner, vert_of_corner):
    """Per-corner values of a LayerElement (ByPolygonVertex / ByPolygon / ByVertice / AllSame)."""
    data = _array(layer, key)
    if data is None:
        return None
    mapping = (_child(layer, "MappingInformationType") or {"props": ["ByPolygonVertex"]})["props"][0]
    ref = (_child(layer, "ReferenceInformationType") or {"props": ["Direct"]})["props"][0]
    idx = _array(layer, index_key) if ref in ("IndexToDirect", "Index") else None
    if mapping == "ByPolygonVertex":
        sel = np.arange(n_poly_verts)
    elif mapping == "ByPolygon":
        sel = poly_index_of_corner
    elif mapping in ("ByVertice", "ByVertex", "ByControlPoint"):
        sel = vert_of_corner
    else:  # AllSame
        sel = np.zeros(n_poly_verts, np.int64)
    if idx is not None:
        sel = idx.astype(np.int64)[np.minimum(sel, len(idx) - 1)]
    return data, sel


def read_meshes(path):
    """[{name, vertices (V,3) world metres, corner_vert (C,) int, loop_starts (P,) int, uv (C,2) or None,
    materials [{name, color}], material_index (P,) or None, mirrored bool}] per Model with geometry.

    Raises ValueError when the file has no Objects section.
    """
    with open(path, encoding="utf-8", errors="replace") as fh:
        root = parse_ascii_fbx(fh.read())
    gs = _child(root, "GlobalSettings")
    axis = _axis_matrix(_props70(gs) if gs else {})
    objects = _child(root, "Objects")
    if objects is None:
        raise ValueError(f"{path}: no Objects section")
    nodes = {}
    for n in objects["children"]:
        if n["props"] and isinstance(n["props"][0], float):
            nodes[int(n["props"][0])] = n
    parent, geometry_of, materials_of = {}, {}, {}
    conns = _child(root, "Connections")
    for c in conns["children"] if conns else []:
        if c["name"] != "C" or len(c["props"]) < 3 or c["props"][0] != "OO":
            continue
        a, b = int(c["props"][1]), int(c["props"][2])
        na, nb = nodes.get(a), nodes.get(b)
        if na is None or nb is None or nb["name"] != "Model":
            continue
        if na["name"] == "Model":
            parent[a] = b
        elif na["name"] == "Geometry":
            geometry_of[b] = a
        elif na["name"] == "Material":
            materials_of.setdefault(b, []).append(a)

    local = {k: _model_local(_props70(n)) for k, n in nodes.items() if n["name"] == "Model"}

    def world(k, depth=0):
        m = local[k]
        p = parent.get(k)
        return m if p is None or p not in local or depth > 64 else world(p, depth + 1) @ m

    out = []
    for k, node in nodes.items():
        if node["name"] != "Model" or k not in geometry_of:
            continue
        g = nodes[geometry_of[k]]
        verts = _array(g, "Vertices")
        pvi = _array(g, "PolygonVertexIndex")
        if verts is None or pvi is None or len(verts) < 9:
            continue
        pvi = pvi.astype(np.int64)
        ends = pvi < 0
        corner_vert = np.where(ends, -pvi - 1, pvi)
        poly_of_corner = np.concatenate([[0], np.cumsum(ends)[:-1]])
        n_polys = int(ends.sum())
        m = axis @ world(k) @ _geometric(_props70(node))
        v = verts.reshape(-1, 3)
        v = v @ m[:3, :3].T + m[:3, 3]
        starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
        name = str(node["props"][1]).split("::")[-1] if len(node["props"]) > 1 else f"model_{k}"
        uv = None
        uv_layer = _child(g, "LayerElementUV")
        if uv_layer is not None:
            got = _layer_values(uv_layer, "UV", "UVIndex", len(pvi), poly_of_corner, corner_vert)
            if got is not None:
                data, sel = got
                uv = data.reshape(-1, 2)[np.minimum(sel, len(data) // 2 - 1)]
        mat_ids = materials_of.get(k, [])
        materials = [_material(nodes[mid]) for mid in mat_ids]
        material_index = None
        mat_layer = _child(g, "LayerElementMaterial")
        if mat_layer is not None and len(mat_ids) > 1:
            data = _array(mat_layer, "Materials")
            mapping = (_child(mat_layer, "MappingInformationType") or {"props": ["AllSame"]})["props"][0]
            if data is not None and mapping == "ByPolygon" and len(data) >= n_polys:
                material_index = np.clip(data[:n_polys].astype(np.int64), 0, len(mat_ids) - 1)
        out.append(
            {
                "name": name,
                "key": k,
                "vertices": v,
                "corner_vert": corner_vert.astype(np.int64),
                "loop_starts": starts.astype(np.int64),
                "uv": uv,
                "materials": materials,
                "material_ids": list(mat_ids),
                "material_index": material_index,
                "mirrored": bool(np.linalg.det(m[:3, :3]) < 0),
            }
        )
    return out


def _material(node):
    p = _props70(node)
    color = p.get("DiffuseColor") or p.get("Diffuse") or [0.8, 0.8, 0.8]
    name = str(node["props"][1]).split("::")[-1] if len(node["props"]) > 1 else "fbx_material"
    return {"name": name, "color": [float(c) for c in color[:3]]}
