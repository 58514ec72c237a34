"""Build a Blender character (armature + skinned mesh + materials + label attributes) from a baked npz.

Importable by other blender_scripts (`sys.path` holds this folder when a script runs from
it): `load_npz`, `build_character`, `set_pose`, `animate`, `evaluated_vertices`,
`bone_world_matrices`. Imports only bpy, numpy (1.26) and the standard library; the npz
format is documented in thfm_synth/assets/characters/__init__.py.

Everything is set with `foreach_set`; the only Python loops run over bones, materials and
distinct skin-weight values (weights are multiples of 1/4096), never over vertices.

Mesh attributes written (all readable by an Attribute shader node and so by AOVs):

* `thfm_part` (INT, FACE): DensePose part 1..24 of each face;
* `thfm_part_uv` (FLOAT2, CORNER): per-part chart UV of each face corner, in the face's part
  (exact along part borders, see thfm_synth/assets/characters/labels.py);
* `thfm_canonical` (FLOAT_VECTOR, POINT): canonical (NOCS) coordinates in [0, 1]^3;
* `thfm_vertex_part` (INT, POINT) and `thfm_vertex_part_uv` (FLOAT2, POINT): the per-vertex labels;
* `thfm_rest` (FLOAT_VECTOR, POINT): rest-pose position in metres (drives cloth patterns);
* `thfm_garment` (INT, POINT): 0 body, g > 0 garment g.
(The first three are the contract's label attributes, thfm_synth/blender/contract.py.)

Every material also carries AOV outputs `thfm_part` (value), `thfm_part_uv` and
`thfm_canonical` (colour) fed from those attributes, so a renderer only has to add view
layer AOVs of the same names.

Pose convention (`set_pose`, `animate`): per joint a unit quaternion (w, x, y, z) equal to
the pose bone's `rotation_quaternion` - the rotation relative to the rest pose, in the
bone's own rest frame (Blender's local convention) - plus the world position of the root
joint's head. thfm_synth.assets.characters.skinning.forward_kinematics computes the same pose in
numpy.
"""

from __future__ import annotations

import json
import os

import bpy
import numpy as np
from mathutils import Matrix

from bridge import contract

ATTR_PART = contract.ATTR_PART  # FACE
ATTR_PART_UV = contract.ATTR_PART_UV  # CORNER
ATTR_CANONICAL = contract.ATTR_CANONICAL  # POINT
ATTR_VERTEX_PART = "thfm_vertex_part"  # POINT
ATTR_VERTEX_PART_UV = "thfm_vertex_part_uv"  # POINT
ATTR_REST = "thfm_rest"
ATTR_GARMENT = "thfm_garment"
WEIGHT_QUANTUM = 4096


