"""Import a 3D scene file into the current Blender scene, safely (render child only).

Shared by `scene_probe.py` and `render_scene.py`; imports only bpy, numpy and the standard
library (never thfm_synth).

    import_scene_file(path, names=None) -> [(source_name, object), ...]

returns the file's MESH objects, linked into the scene collection, parents cleared with
their world matrix kept (`matrix_world` = the file's world transform, metres after the
importer's unit conversion), each tagged with `ob["thfm_source_name"]` = its name in the file
(Blender may rename objects on name clashes; the source name is the stable key). Every other
object type (cameras, lights, empties, armatures, curves) is deleted after its transform has
been baked into its mesh children; collection instances are made real (nested ones too).
`names` restricts the result to those source names (the file is still read in full).

Formats
- `.blend`: `bpy.data.libraries.load(path, link=False)` appends the file's *objects* (and
  what they use: meshes, materials, images, node groups); the file is never opened as the
  main file (no `wm.open_mainfile`), no Text datablock, scene, window manager or handler is
  requested, and `preferences.filepaths.use_scripts_auto_execute` is forced False before
  loading, so neither registered text blocks (`use_module`) nor scripted-expression drivers
  can run (Blender skips such a driver while auto-execution is off). Every datablock the
  append brought in also has its animation data (drivers, actions) cleared. Library loading
  does not execute Python by design; tests/test_scene_files.py builds a .blend whose
  registered text block and scripted drivers (object and material) write marker files, shows
  that opening it as a trusted main file writes them, and that the probe and the renderer,
  which load it through this module, do not.
- binary `.fbx`: `bpy.ops.import_scene.fbx` (applies the file's unit scale and axes).
- ASCII `.fbx` (Blender's importer refuses them: "ASCII FBX files are not supported"):
  `read_ascii_fbx` below - a minimal FBX 7.x reader for static meshes: Model transforms
  (Lcl T/R/S, pre/post rotation, pivots, rotation order, geometric transform) and their
  parent chain, Geometry (n-gon polygons, per-polygon materials, UVs), Material diffuse
  colours; the file's axis system (Up/Front/Coord axis) and UnitScaleFactor are applied as
  Blender's importer would. The whole transform is baked into the vertices (the object's
  matrix is the identity).
- `.glb` / `.gltf`: `bpy.ops.import_scene.gltf` (glTF is metres, +Y up; the importer converts).
"""

import math
import os
import re

import bpy
import numpy as np
from mathutils import Matrix

SOURCE_PROP = "thfm_source_name"
SUFFIXES = (".blend", ".fbx", ".glb", ".gltf")


class SceneImportError(Exception):
    """A file that cannot be imported: (what, fix)."""

    def __init__(self, what, fix):
        super().__init__(what)
        self.what = what
        self.fix = fix


def disable_autoexec():
    """Never let a loaded file run Python; returns the settings as they are now."""
    fp = bpy.context.preferences.filepaths
    fp.use_scripts_auto_execute = False
    return {"use_scripts_auto_execute": bool(fp.use_scripts_auto_execute),
            "autoexec_fail": bool(bpy.app.autoexec_fail)}


# --------------------------------------------------------------------------- .blend
_ANIMATED = ("objects", "meshes", "curves", "materials", "node_groups", "shape_keys", "lights", "cameras",
             "textures", "images", "armatures", "lattices", "metaballs", "volumes", "pointclouds", "hair_curves")


def _ids():
    out = set()
    for name in _ANIMATED:
        out.update(getattr(bpy.data, name, ()))
    return out


def _load_blend(path):
    """Append the file's objects (and what they use), then strip all animation data they brought.

    Auto-execution is off, so a scripted-expression driver could not run anyway (Blender skips
    it: measured, a driver on a material node runs with auto-exec on and is skipped with it
    off); clearing drivers and actions also keeps the geometry static and deterministic.
    """
    disable_autoexec()
    before = _ids()
    with bpy.data.libraries.load(path, link=False) as (src, dst):
        dst.objects = list(src.objects)  # objects only: no texts, scenes or window managers
    for block in _ids() - before:
        for target in (block, getattr(block, "node_tree", None)):
            if target is not None and getattr(target, "animation_data", None) is not None:
                target.animation_data_clear()
    return [o for o in dst.objects if o is not None]


