"""Read a rigged character file (FBX, GLB/glTF) into a raw npz for thfm_synth.assets.characters.importer.

Usage (render child): character_import.py -- JOB_FILE, a `CharacterImportJob`
(thfm_synth/blender/contract.py): path (INPUT), raw_npz (OUT_RAW.npz), texture_dir (TEXTURE_DIR).

Imports with Blender's own importers (FBX: bpy.ops.import_scene.fbx, which applies the
file's unit scale; glTF: bpy.ops.import_scene.gltf), picks the armature that deforms the
most vertices, and writes - all in Blender world space, metres, at the rest pose:

  vertices (V, 3); tri_vertices (T, 3); tri_uv (T, 3, 2); tri_material (T,);
  has_uv (); weight_bones (V, K) int32 bone index or -1; weight_values (V, K);
  bone_names (J,); bone_parents (J,) int32; bone_heads, bone_tails (J, 3);
  bone_rotations (J, 3, 3) bone-to-world, column 1 along head->tail; bone_deform (J,) bool;
  materials_json (list of {name, base_color (linear RGB), roughness, metallic, texture});
  info_json (armature/mesh names, counts, importer).

Meshes are evaluated with their modifiers (armature at rest) and triangulated (loop
triangles). A mesh parented to a bone is weighted 1.0 to that bone; only vertex groups of
deforming bones count. Packed (embedded) textures are saved as PNG under TEXTURE_DIR.
Bad input is reported as a `JobInputError` (what + fix); the result is the info dict below.
Imports only bpy, numpy, the standard library and its sibling `bridge`.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from bridge import contract  # noqa: E402


def fail(what, fix):
    raise contract.JobInputError(what, fix)


def do_import(path):
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".fbx":
            bpy.ops.import_scene.fbx(filepath=path, use_anim=False, ignore_leaf_bones=False)
        elif ext in (".glb", ".gltf"):
            bpy.ops.import_scene.gltf(filepath=path)
        else:
            fail(f"unsupported character format {ext}", "use .fbx, .glb or .gltf")
    except Exception as exc:  # the importers raise plain RuntimeError on bad files
        msg = " ".join(str(exc).split())[:300]
        fail(
            f"Blender could not import it ({msg})", "re-export the file from its authoring tool as FBX 7.x or glTF 2.0"
        )


def skinned_meshes(arm):
    out = []
    for ob in bpy.data.objects:
        if ob.type != "MESH":
            continue
        by_mod = any(m.type == "ARMATURE" and m.object == arm for m in ob.modifiers)
        by_parent = ob.parent == arm
        if by_mod or by_parent:
            out.append(ob)
    return out


def linear_color_of(mat):
    """(base colour RGB linear, roughness, metallic, image) of a material's Principled BSDF."""
    base, rough, metal, image = [0.8, 0.8, 0.8], 0.5, 0.0, None
    if mat is None:
        return base, rough, metal, image
    if not mat.use_nodes or mat.node_tree is None:
        return list(mat.diffuse_color)[:3], float(mat.roughness), float(mat.metallic), None
    bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        return list(mat.diffuse_color)[:3], rough, metal, None
    base = list(bsdf.inputs["Base Color"].default_value)[:3]
    rough = float(bsdf.inputs["Roughness"].default_value)
    metal = float(bsdf.inputs["Metallic"].default_value)
    # the first image texture upstream of the base colour
    stack = [link.from_node for link in bsdf.inputs["Base Color"].links]
    seen = set()
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.type == "TEX_IMAGE" and node.image is not None:
            image = node.image
            break
        for inp in node.inputs:
            stack.extend(link.from_node for link in inp.links)
    return base, rough, metal, image


CHANNELS = {"Red": "r", "R": "r", "Green": "g", "G": "g", "Blue": "b", "B": "b", "Alpha": "a"}


def map_upstream(bsdf, input_name):
    """{"image", "channel" (r|g|b|a|rgb), "invert"} of the image feeding a BSDF input, or None.

    Follows links upstream through converter nodes: a Separate Color output selects a channel
    (glTF packs roughness in G, metallic in B), an image's Alpha output the alpha, an Invert node
    (or 1 - x) marks a gloss map."""
    sock = bsdf.inputs.get(input_name)
    if sock is None:
        return None
    stack = [(link.from_node, link.from_socket.name, None, False) for link in sock.links]
    seen = set()
    while stack:
        node, out_name, channel, invert = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        if node.type == "TEX_IMAGE" and node.image is not None:
            return {
                "image": node.image,
                "channel": "a" if out_name == "Alpha" else (channel or "rgb"),
                "invert": invert,
            }
        if node.type in ("SEPARATE_COLOR", "SEPRGB", "SEPARATE_RGB"):
            channel = CHANNELS.get(out_name, channel)
        if node.type == "INVERT" or (node.type == "MATH" and node.operation == "SUBTRACT"):
            invert = not invert
        for inp in node.inputs:
            if input_name == "Normal" and node.type == "NORMAL_MAP" and inp.name != "Color":
                continue
            stack.extend((link.from_node, link.from_socket.name, channel, invert) for link in inp.links)
    return None


