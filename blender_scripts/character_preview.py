"""Render a quick preview of baked characters (front, side, back) for a person to look at.

Usage (render child): character_preview.py -- JOB_FILE, a `CharacterPreviewJob`
(thfm_synth/blender/contract.py): out (OUT.png), characters (npz paths), pose (POSE.npz or
null), labels. Characters stand side by side, 1 m apart; Cycles, studio light; `labels`
colours the mesh by body part instead of its materials. Writes OUT_front/_side/_back.png.
"""

import colorsys
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

import character_load as cl  # noqa: E402
from bridge import contract  # noqa: E402


def _label_material():
    m = bpy.data.materials.new("labels")
    m.use_nodes = True
    nt = m.node_tree
    bsdf = nt.nodes.get("Principled BSDF")
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.attribute_name = cl.ATTR_PART
    ramp = nt.nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.interpolation = "CONSTANT"
    els = ramp.color_ramp.elements
    for k in range(25):
        pos = k / 25.0
        e = els[0] if k == 0 else (els[1] if k == 1 else els.new(pos))
        e.position = pos
        r, g, b = colorsys.hsv_to_rgb((k * 0.381966) % 1.0, 0.8, 0.95) if k else (0, 0, 0)
        e.color = (r, g, b, 1.0)
    div = nt.nodes.new("ShaderNodeMath")
    div.operation = "DIVIDE"
    div.inputs[1].default_value = 25.0
    add = nt.nodes.new("ShaderNodeMath")
    add.inputs[1].default_value = 0.5
    nt.links.new(attr.outputs["Fac"], add.inputs[0])
    nt.links.new(add.outputs[0], div.inputs[0])
    nt.links.new(div.outputs[0], ramp.inputs["Fac"])
    nt.links.new(ramp.outputs["Color"], bsdf.inputs["Base Color"])
    return m


def preview(job):
    labels, pose, out, paths = job.labels, job.pose, job.out, list(job.characters)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    n = len(paths)
    for k, p in enumerate(paths):
        rig, body = cl.build_character(p, name=f"c{k}", materials=not labels)
        if labels:
            body.data.materials.append(_label_material())
        rig.location.x = (k - (n - 1) / 2) * 1.0
        if pose:
            with np.load(pose, allow_pickle=False) as z:
                cl.set_pose(rig, z["quats"], None)
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = max(2.2, n * 1.0 + 0.4)
    cam.location = (0, -6, 0.95)
    cam.rotation_euler = (math.pi / 2, 0, 0)
    scene.camera = cam
    for name, energy, rot in (("key", 3.0, (0.9, 0.2, -0.5)), ("fill", 1.5, (1.2, -0.3, 2.5))):
        light = bpy.data.objects.new(name, bpy.data.lights.new(name, "SUN"))
        light.data.energy = energy
        light.rotation_euler = rot
        scene.collection.objects.link(light)
    world = bpy.data.worlds.new("w")
    world.color = (0.35, 0.35, 0.38)
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 16
    scene.cycles.use_denoising = False
    scene.render.resolution_x = int(220 * cam.data.ortho_scale)
    scene.render.resolution_y = 480
    scene.render.film_transparent = False
    views = [("front", 0.0), ("side", math.pi / 2), ("back", math.pi)]
    base, ext = os.path.splitext(out)
    written = []
    for vname, ang in views:
        cam.location = (6 * math.sin(ang), -6 * math.cos(ang), 0.95)
        cam.rotation_euler = (math.pi / 2, 0, ang)
        scene.render.filepath = f"{base}_{vname}{ext}"
        bpy.ops.render.render(write_still=True)
        written.append(scene.render.filepath)
    return {"images": written}


if __name__ == "__main__":
    contract.script_main(contract.SCRIPT_CHARACTER_PREVIEW, preview)