# --------------------------------------------------------------------------- ASCII FBX
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|;[^\n]*|[A-Za-z_][A-Za-z0-9_|]*:|\*\d+|'
                    r'[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[{},]|[A-Za-z_][\w|+\-]*')


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
    for p in (p70["children"] if p70 else []):
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
    return (_h(t=t) @ _h(t=roff) @ _h(t=rp) @ _h(r=pre) @ _h(r=r) @ np.linalg.inv(_h(r=post))
            @ _h(t=-rp) @ _h(t=soff) @ _h(t=sp) @ _h(s=s) @ _h(t=-sp))


def _geometric(p):
    def v(key, default):
        x = p.get(key)
        return np.asarray(x[:3], np.float64) if x and len(x) >= 3 else np.asarray(default, np.float64)

    return _h(r=_euler(v("GeometricRotation", (0, 0, 0)), 0), t=v("GeometricTranslation", (0, 0, 0)),
              s=v("GeometricScaling", (1, 1, 1)))


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


def read_ascii_fbx(path):
    """Create one Blender mesh object per FBX Model with geometry; returns [(name, object)]."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        root = parse_ascii_fbx(fh.read())
    gs = _child(root, "GlobalSettings")
    axis = _axis_matrix(_props70(gs) if gs else {})
    objects = _child(root, "Objects")
    if objects is None:
        raise SceneImportError(f"{path}: no Objects section", "re-export the file as binary FBX 7.x or glTF 2.0")
    nodes = {}
    for n in objects["children"]:
        if n["props"] and isinstance(n["props"][0], float):
            nodes[int(n["props"][0])] = n
    parent, geometry_of, materials_of = {}, {}, {}
    conns = _child(root, "Connections")
    for c in (conns["children"] if conns else []):
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

    mats = {}
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
        me = bpy.data.meshes.new(name)
        me.vertices.add(len(v))
        me.vertices.foreach_set("co", v.astype(np.float32).ravel())
        me.loops.add(len(corner_vert))
        me.loops.foreach_set("vertex_index", corner_vert.astype(np.int32))
        me.polygons.add(n_polys)
        me.polygons.foreach_set("loop_start", starts.astype(np.int32))
        if np.linalg.det(m[:3, :3]) < 0:
            me.flip_normals()
        uv_layer = _child(g, "LayerElementUV")
        if uv_layer is not None:
            got = _layer_values(uv_layer, "UV", "UVIndex", len(pvi), poly_of_corner, corner_vert)
            if got is not None:
                data, sel = got
                uv = data.reshape(-1, 2)[np.minimum(sel, len(data) // 2 - 1)]
                layer = me.uv_layers.new(name="UVMap")
                layer.data.foreach_set("uv", uv.astype(np.float32).ravel())
        mat_ids = materials_of.get(k, [])
        for mid in mat_ids:
            if mid not in mats:
                mats[mid] = _fbx_material(nodes[mid])
            me.materials.append(mats[mid])
        mat_layer = _child(g, "LayerElementMaterial")
        if mat_layer is not None and len(mat_ids) > 1:
            data = _array(mat_layer, "Materials")
            mapping = (_child(mat_layer, "MappingInformationType") or {"props": ["AllSame"]})["props"][0]
            if data is not None and mapping == "ByPolygon" and len(data) >= n_polys:
                idx = np.clip(data[:n_polys].astype(np.int32), 0, len(mat_ids) - 1)
                me.polygons.foreach_set("material_index", idx)
        me.update()
        me.validate(verbose=False)
        me.shade_flat()
        ob = bpy.data.objects.new(name, me)
        bpy.context.scene.collection.objects.link(ob)
        out.append((name, ob))
    return out


def _fbx_material(node):
    p = _props70(node)
    color = p.get("DiffuseColor") or p.get("Diffuse") or [0.8, 0.8, 0.8]
    name = str(node["props"][1]).split("::")[-1] if len(node["props"]) > 1 else "fbx_material"
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    bsdf = nt.nodes.get("Principled BSDF") or nt.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = (*[float(c) for c in color[:3]], 1.0)
    bsdf.inputs["Roughness"].default_value = 0.6
    mat.diffuse_color = (*[float(c) for c in color[:3]], 1.0)
    return mat


# --------------------------------------------------------------------------- common
def _realize_instances(objs, collection):
    """Empties instancing a collection -> real objects (recursively), linked into `collection`."""
    made = []
    stack = [(o, Matrix(o.matrix_world)) for o in objs
             if o.instance_type == "COLLECTION" and o.instance_collection is not None]
    depth = 0
    while stack and depth < 10000:
        depth += 1
        empty, mw = stack.pop()
        coll = empty.instance_collection
        offset = Matrix.Translation(-coll.instance_offset)
        for src in coll.all_objects:
            if src.instance_type == "COLLECTION" and src.instance_collection is not None:
                stack.append((src, mw @ offset @ src.matrix_world))
            if src.type != "MESH":
                continue
            ob = src.copy()
            ob.parent = None
            collection.objects.link(ob)
            ob.matrix_world = mw @ offset @ src.matrix_world
            ob[SOURCE_PROP] = f"{empty.name}/{src.name}"
            made.append(ob)
    return made


def import_scene_file(path, names=None):
    """Import `path` into the current scene; returns [(source_name, mesh object)] (see module doc)."""
    path = os.path.abspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in SUFFIXES:
        raise SceneImportError(f"{path}: unsupported scene format {ext}", "use .blend, .fbx, .glb or .gltf")
    disable_autoexec()
    scene = bpy.context.scene
    before = set(bpy.data.objects)
    try:
        if ext == ".blend":
            objs = _load_blend(path)
            for o in objs:
                if o.name not in scene.collection.objects:
                    scene.collection.objects.link(o)
        elif ext == ".fbx" and is_ascii_fbx(path):
            objs = [ob for _, ob in read_ascii_fbx(path)]
        elif ext == ".fbx":
            bpy.ops.import_scene.fbx(filepath=path, use_anim=False)
            objs = [o for o in bpy.data.objects if o not in before]
        else:
            bpy.ops.import_scene.gltf(filepath=path)
            objs = [o for o in bpy.data.objects if o not in before]
    except SceneImportError:
        raise
    except Exception as exc:  # the importers raise RuntimeError on bad files
        msg = " ".join(str(exc).split())[:300]
        raise SceneImportError(f"{path}: Blender could not import it ({msg})",
                               "re-export it from its authoring tool as .blend, binary FBX 7.x or glTF 2.0") from None
    for o in objs:
        if o.name not in scene.collection.objects and not o.users_collection:
            scene.collection.objects.link(o)
    bpy.context.view_layer.update()
    objs += _realize_instances(objs, scene.collection)
    bpy.context.view_layer.update()
    meshes = []
    for o in objs:
        if o.type != "MESH":
            continue
        if o.hide_render:
            continue
        mw = Matrix(o.matrix_world)
        o.parent = None
        o.matrix_world = mw
        src = o.get(SOURCE_PROP) or o.name
        o[SOURCE_PROP] = src
        meshes.append((src, o))
    keep = {id(o) for _, o in meshes}
    for o in objs:
        if id(o) not in keep:
            try:
                bpy.data.objects.remove(o, do_unlink=True)
            except ReferenceError:
                pass
    if names is not None:
        wanted = set(names)
        for src, o in meshes:
            if src not in wanted:
                bpy.data.objects.remove(o, do_unlink=True)
        meshes = [(s, o) for s, o in meshes if s in wanted]
    for _, o in meshes:
        o.is_shadow_catcher = False
        o.is_holdout = False
        o.visible_camera = True
    bpy.context.view_layer.update()
    return meshes


def world_triangles(ob, depsgraph):
    """(V,3) world vertices and (T,3) triangles of an object's evaluated mesh (modifiers applied)."""
    ev = ob.evaluated_get(depsgraph)
    me = ev.to_mesh()
    try:
        me.calc_loop_triangles()
        nv, nt = len(me.vertices), len(me.loop_triangles)
        co = np.empty(nv * 3, np.float32)
        me.vertices.foreach_get("co", co)
        tri = np.empty(nt * 3, np.int32)
        me.loop_triangles.foreach_get("vertices", tri)
        mw = np.array(ev.matrix_world, np.float64)
        v = co.reshape(-1, 3).astype(np.float64) @ mw[:3, :3].T + mw[:3, 3]
        mats = [s.material.name if s.material else None for s in ev.material_slots]
        return v, tri.reshape(-1, 3), mats
    finally:
        ev.to_mesh_clear()