def extra_maps(mat, tex_dir):
    """Normal, roughness, metallic and alpha maps and subsurface of a material (schema fields)."""
    out = {}
    if mat is None or not mat.use_nodes or mat.node_tree is None:
        return out
    bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        return out
    for key, name in (("normal", "Normal"), ("roughness", "Roughness"), ("metallic", "Metallic"), ("alpha", "Alpha")):
        found = map_upstream(bsdf, name)
        if found is not None:
            path = texture_path(found["image"], tex_dir)
            if path is not None:
                out[key] = {"path": path, "channel": found["channel"], "invert": found["invert"]}
    # a partly transparent material; an alpha of exactly 0 on an opaque-looking character is an
    # exporter quirk (FBX TransparencyFactor read as full transparency), never a whole invisible skin
    alpha = float(bsdf.inputs["Alpha"].default_value)
    if "alpha" not in out and 0.0 < alpha < 1.0:
        out["opacity"] = alpha
    w = bsdf.inputs.get("Subsurface Weight")
    if w is not None and float(w.default_value) > 0:
        scale = float(bsdf.inputs["Subsurface Scale"].default_value)
        out["subsurface"] = {
            "weight": float(w.default_value),
            "radius": [float(r) * scale for r in bsdf.inputs["Subsurface Radius"].default_value],
        }
    return out


def texture_path(image, tex_dir):
    if image is None:
        return None
    try:
        if image.packed_file is not None or not os.path.isfile(bpy.path.abspath(image.filepath)):
            if image.packed_file is None and not image.has_data:
                return None
            os.makedirs(tex_dir, exist_ok=True)
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in image.name)
            dest = os.path.join(tex_dir, os.path.splitext(safe)[0] + ".png")
            image.filepath_raw = dest
            image.file_format = "PNG"
            image.save()
            return os.path.abspath(dest)
        return os.path.abspath(bpy.path.abspath(image.filepath))
    except RuntimeError:
        return None