def load_npz(path: str) -> dict:
    """All arrays of a baked character; JSON members decoded (materials, garments, meta)."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    for key in ("materials_json", "garments_json", "meta_json"):
        data[key[:-5]] = json.loads(str(data.pop(key)))
    data["joint_names"] = [str(s) for s in data["joint_names"]]
    data["joint_source_names"] = [str(s) for s in data["joint_source_names"]]
    data["folder"] = os.path.dirname(os.path.abspath(path))  # texture references are relative to it
    return data


def _new_object(name: str, data, collection):
    obj = bpy.data.objects.new(name, data)
    (collection or bpy.context.scene.collection).objects.link(obj)
    return obj


def build_armature(data: dict, name: str = "character", collection=None):
    arm = bpy.data.armatures.new(f"{name}_armature")
    obj = _new_object(f"{name}_rig", arm, collection)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    heads = data["joint_heads"].astype(np.float64)
    tails = data["joint_tails"].astype(np.float64)
    rots = data["joint_rest_rotations"].astype(np.float64)
    parents = data["joint_parents"]
    bones = []
    for j, jname in enumerate(data["joint_names"]):
        eb = arm.edit_bones.new(jname)
        eb.head = heads[j].tolist()
        eb.tail = tails[j].tolist()
        m = np.eye(4)
        m[:3, :3] = rots[j]
        m[:3, 3] = heads[j]
        eb.matrix = Matrix(m.tolist())  # exact roll; keeps the length
        if parents[j] >= 0:
            eb.parent = bones[parents[j]]
        eb.use_connect = False
        eb.use_deform = True
        bones.append(eb)
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def build_mesh(data: dict, name: str = "character", collection=None):
    v = data["vertices"].astype(np.float32)
    f = data["faces"].astype(np.int32)
    nv, nf = len(v), len(f)
    me = bpy.data.meshes.new(f"{name}_mesh")
    me.vertices.add(nv)
    me.vertices.foreach_set("co", v.ravel())
    me.loops.add(nf * 3)
    me.loops.foreach_set("vertex_index", f.ravel())
    me.polygons.add(nf)
    me.polygons.foreach_set("loop_start", np.arange(0, 3 * nf, 3, dtype=np.int32))
    me.polygons.foreach_set("loop_total", np.full(nf, 3, np.int32))
    me.polygons.foreach_set("material_index", data["face_material"].astype(np.int32))
    uvl = me.uv_layers.new(name="UVMap")
    uvl.data.foreach_set("uv", data["uv"][data["face_uv"]].astype(np.float32).ravel())

    def attr(key, kind, domain, values, prop):
        a = me.attributes.new(key, kind, domain)
        a.data.foreach_set(prop, np.ascontiguousarray(values).ravel())

    attr(ATTR_PART, "INT", "FACE", data["face_part"].astype(np.int32), "value")
    attr(ATTR_PART_UV, "FLOAT2", "CORNER", data["corner_part_uv"].astype(np.float32), "vector")
    attr(ATTR_CANONICAL, "FLOAT_VECTOR", "POINT", data["vertex_canonical"].astype(np.float32), "vector")
    attr(ATTR_VERTEX_PART, "INT", "POINT", data["vertex_part"].astype(np.int32), "value")
    attr(ATTR_VERTEX_PART_UV, "FLOAT2", "POINT", data["vertex_part_uv"].astype(np.float32), "vector")
    attr(ATTR_REST, "FLOAT_VECTOR", "POINT", v, "vector")
    attr(ATTR_GARMENT, "INT", "POINT", data["vertex_garment"].astype(np.int32), "value")
    me.update()
    me.shade_smooth()
    return _new_object(f"{name}_body", me, collection)


def add_vertex_groups(obj, data: dict) -> None:
    """One group per joint; vertices added in bulk per distinct (quantised) weight."""
    idx = data["skin_indices"].astype(np.int64)
    w = data["skin_weights"].astype(np.float64)
    q = np.rint(w * WEIGHT_QUANTUM).astype(np.int64)
    rows = np.broadcast_to(np.arange(len(idx))[:, None], idx.shape)
    nz = q > 0
    joint, qv, vert = idx[nz], q[nz], rows[nz]
    order = np.lexsort((vert, qv, joint))
    joint, qv, vert = joint[order], qv[order], vert[order]
    key = joint * (WEIGHT_QUANTUM + 1) + qv
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], len(key)]
    groups = [obj.vertex_groups.new(name=n) for n in data["joint_names"]]
    for s, e in zip(starts, ends):
        groups[joint[s]].add(vert[s:e].tolist(), float(qv[s]) / WEIGHT_QUANTUM, "REPLACE")


def _pattern_nodes(nt, mat: dict, bsdf_color_socket):
    p = mat["pattern"]
    nodes, links = nt.nodes, nt.links
    rest = nodes.new("ShaderNodeAttribute")
    rest.attribute_name = ATTR_REST
    scale = 1.0 / max(float(p["scale_m"]), 1e-4)
    c1 = list(mat["base_color"]) + [1.0]
    c2 = list(p["color2"]) + [1.0]
    if p["type"] == "checker":
        tex = nodes.new("ShaderNodeTexChecker")
        tex.inputs["Scale"].default_value = scale / 2.0
        tex.inputs["Color1"].default_value = c1
        tex.inputs["Color2"].default_value = c2
        links.new(rest.outputs["Vector"], tex.inputs["Vector"])
        links.new(tex.outputs["Color"], bsdf_color_socket)
        return
    mix = nodes.new("ShaderNodeMix")
    mix.data_type = "RGBA"
    mix.inputs[6].default_value = c1
    mix.inputs[7].default_value = c2
    if p["type"] == "stripes":
        tex = nodes.new("ShaderNodeTexWave")
        tex.wave_type = "BANDS"
        tex.bands_direction = "Z" if p.get("axis", "z") == "z" else "X"
        tex.inputs["Scale"].default_value = scale / 6.283
        links.new(rest.outputs["Vector"], tex.inputs["Vector"])
        ramp = nodes.new("ShaderNodeMath")
        ramp.operation = "GREATER_THAN"
        ramp.inputs[1].default_value = 0.5
        links.new(tex.outputs["Fac"], ramp.inputs[0])
        links.new(ramp.outputs[0], mix.inputs[0])
    else:  # dots
        tex = nodes.new("ShaderNodeTexVoronoi")
        tex.inputs["Scale"].default_value = scale / 3.0
        tex.inputs["Randomness"].default_value = 0.0
        links.new(rest.outputs["Vector"], tex.inputs["Vector"])
        ramp = nodes.new("ShaderNodeMath")
        ramp.operation = "LESS_THAN"
        ramp.inputs[1].default_value = 0.3
        links.new(tex.outputs["Distance"], ramp.inputs[0])
        links.new(ramp.outputs[0], mix.inputs[0])
    links.new(mix.outputs[2], bsdf_color_socket)


def _label_aovs(nt) -> None:
    nodes, links = nt.nodes, nt.links
    for name, attr_name, socket in (
        (ATTR_PART, ATTR_PART, "Fac"),
        (ATTR_PART_UV, ATTR_PART_UV, "Vector"),
        (ATTR_CANONICAL, ATTR_CANONICAL, "Vector"),
    ):
        a = nodes.new("ShaderNodeAttribute")
        a.attribute_name = attr_name
        out = nodes.new("ShaderNodeOutputAOV")
        out.aov_name = name
        if socket == "Fac":
            links.new(a.outputs["Fac"], out.inputs["Value"])
        else:
            links.new(a.outputs["Vector"], out.inputs["Color"])


def _texture_path(ref, folder):
    """A material's texture reference (thfm_synth/assets/characters/materials.py) as a file path."""
    if ref is None:
        return None
    if isinstance(ref, str):  # format 1: an absolute path
        return ref
    return os.path.join(folder or "", ref["path"])


