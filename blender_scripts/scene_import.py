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
  `read_ascii_fbx` below builds meshes from `fbx_ascii.read_meshes` - a minimal FBX 7.x reader
  for static meshes in numpy (tested in the main environment). The whole transform is baked
  into the vertices (the object's matrix is the identity).
- `.glb` / `.gltf`: `bpy.ops.import_scene.gltf` (glTF is metres, +Y up; the importer converts).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # siblings when imported from any script

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Matrix  # noqa: E402

import fbx_ascii  # noqa: E402

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
    return {"use_scripts_auto_execute": bool(fp.use_scripts_auto_execute), "autoexec_fail": bool(bpy.app.autoexec_fail)}


# --------------------------------------------------------------------------- .blend
_ANIMATED = (
    "objects",
    "meshes",
    "curves",
    "materials",
    "node_groups",
    "shape_keys",
    "lights",
    "cameras",
    "textures",
    "images",
    "armatures",
    "lattices",
    "metaballs",
    "volumes",
    "pointclouds",
    "hair_curves",
)


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
def is_ascii_fbx(path):
    return fbx_ascii.is_ascii_fbx(path)


def read_ascii_fbx(path):
    """Create one Blender mesh object per FBX Model with geometry (fbx_ascii.read_meshes); [(name, object)]."""
    try:
        meshes = fbx_ascii.read_meshes(path)
    except ValueError:
        raise SceneImportError(f"{path}: no Objects section", "re-export the file as binary FBX 7.x or glTF 2.0")
    mats = {}
    out = []
    for m in meshes:
        name, v, corner_vert, starts = m["name"], m["vertices"], m["corner_vert"], m["loop_starts"]
        me = bpy.data.meshes.new(name)
        me.vertices.add(len(v))
        me.vertices.foreach_set("co", v.astype(np.float32).ravel())
        me.loops.add(len(corner_vert))
        me.loops.foreach_set("vertex_index", corner_vert.astype(np.int32))
        me.polygons.add(len(starts))
        me.polygons.foreach_set("loop_start", starts.astype(np.int32))
        if m["mirrored"]:
            me.flip_normals()
        if m["uv"] is not None:
            layer = me.uv_layers.new(name="UVMap")
            layer.data.foreach_set("uv", m["uv"].astype(np.float32).ravel())
        for mid, mat in zip(m["material_ids"], m["materials"]):
            if mid not in mats:
                mats[mid] = _fbx_material(mat)
            me.materials.append(mats[mid])
        if m["material_index"] is not None:
            me.polygons.foreach_set("material_index", m["material_index"].astype(np.int32))
        me.update()
        me.validate(verbose=False)
        me.shade_flat()
        ob = bpy.data.objects.new(name, me)
        bpy.context.scene.collection.objects.link(ob)
        out.append((name, ob))
    return out


def _fbx_material(m):
    mat = bpy.data.materials.new(m["name"])
    nt = mat.node_tree
    bsdf = nt.nodes.get("Principled BSDF") or nt.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = (*m["color"], 1.0)
    bsdf.inputs["Roughness"].default_value = 0.6
    mat.diffuse_color = (*m["color"], 1.0)
    return mat


# --------------------------------------------------------------------------- common
def _realize_instances(objs, collection):
    """Empties instancing a collection -> real objects (recursively), linked into `collection`."""
    made = []
    stack = [
        (o, Matrix(o.matrix_world))
        for o in objs
        if o.instance_type == "COLLECTION" and o.instance_collection is not None
    ]
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
        raise SceneImportError(
            f"{path}: Blender could not import it ({msg})",
            "re-export it from its authoring tool as .blend, binary FBX 7.x or glTF 2.0",
        ) from None
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