def import_character(job):
    src, out_path, tex_dir = job.path, job.raw_npz, job.texture_dir
    t0 = time.perf_counter()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    do_import(src)
    arms = [ob for ob in bpy.data.objects if ob.type == "ARMATURE"]
    meshes_all = [ob for ob in bpy.data.objects if ob.type == "MESH"]
    if not arms:
        fail(
            f"has no armature ({len(meshes_all)} mesh object(s), no skeleton)",
            "export the character together with its skeleton (armature) and skin weights",
        )
    scored = []
    for arm in arms:
        ms = skinned_meshes(arm)
        scored.append((sum(len(m.data.vertices) for m in ms), arm, ms))
    scored.sort(key=lambda s: -s[0])
    nverts, arm, meshes = scored[0]
    if nverts == 0:
        fail(f"armature {arm.name!r} deforms no mesh", "export the mesh with its armature modifier / skin")
    arm.data.pose_position = "REST"
    bpy.context.view_layer.update()

    bones = list(arm.data.bones)
    bone_index = {b.name: i for i, b in enumerate(bones)}
    amw = np.array(arm.matrix_world)
    heads = np.array([amw @ np.r_[np.array(b.head_local), 1.0] for b in bones])[:, :3]
    tails = np.array([amw @ np.r_[np.array(b.tail_local), 1.0] for b in bones])[:, :3]
    rots = []
    for b in bones:
        m = amw[:3, :3] @ np.array(b.matrix_local)[:3, :3]
        m = m / np.linalg.norm(m, axis=0, keepdims=True)
        rots.append(m)
    parents = [bone_index[b.parent.name] if b.parent else -1 for b in bones]
    deform = [bool(b.use_deform) for b in bones]

    dg = bpy.context.evaluated_depsgraph_get()
    materials, mat_key = [], {}
    all_v, all_t, all_uv, all_m, all_wb, all_wv = [], [], [], [], [], []
    has_uv = True
    offset = 0
    for ob in meshes:
        ev = ob.evaluated_get(dg)
        me = ev.to_mesh()
        me.calc_loop_triangles()
        nv, nt = len(me.vertices), len(me.loop_triangles)
        if nv == 0 or nt == 0:
            ev.to_mesh_clear()
            continue
        co = np.empty(nv * 3, np.float32)
        me.vertices.foreach_get("co", co)
        mw = np.array(ob.matrix_world)
        co = co.reshape(-1, 3).astype(np.float64) @ mw[:3, :3].T + mw[:3, 3]
        tv = np.empty(nt * 3, np.int32)
        me.loop_triangles.foreach_get("vertices", tv)
        tl = np.empty(nt * 3, np.int32)
        me.loop_triangles.foreach_get("loops", tl)
        tm = np.empty(nt, np.int32)
        me.loop_triangles.foreach_get("material_index", tm)
        if np.linalg.det(mw[:3, :3]) < 0:  # mirrored object: keep faces counter-clockwise
            tv = tv.reshape(-1, 3)[:, ::-1].ravel()
            tl = tl.reshape(-1, 3)[:, ::-1].ravel()
        if me.uv_layers.active is not None:
            uv = np.empty(len(me.loops) * 2, np.float32)
            me.uv_layers.active.data.foreach_get("uv", uv)
            tri_uv = uv.reshape(-1, 2)[tl].reshape(-1, 3, 2)
        else:
            has_uv = False
            tri_uv = np.zeros((nt, 3, 2), np.float32)
        # materials of this object -> global table
        slot_to_global = []
        for slot in ob.material_slots or [None]:
            mat = slot.material if slot is not None else None
            key = mat.name if mat is not None else "__default__"
            if key not in mat_key:
                base, rough, metal, image = linear_color_of(mat)
                mat_key[key] = len(materials)
                materials.append(
                    {
                        "name": key,
                        "base_color": [float(x) for x in base],
                        "roughness": rough,
                        "metallic": metal,
                        "texture": texture_path(image, tex_dir),
                        "maps": extra_maps(mat, tex_dir),
                    }
                )
            slot_to_global.append(mat_key[key])
        tm = np.asarray(slot_to_global, np.int32)[np.clip(tm, 0, len(slot_to_global) - 1)]
        # skin weights
        wb = np.full((nv, 8), -1, np.int32)
        wv = np.zeros((nv, 8), np.float32)
        if ob.parent == arm and ob.parent_type == "BONE" and ob.parent_bone in bone_index:
            wb[:, 0] = bone_index[ob.parent_bone]
            wv[:, 0] = 1.0
        else:
            group_bone = {}
            for g in ob.vertex_groups:
                j = bone_index.get(g.name)
                if j is not None and deform[j]:
                    group_bone[g.index] = j
            width = 8
            for i, v in enumerate(me.vertices):
                entries = [
                    (group_bone[g.group], g.weight) for g in v.groups if g.group in group_bone and g.weight > 0.0
                ]
                if not entries:
                    continue
                if len(entries) > width:
                    entries.sort(key=lambda e: -e[1])
                    entries = entries[:width]
                for k, (j, w) in enumerate(entries):
                    wb[i, k] = j
                    wv[i, k] = w
        ev.to_mesh_clear()
        all_v.append(co)
        all_t.append(tv.reshape(-1, 3) + offset)
        all_uv.append(tri_uv)
        all_m.append(tm)
        all_wb.append(wb)
        all_wv.append(wv)
        offset += nv
    if not all_v:
        fail(f"armature {arm.name!r} deforms only empty meshes", "export the character's mesh with it")
    bone_shapes = {pb.custom_shape for a in arms for pb in a.pose.bones if pb.custom_shape is not None}
    info = {
        "armature": arm.name,
        "meshes": [m.name for m in meshes],
        # bone display shapes (the glTF importer's "Icosphere") are not part of the character
        "unskinned_meshes": [m.name for m in meshes_all if m not in meshes and m not in bone_shapes],
        "armatures": [a.name for a in arms],
        "importer": "import_scene.fbx" if src.lower().endswith(".fbx") else "import_scene.gltf",
        "blender": bpy.app.version_string,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    tmp = out_path + ".tmp.npz"
    np.savez(
        tmp,
        vertices=np.concatenate(all_v),
        tri_vertices=np.concatenate(all_t),
        tri_uv=np.concatenate(all_uv),
        tri_material=np.concatenate(all_m),
        has_uv=np.array(has_uv),
        weight_bones=np.concatenate(all_wb),
        weight_values=np.concatenate(all_wv),
        bone_names=np.array([b.name for b in bones], dtype=str),
        bone_parents=np.array(parents, np.int32),
        bone_heads=heads,
        bone_tails=tails,
        bone_rotations=np.array(rots),
        bone_deform=np.array(deform),
        materials_json=np.array(json.dumps(materials)),
        info_json=np.array(json.dumps(info)),
    )
    os.replace(tmp, out_path)
    return info


if __name__ == "__main__":
    contract.script_main(contract.SCRIPT_CHARACTER_IMPORT, import_character)