def build_material(mat: dict, name_prefix: str = "", folder: str | None = None):
    """A Principled material for previews: base colour (map x tint, or the dye colour), roughness,
    metallic, subsurface, sheen, normal map and alpha. Video rendering builds its materials in
    render_scene.py from the scene description instead."""
    m = bpy.data.materials.new(f"{name_prefix}{mat['name']}")
    m.use_nodes = True
    nt = m.node_tree
    bsdf = nt.nodes.get("Principled BSDF")
    bsdf.inputs["Base Color"].default_value = list(mat.get("base_color", (0.8, 0.8, 0.8))) + [1.0]
    bsdf.inputs["Roughness"].default_value = float(mat.get("roughness", 0.5))
    bsdf.inputs["Metallic"].default_value = float(mat.get("metallic", 0.0))
    sss = mat.get("subsurface")
    weight = float(sss.get("weight", 0.0)) if isinstance(sss, dict) else float(sss or 0.0)
    if weight > 0:
        bsdf.inputs["Subsurface Weight"].default_value = weight
        radius = sss.get("radius", (0.012, 0.005, 0.003)) if isinstance(sss, dict) else (0.012, 0.005, 0.003)
        bsdf.inputs["Subsurface Radius"].default_value = tuple(radius)
        bsdf.inputs["Subsurface Scale"].default_value = 1.0
    sheen = mat.get("sheen")
    sheen_w = float(sheen.get("weight", 0.0)) if isinstance(sheen, dict) else float(sheen or 0.0)
    if sheen_w > 0:
        bsdf.inputs["Sheen Weight"].default_value = sheen_w
    base = _texture_path(mat.get("base_color_map", mat.get("texture")), folder)
    recolor = mat.get("recolor") or {}
    if base:
        tex = nt.nodes.new("ShaderNodeTexImage")
        try:
            tex.image = bpy.data.images.load(base, check_existing=True)
        except RuntimeError:
            raise RuntimeError(f"texture {base} of material {mat['name']} cannot be read") from None
        color = tex.outputs["Color"]
        tint = mat.get("tint") or recolor.get("color")
        if tint:
            mul = nt.nodes.new("ShaderNodeMix")
            mul.data_type = "RGBA"
            mul.blend_type = "MULTIPLY"
            mul.inputs[0].default_value = 1.0
            nt.links.new(color, mul.inputs[6])
            scale = 1.0 / max(float(recolor.get("luminance", 1.0)), 1e-3) if recolor and not mat.get("tint") else 1.0
            mul.inputs[7].default_value = [min(c * scale, 4.0) for c in tint] + [1.0]
            color = mul.outputs[2]
        nt.links.new(color, bsdf.inputs["Base Color"])
        if mat.get("alpha_mode", "opaque") != "opaque":
            nt.links.new(tex.outputs["Alpha"], bsdf.inputs["Alpha"])
    elif mat.get("pattern"):
        _pattern_nodes(nt, mat, bsdf.inputs["Base Color"])
    normal = _texture_path(mat.get("normal_map"), folder)
    if normal:
        img = nt.nodes.new("ShaderNodeTexImage")
        img.image = bpy.data.images.load(normal, check_existing=True)
        img.image.colorspace_settings.name = "Non-Color"
        nm = nt.nodes.new("ShaderNodeNormalMap")
        nm.inputs["Strength"].default_value = float(mat.get("normal_strength", 1.0))
        nt.links.new(img.outputs["Color"], nm.inputs["Color"])
        nt.links.new(nm.outputs["Normal"], bsdf.inputs["Normal"])
    _label_aovs(nt)
    return m


def build_character(data: dict | str, name: str = "character", collection=None, materials: bool = True):
    """(armature object, mesh object) for a baked character (npz path or `load_npz` dict)."""
    if isinstance(data, str):
        data = load_npz(data)
    rig = build_armature(data, name, collection)
    body = build_mesh(data, name, collection)
    add_vertex_groups(body, data)
    if materials:
        for mat in data["materials"]:
            body.data.materials.append(build_material(mat, f"{name}_", data.get("folder")))
    body.parent = rig
    mod = body.modifiers.new("armature", "ARMATURE")
    mod.object = rig
    mod.use_vertex_groups = True
    mod.use_deform_preserve_volume = False  # plain linear blend skinning
    rig["thfm_meta"] = json.dumps(data["meta"])
    rig["thfm_joint_names"] = json.dumps(data["joint_names"])
    return rig, body


def pose_bones(rig) -> list:
    """Pose bones in the npz joint order."""
    names = json.loads(rig["thfm_joint_names"]) if "thfm_joint_names" in rig else [b.name for b in rig.pose.bones]
    return [rig.pose.bones[n] for n in names]


def _root_location(rig, root_world) -> list[float]:
    """pose_bone.location of the root that puts its head at `root_world` (world frame)."""
    root = pose_bones(rig)[0]
    rest = np.array(root.bone.matrix_local)
    world = np.array(rig.matrix_world)
    target_arm = np.linalg.inv(world) @ np.r_[np.asarray(root_world, np.float64), 1.0]
    return (rest[:3, :3].T @ (target_arm[:3] - rest[:3, 3])).tolist()


def set_pose(rig, quats, root_world=None) -> None:
    """Pose now: quats (J, 4) w,x,y,z local rotations; root_world (3,) head of joint 0 or None (rest)."""
    quats = np.asarray(quats, np.float64)
    bones = pose_bones(rig)
    for j, pb in enumerate(bones):
        pb.rotation_mode = "QUATERNION"
        pb.rotation_quaternion = quats[j].tolist()
        pb.location = (0.0, 0.0, 0.0)
    if root_world is not None:
        bones[0].location = _root_location(rig, root_world)
    bpy.context.view_layer.update()


def animate(rig, quats, root_world, frame_start: int = 1, action_name: str = "thfm_motion"):
    """Keyframe T frames: quats (T, J, 4), root_world (T, 3); one fcurve per channel via foreach_set."""
    quats = np.asarray(quats, np.float64)
    root_world = np.asarray(root_world, np.float64)
    n = len(quats)
    frames = np.arange(frame_start, frame_start + n, dtype=np.float64)
    rig.animation_data_create()
    action = bpy.data.actions.new(action_name)
    rig.animation_data.action = action
    bones = pose_bones(rig)
    root = bones[0]
    rest = np.array(root.bone.matrix_local)
    world_inv = np.linalg.inv(np.array(rig.matrix_world))
    arm_pts = root_world @ world_inv[:3, :3].T + world_inv[:3, 3]
    loc = (arm_pts - rest[:3, 3]) @ rest[:3, :3]  # rest^T (p - head) per frame

    def curve(path, index, group, values):
        fc = action.fcurve_ensure_for_datablock(rig, path, index=index, group_name=group)
        fc.keyframe_points.add(n)
        fc.keyframe_points.foreach_set("co", np.stack([frames, values], 1).ravel())
        fc.keyframe_points.foreach_set("interpolation", np.full(n, 1, np.int32))  # LINEAR
        fc.update()

    for j, pb in enumerate(bones):
        pb.rotation_mode = "QUATERNION"
        for k in range(4):
            curve(f'pose.bones["{pb.name}"].rotation_quaternion', k, pb.name, quats[:, j, k])
    for k in range(3):
        curve(f'pose.bones["{root.name}"].location', k, root.name, loc[:, k])
    return action


def evaluated_vertices(body) -> np.ndarray:
    """(V, 3) world positions of the deformed mesh at the current frame/pose."""
    dg = bpy.context.evaluated_depsgraph_get()
    ev = body.evaluated_get(dg)
    me = ev.to_mesh()
    co = np.empty(len(me.vertices) * 3, np.float32)
    me.vertices.foreach_get("co", co)
    ev.to_mesh_clear()
    mw = np.array(body.matrix_world)
    co = co.reshape(-1, 3).astype(np.float64)
    return co @ mw[:3, :3].T + mw[:3, 3]


def bone_world_matrices(rig) -> np.ndarray:
    """(J, 4, 4) posed bone-to-world matrices (bone order of the npz)."""
    mw = np.array(rig.matrix_world)
    return np.stack([mw @ np.array(pb.matrix) for pb in pose_bones(rig)])
