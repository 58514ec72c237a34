"""Render a scene-description folder with Cycles: every modality from ONE render per frame.

    render_scene.py -- JOB_FILE        (one RenderJob, see thfm_synth/blender/contract.py)
    render_scene.py -- --serve         (one job per stdin line; the render farm's long-lived child)

The job names the description folder (`scene.json` + `arrays.npz`, written by
`thfm_synth.render.description`), the output folder, the frames, modalities, mode and device.
This file imports only bpy, numpy, the standard library and its siblings (`bridge` for the
contract, `scene_import` for `scene_file` objects: .blend by library append with Python
auto-execution off, FBX/glTF by the importers, ASCII FBX through `fbx_ascii`; each file once
per job, instanced per object, every material given the `fg` AOV node). Per frame it sets the
camera from K and [R|t], the object poses and baked vertices, then makes ONE
`bpy.ops.render.render()` call that renders two view layers, and saves the render result as one
multilayer float32 OpenEXR `OUT/raw/NNNNN.exr` (Blender 5 writes one EXR part per layer and
pass; the channel names are `contract.CH_*`):

  rgb     Cycles samples = the description's samples, OIDN (`denoise_prefilter`, default FAST;
          albedo+normal guides); adaptive sampling when the description asks
            rgb.Combined.RGBA     linear scene colour (denoised)
            rgb.Noisy Image.RGBA  written by Blender whenever denoising is on (unused)
            rgb.fg.X              AOV: the object's `thfm_subject` property (1 subjects, 0 else),
                                  averaged over all samples = antialiased coverage, exactly
                                  k/samples (adaptive sampling off): 1 inside, 0 outside
  mask    only when contract.mask_layer(render): the RGB adapts (`adaptive_sampling`) or
          `mask_samples` differs from `samples`. `mask_samples` fixed samples, never denoised,
          material_override = a coverage-only shader (`mask_material`: paths end at the first
          hit; alpha cards keep their material's per-sample 0/1 gate), so
            mask.fg.X (and mask.personK.X)  exactly k/mask_samples, sample for sample the
                                  coverage the RGB layer's AOV has at that sample count.
          Cycles' adaptive sampling is one switch per scene, so with it the RGB is rendered in a
          call of its own (adaptive) and the labels and mask in a second (fixed): two EXRs per
          frame, OUT/raw/NNNNN_rgb.exr and NNNNN_labels.exr.
  labels  1 sample; Cycles' first sample of a pixel is its centre ray, so every value is the
          exact value at the pixel centre and nothing is blended; material_override = one
          label shader (attribute -> AOV, 1e-9 emission, so paths stop at the first hit)
            labels.Combined.RGBA  always written by Blender (unused)
            labels.Depth.Z        camera-frame z (planar depth, not ray length), 1e10 = miss
            labels.Normal.XYZ     world-space smooth shading normal, flipped to face the viewer
            labels.Object Index.X object pass_index = description `instance` (0 = miss)
            labels.part.X         AOV: FACE float attribute thfm_part (0 where absent)
            labels.part_u.X/part_v.X  AOVs: CORNER vector attribute thfm_part_uv
            labels.can_x.X/can_y.X/can_z.X  AOVs: POINT vector attribute thfm_canonical

No compositor: scene.render.use_compositing = False and the render result of all view layers is
written by `Image.save_render` (not `write_still`, see `save_result`). `thfm_synth.render.outputs`
turns the EXR into the stored modalities. Progress: one `THFM_PROGRESS {json}` line per frame on
stdout; `OUT/render_info.json` at the end, also returned as the job's result.

Mode `per_modality` is the benchmark baseline (one render call per modality per frame, one
view layer each); mode `rgb_only` renders only the RGB layer.
"""

import json
import math
import os
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # siblings: bridge, scene_import

import bpy  # noqa: E402
import numpy as np  # noqa: E402
from mathutils import Matrix  # noqa: E402

from bridge import contract  # noqa: E402

ALL_MODALITIES = contract.RENDER_MODALITIES
LABEL_MODALITIES = contract.RENDER_LABEL_MODALITIES
LABEL_AOVS = contract.LABEL_AOVS
AOVS = contract.AOVS
SUBJECT_PROP = contract.PROP_SUBJECT
ATTR_PART, ATTR_PART_UV, ATTR_CANONICAL = contract.ATTR_PART, contract.ATTR_PART_UV, contract.ATTR_CANONICAL
BLENDER_CAM_TO_OPENCV = np.diag([1.0, -1.0, -1.0])
warn = contract.warn


# --------------------------------------------------------------------------- description
def load_description(folder):
    path = os.path.join(folder, contract.SCENE_JSON)
    if not os.path.isfile(path):
        raise contract.JobInputError(f"{path} not found", "save the scene description before rendering it")
    with open(path) as fh:
        doc = json.load(fh)
    if doc.get("format_version") != contract.SCENE_FORMAT_VERSION:
        raise contract.JobInputError(
            f"{path}: scene format_version {doc.get('format_version')} is not {contract.SCENE_FORMAT_VERSION}",
            "write the description with the same thfm-synth version as blender_scripts/",
        )
    npz = np.load(os.path.join(folder, contract.ARRAYS_NPZ), allow_pickle=False)
    arrays = {k: npz[k] for k in npz.files}
    return doc, arrays


def resolve(path, root):
    return path if os.path.isabs(path) else os.path.join(root, path)


# --------------------------------------------------------------------------- geometry
def box_mesh(sx, sy, sz):
    hx, hy, hz = sx / 2, sy / 2, sz / 2
    quads = []  # (4 corners, counter-clockwise from outside)
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u_ax, v_ax = [(1, 2), (2, 0), (0, 1)][axis]
            if sign < 0:
                u_ax, v_ax = v_ax, u_ax
            corners = []
            for du, dv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                p = [0.0, 0.0, 0.0]
                p[axis] = sign
                p[u_ax] = du
                p[v_ax] = dv
                corners.append(p)
            quads.append(corners)
    q = np.array(quads) * np.array([hx, hy, hz])  # (6,4,3)
    verts = q.reshape(-1, 3)
    idx = np.arange(24).reshape(6, 4)
    faces = np.concatenate([idx[:, [0, 1, 2]], idx[:, [0, 2, 3]]])
    quv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    uv = np.concatenate([quv[[0, 1, 2]][None].repeat(6, 0), quv[[0, 2, 3]][None].repeat(6, 0)])
    return verts, faces, uv


def build_mesh(name, verts, faces, corner_uv=None, face_material=None, labels=None, smooth=True, vertex_normals=None):
    verts = np.ascontiguousarray(verts, np.float32)
    faces = np.ascontiguousarray(faces, np.int32)
    nv, nf = len(verts), len(faces)
    me = bpy.data.meshes.new(name)
    me.vertices.add(nv)
    me.vertices.foreach_set("co", verts.ravel())
    me.loops.add(3 * nf)
    me.loops.foreach_set("vertex_index", faces.ravel())
    me.polygons.add(nf)
    me.polygons.foreach_set("loop_start", np.arange(0, 3 * nf, 3, dtype=np.int32))
    if corner_uv is not None:
        layer = me.uv_layers.new(name="UVMap")
        layer.data.foreach_set("uv", np.ascontiguousarray(corner_uv, np.float32).ravel())
    if face_material is not None:
        me.polygons.foreach_set("material_index", np.ascontiguousarray(face_material, np.int32))
    if labels is not None:
        part, part_uv, canonical = labels
        a = me.attributes.new(ATTR_PART, "FLOAT", "FACE")
        a.data.foreach_set("value", np.ascontiguousarray(part, np.float32))
        a = me.attributes.new(ATTR_PART_UV, "FLOAT_VECTOR", "CORNER")
        puv = np.zeros((nf * 3, 3), np.float32)
        puv[:, :2] = np.asarray(part_uv, np.float32).reshape(-1, 2)
        a.data.foreach_set("vector", puv.ravel())
        a = me.attributes.new(ATTR_CANONICAL, "FLOAT_VECTOR", "POINT")
        a.data.foreach_set("vector", np.ascontiguousarray(canonical, np.float32).ravel())
    me.update()
    if me.validate(verbose=False):
        warn(f"mesh {name}: Blender corrected invalid geometry")
    if smooth:
        me.shade_smooth()
        if vertex_normals is not None:
            me.normals_split_custom_set_from_vertices(np.asarray(vertex_normals, np.float32).tolist())
    else:
        me.shade_flat()
    return me


# --------------------------------------------------------------------------- materials
def _link(nt, a, b):
    nt.links.new(a, b)


def aov_value(nt, socket, name):
    out = nt.nodes.new("ShaderNodeOutputAOV")
    out.aov_name = name
    _link(nt, socket, out.inputs["Value"])


def subject_aov(nt, gate=None):
    """AOV `fg` = the object's `thfm_subject` custom property (1 on subjects, 0 elsewhere).

    `gate` (a 0/1 socket): an alpha card's per-sample coverage, so the AOV averaged over the
    samples is the card's alpha-composited matte (see `alpha_gate`).
    """
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "OBJECT"
    attr.attribute_name = SUBJECT_PROP
    value = attr.outputs["Fac"]
    if gate is not None:
        value = _math(nt, "MULTIPLY", value, gate)
    aov_value(nt, value, contract.AOV_FG)
    if PEOPLE[0] > 1:  # one coverage AOV per person: 1 where this object is person k
        person = nt.nodes.new("ShaderNodeAttribute")
        person.attribute_type = "OBJECT"
        person.attribute_name = contract.PROP_PERSON
        for k in range(1, PEOPLE[0] + 1):
            same = _math(nt, "COMPARE", person.outputs["Fac"], float(k))
            same.node.inputs[2].default_value = 0.5  # |person - k| <= 0.5
            aov_value(nt, same if gate is None else _math(nt, "MULTIPLY", same, gate), contract.aov_person(k))


PEOPLE = [1]  # people in the scene being built (set per job from the description)


def load_image(path, what):
    """An image Blender will sample, loaded and checked: an image that does not load renders as
    magenta (a texture) or black (an HDRI) with no error, so it is bad input here instead."""
    if not os.path.isfile(path):
        raise contract.JobInputError(f"{what} {path} not found", "restore the file or fix the asset manifest")
    try:
        image = bpy.data.images.load(path, check_existing=True)
    except RuntimeError as exc:
        raise contract.JobInputError(f"{what} {path} cannot be read ({exc})", "replace it with a valid image")
    check_image(image, what, path)
    return image


def check_image(image, what, path=None):
    width, height = image.size  # reading the size loads the pixels (images load lazily)
    if width == 0 or height == 0 or not image.has_data:
        path = path or bpy.path.abspath(image.filepath) or image.name
        raise contract.JobInputError(
            f"{what} {path} did not load (truncated, damaged or not an image format Blender reads)",
            "replace it with a complete copy (`thfm-synth assets validate` decodes every asset file)",
        )


# Materials follow thfm_synth/assets/characters/materials.py (the schema) as flattened by
# thfm_synth/render/description.py `Material`; every key is optional (older descriptions
# hold only name, base_color, roughness, metallic, specular, texture, checker_*).
ALPHA_CARDS_PROP = "thfm_alpha_cards"  # scene property: JSON list of alpha maps (label override)
ATTR_ALPHA = "thfm_alpha"  # FACE float: 1-based index into that list, 0 = opaque


def _math(nt, op, a, b=None, clamp=False):
    n = nt.nodes.new("ShaderNodeMath")
    n.operation = op
    n.use_clamp = clamp
    for i, v in enumerate((a, b)):
        if v is None:
            continue
        if isinstance(v, (int, float)):
            n.inputs[i].default_value = float(v)
        else:
            _link(nt, v, n.inputs[i])
    return n.outputs[0]


def _mix_rgb(nt, fac, a, b, blend="MIX"):
    """ShaderNodeMix (RGBA): fac, a and b are sockets or constants."""
    n = nt.nodes.new("ShaderNodeMix")
    n.data_type = "RGBA"
    n.blend_type = blend
    a_in, b_in = [i for i in n.inputs if i.type == "RGBA"][:2]
    for sock, v in ((n.inputs[0], fac), (a_in, a), (b_in, b)):
        if isinstance(v, (int, float)):
            sock.default_value = float(v)
        elif isinstance(v, (tuple, list)):
            sock.default_value = (*v[:3], 1.0)
        else:
            _link(nt, v, sock)
    return [o for o in n.outputs if o.type == "RGBA"][0]


def _rgb(nt, c):
    n = nt.nodes.new("ShaderNodeRGB")
    n.outputs[0].default_value = (*c[:3], 1.0)
    return n.outputs[0]


def _uv(nt):
    for n in nt.nodes:
        if n.bl_idname == "ShaderNodeUVMap" and n.uv_map == "UVMap":
            return n.outputs["UV"]
    n = nt.nodes.new("ShaderNodeUVMap")
    n.uv_map = "UVMap"
    return n.outputs["UV"]


def load_texture(path, root, non_color=False):
    """An image datablock that really holds pixels (a render never shows Blender's magenta)."""
    img = load_image(os.path.abspath(resolve(path, root)), "texture")
    if non_color:
        img.colorspace_settings.name = "Non-Color"
    return img


def _image(nt, path, root, non_color=False):
    tex = nt.nodes.new("ShaderNodeTexImage")
    tex.image = load_texture(path, root, non_color)
    _link(nt, _uv(nt), tex.inputs["Vector"])
    return tex


def _pattern_mask(nt, m):
    """0/1 print mask in rest-pose metres: the canonical coordinates scaled by `pattern_scale`
    (periods across the character's box), so a print rides with the cloth in every pose.
    Across the body the print runs along x + y (front and back vary in x, the sides in y), so
    vertical stripes and checks wrap around the torso instead of smearing along the sides."""
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = ATTR_CANONICAL
    scale = nt.nodes.new("ShaderNodeVectorMath")
    scale.operation = "MULTIPLY"
    _link(nt, attr.outputs["Vector"], scale.inputs[0])
    scale.inputs[1].default_value = tuple(m.get("pattern_scale") or (10.0, 10.0, 10.0))
    sep = nt.nodes.new("ShaderNodeSeparateXYZ")
    _link(nt, scale.outputs["Vector"], sep.inputs["Vector"])
    across = _math(nt, "ADD", sep.outputs["X"], sep.outputs["Y"])
    comb = nt.nodes.new("ShaderNodeCombineXYZ")
    _link(nt, across, comb.inputs["X"])
    _link(nt, sep.outputs["Z"], comb.inputs["Y"])
    comb.inputs["Z"].default_value = 0.25  # off a cell boundary of the 3D checker
    kind = m["pattern_type"]
    if kind == "checker":
        chk = nt.nodes.new("ShaderNodeTexChecker")
        chk.inputs["Scale"].default_value = 1.0
        chk.inputs["Color1"].default_value = (1, 1, 1, 1)
        chk.inputs["Color2"].default_value = (0, 0, 0, 1)
        _link(nt, comb.outputs["Vector"], chk.inputs["Vector"])
        return chk.outputs["Fac"]
    if kind == "dots":
        vor = nt.nodes.new("ShaderNodeTexVoronoi")
        vor.voronoi_dimensions = "2D"
        vor.inputs["Scale"].default_value = 1.0
        vor.inputs["Randomness"].default_value = 0.0
        _link(nt, comb.outputs["Vector"], vor.inputs["Vector"])
        return _math(nt, "LESS_THAN", vor.outputs["Distance"], 0.3)
    axis = across if m.get("pattern_axis") == "x" else sep.outputs["Z"]  # stripes
    return _math(nt, "LESS_THAN", _math(nt, "FRACT", axis), 0.5)


def base_color_socket(nt, m, root):
    """The base colour: map x tint, dyed (luminance kept) with an optional print, HSV shifted."""
    if m.get("texture"):
        color = _image(nt, m["texture"], root).outputs["Color"]
        tint = tuple(m.get("base_tint") or (1.0, 1.0, 1.0))
        if any(abs(t - 1.0) > 1e-6 for t in tint):
            color = _mix_rgb(nt, 1.0, color, tint, "MULTIPLY")
        amount = float(m.get("recolor_amount") or 0.0)
        if m.get("recolor_color") is not None and amount > 0:
            bw = nt.nodes.new("ShaderNodeRGBToBW")
            _link(nt, color, bw.inputs["Color"])
            # the map's shading relative to its mean, capped: light trim and the unpainted margin of
            # a UV island would otherwise glow (x15 on a black garment dyed light)
            ratio = _math(
                nt,
                "MINIMUM",
                _math(nt, "DIVIDE", bw.outputs["Val"], max(float(m.get("recolor_luminance") or 0.18), 1e-4)),
                1.6,
            )
            target = _rgb(nt, m["recolor_color"])
            if m.get("pattern_type"):
                target = _mix_rgb(nt, _pattern_mask(nt, m), target, tuple(m.get("pattern_color") or (0, 0, 0)))
            dyed = _mix_rgb(nt, 1.0, target, _combine_gray(nt, ratio), "MULTIPLY")
            color = _mix_rgb(nt, amount, color, dyed)
        hsv = tuple(m.get("hsv") or (0.0, 1.0, 1.0))
        if abs(hsv[0]) > 1e-6 or abs(hsv[1] - 1) > 1e-6 or abs(hsv[2] - 1) > 1e-6:
            node = nt.nodes.new("ShaderNodeHueSaturation")
            node.inputs["Hue"].default_value = 0.5 + hsv[0]
            node.inputs["Saturation"].default_value = hsv[1]
            node.inputs["Value"].default_value = hsv[2]
            _link(nt, color, node.inputs["Color"])
            color = node.outputs["Color"]
        return color
    if m.get("checker_color") is not None:
        uv = nt.nodes.new("ShaderNodeTexCoord")
        chk = nt.nodes.new("ShaderNodeTexChecker")
        chk.inputs["Color1"].default_value = (*m["base_color"], 1.0)
        chk.inputs["Color2"].default_value = (*m["checker_color"], 1.0)
        chk.inputs["Scale"].default_value = m["checker_scale"]
        _link(nt, uv.outputs["UV"], chk.inputs["Vector"])
        return chk.outputs["Color"]
    if m.get("pattern_type"):
        return _mix_rgb(nt, _pattern_mask(nt, m), tuple(m["base_color"]), tuple(m.get("pattern_color") or (0, 0, 0)))
    return None


def _combine_gray(nt, value):
    comb = nt.nodes.new("ShaderNodeCombineColor")
    for k in ("Red", "Green", "Blue"):
        _link(nt, value, comb.inputs[k])
    return comb.outputs["Color"]


def alpha_value(nt, m, root):
    """The opacity socket of an alpha-mapped material (None when opaque)."""
    if (m.get("alpha_mode") or "opaque") == "opaque":
        return None
    alpha = None
    if m.get("alpha_map"):
        tex = _image(nt, m["alpha_map"], root)
        if m.get("alpha_channel", "a") == "r":
            sep = nt.nodes.new("ShaderNodeSeparateColor")
            _link(nt, tex.outputs["Color"], sep.inputs["Color"])
            alpha = sep.outputs["Red"]
        else:
            alpha = tex.outputs["Alpha"]
    opacity = float(m.get("opacity", 1.0))
    if alpha is None:
        return _math(nt, "ADD", opacity, 0.0)
    return alpha if opacity >= 1.0 else _math(nt, "MULTIPLY", alpha, opacity)


def alpha_gate(nt, m, root):
    """0/1 coverage per sample. mask: alpha >= cutoff. blend: alpha > a white-noise hash of the
    hit position (a fresh uniform number per sample, as samples hit different points), so the
    RGB samples and the `fg` AOV average to the alpha-composited coverage."""
    alpha = alpha_value(nt, m, root)
    if alpha is None:
        return None
    if m.get("alpha_mode") == "mask":
        return _math(nt, "GREATER_THAN", alpha, float(m.get("alpha_cutoff", 0.5)) - 1e-6)
    geo = nt.nodes.new("ShaderNodeNewGeometry")
    noise = nt.nodes.new("ShaderNodeTexWhiteNoise")
    noise.noise_dimensions = "3D"
    _link(nt, geo.outputs["Position"], noise.inputs["Vector"])
    return _math(nt, "GREATER_THAN", alpha, noise.outputs["Value"])


def register_alpha_card(m, root):
    """Record an alpha map for the label override (labels use the first surface with alpha >=
    cutoff); returns its 1-based id."""
    scene = bpy.context.scene
    cards = json.loads(scene.get(ALPHA_CARDS_PROP, "[]"))
    card = {
        "path": os.path.abspath(resolve(m["alpha_map"], root)) if m.get("alpha_map") else None,
        "channel": m.get("alpha_channel", "a"),
        "cutoff": float(m.get("alpha_cutoff", 0.5)),
        "opacity": float(m.get("opacity", 1.0)),
        "mode": m.get("alpha_mode"),  # the mask layer's gate is the material's own (blend: stochastic)
    }
    if card not in cards:
        cards.append(card)
    scene[ALPHA_CARDS_PROP] = json.dumps(cards)
    # stacked cards: a ray may pass several transparent card texels before it hits a strand
    scene.cycles.transparent_max_bounces = max(scene.cycles.transparent_max_bounces, 24)
    return cards.index(card) + 1


def attach_alpha_ids(me, face_material, materials):
    """FACE attribute `thfm_alpha`: each face's alpha-card id (0 = opaque) for the label override."""
    ids = np.array([float(mat.get("thfm_alpha_id", 0)) for mat in materials], np.float32)
    if not ids.any():
        return
    fm = np.zeros(len(me.polygons), np.int64) if face_material is None else np.asarray(face_material, np.int64)
    a = me.attributes.new(ATTR_ALPHA, "FLOAT", "FACE")
    a.data.foreach_set("value", ids[fm])


def _scaled(rgb, f):
    return tuple(min(1.0, max(0.0, c * f)) for c in rgb) + (1.0,)


def _ramp(nt, fac, lo, hi):
    """Colour between lo and hi (RGBA tuples) by fac."""
    n = nt.nodes.new("ShaderNodeValToRGB")
    n.color_ramp.elements[0].color = lo
    n.color_ramp.elements[1].color = hi
    _link(nt, fac, n.inputs["Fac"])
    return n.outputs["Color"]


def _noise(nt, vector, scale, detail=4.0, roughness=0.5):
    n = nt.nodes.new("ShaderNodeTexNoise")
    _link(nt, vector, n.inputs["Vector"])
    n.inputs["Scale"].default_value = scale
    n.inputs["Detail"].default_value = detail
    n.inputs["Roughness"].default_value = roughness
    return n.outputs["Fac"]


def _surface_uv(nt, obj):
    """2D pattern coordinates in object metres: (x, y) on floors and ceilings, (x + y, z) on walls
    (an axis-aligned wall is constant in one of x, y), so a pattern keeps its size on any face."""
    tc = nt.nodes.new("ShaderNodeTexCoord")
    pos = nt.nodes.new("ShaderNodeSeparateXYZ")
    _link(nt, obj, pos.inputs[0])
    nrm = nt.nodes.new("ShaderNodeSeparateXYZ")
    _link(nt, tc.outputs["Normal"], nrm.inputs[0])
    flat = _math(nt, "GREATER_THAN", _math(nt, "ABSOLUTE", nrm.outputs["Z"]), 0.5)
    x, y, z = pos.outputs["X"], pos.outputs["Y"], pos.outputs["Z"]
    u = _math(nt, "SUBTRACT", _math(nt, "ADD", x, y), _math(nt, "MULTIPLY", y, flat))
    v = _math(nt, "ADD", z, _math(nt, "MULTIPLY", flat, _math(nt, "SUBTRACT", y, z)))
    comb = nt.nodes.new("ShaderNodeCombineXYZ")
    _link(nt, u, comb.inputs["X"])
    _link(nt, v, comb.inputs["Y"])
    return comb.outputs["Vector"]


def _bricks(nt, uv, c1, c2, mortar, width, height, mortar_size, offset=0.5):
    b = nt.nodes.new("ShaderNodeTexBrick")
    b.offset = offset
    _link(nt, uv, b.inputs["Vector"])
    b.inputs["Color1"].default_value = c1
    b.inputs["Color2"].default_value = c2
    b.inputs["Mortar"].default_value = mortar
    b.inputs["Scale"].default_value = 1.0
    b.inputs["Mortar Size"].default_value = mortar_size
    b.inputs["Mortar Smooth"].default_value = 0.3
    b.inputs["Bias"].default_value = 0.0
    b.inputs["Brick Width"].default_value = width
    b.inputs["Row Height"].default_value = height
    return b.outputs["Color"], b.outputs["Fac"]


def surface_nodes(nt, m):
    """(colour, roughness, height, bump strength) of a procedural PBR surface (contract.SURFACES),
    tinted by the material's base colour; sizes in metres of the object's own space."""
    base, kind = tuple(m["base_color"]), m["surface"]
    if m.get("surface_world"):  # scene-file pieces are scaled from file units: pattern sizes in world metres
        obj = nt.nodes.new("ShaderNodeNewGeometry").outputs["Position"]
    else:
        obj = nt.nodes.new("ShaderNodeTexCoord").outputs["Object"]
    if kind in ("plaster", "concrete", "asphalt", "fabric"):
        scale, spread, rough, bump = {
            "plaster": (4.0, 0.08, 0.85, 0.04),
            "concrete": (2.5, 0.16, 0.9, 0.12),
            "asphalt": (3.0, 0.2, 0.95, 0.25),
            "fabric": (6.0, 0.1, 0.95, 0.08),
        }[kind]
        color = _ramp(
            nt, _noise(nt, obj, scale, detail=8.0, roughness=0.6), _scaled(base, 1 - spread), _scaled(base, 1 + spread)
        )
        fine = {"plaster": 60.0, "concrete": 90.0, "asphalt": 220.0, "fabric": 400.0}[kind]
        height = _noise(nt, obj, fine, detail=2.0)
        if kind in ("asphalt", "concrete"):  # grit: small light and dark specks
            color = _mix_rgb(
                nt, _math(nt, "MULTIPLY", _math(nt, "GREATER_THAN", height, 0.62), 0.5), color, _scaled(base, 1.5)
            )
        return color, rough, height, bump
    uv = _surface_uv(nt, obj)
    if kind == "brick":
        color, fac = _bricks(
            nt, uv, _scaled(base, 1.0), _scaled(base, 0.72), (0.5, 0.48, 0.45, 1.0), 0.24, 0.075, 0.012
        )
        color = _mix_rgb(nt, 0.35, color, _ramp(nt, _noise(nt, obj, 30.0), _scaled(base, 0.7), _scaled(base, 1.2)))
        return color, 0.85, _math(nt, "SUBTRACT", 1.0, fac), 0.35
    if kind == "tiles":
        color, fac = _bricks(
            nt, uv, _scaled(base, 1.0), _scaled(base, 0.93), _scaled(base, 0.55), 0.3, 0.3, 0.004, offset=0.0
        )
        return color, 0.25, _math(nt, "SUBTRACT", 1.0, fac), 0.25
    # wood: boards with their own shade, grain along the board
    color, fac = _bricks(nt, uv, _scaled(base, 1.0), _scaled(base, 0.72), _scaled(base, 0.35), 1.2, 0.14, 0.003)
    stretch = nt.nodes.new("ShaderNodeMapping")
    _link(nt, uv, stretch.inputs["Vector"])
    stretch.inputs["Scale"].default_value = (1.0, 14.0, 1.0)
    grain = _noise(nt, stretch.outputs["Vector"], 3.0, detail=6.0, roughness=0.7)
    color = _mix_rgb(nt, 0.45, color, _ramp(nt, grain, _scaled(base, 0.6), _scaled(base, 1.15)))
    return color, 0.45, _math(nt, "SUBTRACT", 1.0, fac), 0.2


def make_material(m, root):
    mat = bpy.data.materials.new(m["name"])
    nt = mat.node_tree
    bsdf = nt.nodes.get("Principled BSDF") or nt.nodes.new("ShaderNodeBsdfPrincipled")
    out = nt.nodes.get("Material Output")
    _link(nt, bsdf.outputs["BSDF"], out.inputs["Surface"])
    bsdf.inputs["Base Color"].default_value = (*m["base_color"], 1.0)
    bsdf.inputs["Roughness"].default_value = m["roughness"]
    bsdf.inputs["Metallic"].default_value = m["metallic"]
    bsdf.inputs["Specular IOR Level"].default_value = m["specular"]
    bsdf.inputs["IOR"].default_value = float(m.get("ior", 1.45))
    color = base_color_socket(nt, m, root)
    if color is not None:
        _link(nt, color, bsdf.inputs["Base Color"])
    if m.get("surface"):  # set pieces: procedural PBR (labels never see it: they use their own material)
        color, rough, height, strength = surface_nodes(nt, m)
        _link(nt, color, bsdf.inputs["Base Color"])
        bsdf.inputs["Roughness"].default_value = rough
        bump = nt.nodes.new("ShaderNodeBump")
        bump.inputs["Strength"].default_value = strength
        bump.inputs["Distance"].default_value = 0.002
        _link(nt, height, bump.inputs["Height"])
        _link(nt, bump.outputs["Normal"], bsdf.inputs["Normal"])
    if m.get("roughness_map"):
        r = nt.nodes.new("ShaderNodeSeparateColor")
        _link(nt, _image(nt, m["roughness_map"], root, non_color=True).outputs["Color"], r.inputs["Color"])
        rough = r.outputs["Red"]
        if m.get("roughness_is_gloss"):
            rough = _math(nt, "SUBTRACT", 1.0, rough)
        _link(nt, rough, bsdf.inputs["Roughness"])
    if m.get("metallic_map"):
        r = nt.nodes.new("ShaderNodeSeparateColor")
        _link(nt, _image(nt, m["metallic_map"], root, non_color=True).outputs["Color"], r.inputs["Color"])
        _link(nt, r.outputs["Red"], bsdf.inputs["Metallic"])
    if m.get("normal_map"):
        nm = nt.nodes.new("ShaderNodeNormalMap")
        nm.space = "TANGENT"
        nm.uv_map = "UVMap"
        nm.inputs["Strength"].default_value = float(m.get("normal_strength", 1.0))
        _link(nt, _image(nt, m["normal_map"], root, non_color=True).outputs["Color"], nm.inputs["Color"])
        _link(nt, nm.outputs["Normal"], bsdf.inputs["Normal"])
    if float(m.get("subsurface_weight") or 0.0) > 0:
        bsdf.subsurface_method = "RANDOM_WALK"
        bsdf.inputs["Subsurface Weight"].default_value = float(m["subsurface_weight"])
        bsdf.inputs["Subsurface Radius"].default_value = tuple(m.get("subsurface_radius") or (0.0045, 0.0017, 0.0009))
        bsdf.inputs["Subsurface Scale"].default_value = 1.0  # the radius is in metres already
        if "Subsurface IOR" in bsdf.inputs:  # only with the random-walk (skin) methods
            bsdf.inputs["Subsurface IOR"].default_value = 1.4
    if float(m.get("sheen_weight") or 0.0) > 0:
        bsdf.inputs["Sheen Weight"].default_value = float(m["sheen_weight"])
        bsdf.inputs["Sheen Roughness"].default_value = float(m.get("sheen_roughness", 0.5))
        bsdf.inputs["Sheen Tint"].default_value = (*(m.get("sheen_tint") or (1.0, 1.0, 1.0)), 1.0)
    if float(m.get("coat_weight") or 0.0) > 0:
        bsdf.inputs["Coat Weight"].default_value = float(m["coat_weight"])
        bsdf.inputs["Coat Roughness"].default_value = float(m.get("coat_roughness", 0.03))
        bsdf.inputs["Coat IOR"].default_value = float(m.get("coat_ior", 1.5))
    gate = alpha_gate(nt, m, root)
    if gate is not None:
        _link(nt, gate, bsdf.inputs["Alpha"])
        mat["thfm_alpha_id"] = register_alpha_card(m, root)
    subject_aov(nt, gate)
    return mat


def flow_aovs(nt, gated=lambda sock: sock):
    """AOVs nx_*/pv_*: the world position of the shaded point at t+1 / t-1. Moving objects carry it
    as vertex attributes (PROP_MOVING = 1); for the others it is the shading position itself:
    position + moving * (attribute - position)."""
    geo = nt.nodes.new("ShaderNodeNewGeometry")
    moving = nt.nodes.new("ShaderNodeAttribute")
    moving.attribute_type = "OBJECT"
    moving.attribute_name = contract.PROP_MOVING
    for attr_name, aovs in (
        (contract.ATTR_POS_NEXT, contract.AOV_POS_NEXT),
        (contract.ATTR_POS_PREV, contract.AOV_POS_PREV),
    ):
        attr = nt.nodes.new("ShaderNodeAttribute")
        attr.attribute_type = "GEOMETRY"
        attr.attribute_name = attr_name
        diff = nt.nodes.new("ShaderNodeVectorMath")
        diff.operation = "SUBTRACT"
        _link(nt, attr.outputs["Vector"], diff.inputs[0])
        _link(nt, geo.outputs["Position"], diff.inputs[1])
        scaled = nt.nodes.new("ShaderNodeVectorMath")
        scaled.operation = "SCALE"
        _link(nt, diff.outputs["Vector"], scaled.inputs[0])
        _link(nt, moving.outputs["Fac"], scaled.inputs["Scale"])
        total = nt.nodes.new("ShaderNodeVectorMath")
        total.operation = "ADD"
        _link(nt, geo.outputs["Position"], total.inputs[0])
        _link(nt, scaled.outputs["Vector"], total.inputs[1])
        sep = nt.nodes.new("ShaderNodeSeparateXYZ")
        _link(nt, total.outputs["Vector"], sep.inputs["Vector"])
        for axis, name in zip("XYZ", aovs):
            aov_value(nt, gated(sep.outputs[axis]), name)  # alpha cards: the first opaque-enough hit


def _first_hit_material(name, coverage=False):
    """An override material whose paths end at the first hit: a 1e-9 emission (no BSDF, so no light
    is sampled and nothing bounces), transparent where an alpha card's gate is 0. Returns the
    material, its node tree and the gate socket (None: no alpha cards) for the caller's AOVs."""
    mat = bpy.data.materials.new(name)
    nt = mat.node_tree
    for n in list(nt.nodes):
        nt.nodes.remove(n)
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    emit = nt.nodes.new("ShaderNodeEmission")
    emit.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    emit.inputs["Strength"].default_value = 1e-9
    mat.cycles.emission_sampling = "NONE"
    gate = label_alpha_gate(nt, coverage=coverage)
    if gate is None:
        _link(nt, emit.outputs["Emission"], out.inputs["Surface"])
    else:
        mix = nt.nodes.new("ShaderNodeMixShader")
        clear = nt.nodes.new("ShaderNodeBsdfTransparent")
        _link(nt, gate, mix.inputs["Fac"])
        _link(nt, clear.outputs["BSDF"], mix.inputs[1])
        _link(nt, emit.outputs["Emission"], mix.inputs[2])
        _link(nt, mix.outputs["Shader"], out.inputs["Surface"])
    return mat, nt, gate


def label_material(flow=False):
    """The labels layer's override: paths end at the first hit, AOVs read the label attributes
    (and, with `flow`, the positions at the neighbouring frames).

    The surface must hold a closure that survives Cycles' constant folding: with only a black
    emission (or nothing) the shader is treated as transparent as soon as it writes AOVs, and
    camera rays pass through it (no depth, AOVs summed over every layer hit). A 1e-9 emission
    is kept; `emission_sampling = NONE` stops Cycles from turning every mesh into a light.

    Alpha cards (materials registered by `register_alpha_card`, faces tagged `thfm_alpha`):
    a texel with alpha below its cutoff is fully transparent here, so depth, normal and index
    (Cycles writes them at the first surface with alpha >= the layer's 0.5 threshold) and the
    AOVs (multiplied by the same 0/1 gate, since Cycles adds AOV writes along transparent
    hops) all come from the first surface with alpha >= cutoff.
    """
    mat, nt, gate = _first_hit_material("thfm_labels")

    def gated(sock):
        return sock if gate is None else _math(nt, "MULTIPLY", sock, gate)

    part = nt.nodes.new("ShaderNodeAttribute")
    part.attribute_type = "GEOMETRY"
    part.attribute_name = ATTR_PART
    aov_value(nt, gated(part.outputs["Fac"]), contract.AOV_PART)
    for attr_name, aovs in ((ATTR_PART_UV, contract.AOV_PART_UV), (ATTR_CANONICAL, contract.AOV_CANONICAL)):
        attr = nt.nodes.new("ShaderNodeAttribute")
        attr.attribute_type = "GEOMETRY"
        attr.attribute_name = attr_name
        sep = nt.nodes.new("ShaderNodeSeparateXYZ")
        _link(nt, attr.outputs["Vector"], sep.inputs["Vector"])
        for axis, name in zip("XYZ", aovs):
            aov_value(nt, gated(sep.outputs[axis]), name)
    if flow:
        flow_aovs(nt, gated)
    subject_aov(nt, gate)
    return mat


def label_alpha_gate(nt, coverage=False):
    """0/1: the face's alpha card (if any) has alpha >= its cutoff at this point; None if no cards.
    `coverage`: the gate of the card's own material instead (`alpha_gate`: blend cards compare
    alpha with the same per-hit white noise), so the mask layer's coverage equals the RGB's."""
    cards = json.loads(bpy.context.scene.get(ALPHA_CARDS_PROP, "[]"))
    if not cards:
        return None
    attr = nt.nodes.new("ShaderNodeAttribute")
    attr.attribute_type = "GEOMETRY"
    attr.attribute_name = ATTR_ALPHA
    holes = None  # sum over cards of [face uses card k] * [alpha below cutoff]
    for k, card in enumerate(cards, start=1):
        m = {
            "alpha_mode": card.get("mode") if coverage else "mask",
            "alpha_map": card["path"],
            "alpha_channel": card["channel"],
            "opacity": card["opacity"],
            "alpha_cutoff": card["cutoff"],
        }
        if coverage:
            below = _math(nt, "SUBTRACT", 1.0, alpha_gate(nt, m, ""))
        else:
            below = _math(nt, "LESS_THAN", alpha_value(nt, m, ""), card["cutoff"] - 1e-6)
        uses = _math(nt, "COMPARE", attr.outputs["Fac"], float(k))
        uses.node.inputs[2].default_value = 0.25  # COMPARE epsilon
        hole = _math(nt, "MULTIPLY", uses, below)
        holes = hole if holes is None else _math(nt, "ADD", holes, hole)
    return _math(nt, "SUBTRACT", 1.0, holes, clamp=True)


def mask_material():
    """The mask layer's override: coverage only. Like the label shader, paths end at the first hit
    (a 1e-9 emission, no BSDF: no light is sampled, nothing bounces); alpha cards are transparent
    where their own material's per-sample gate is 0, so the `fg` (and person) AOVs average over the
    samples to the same coverage as the RGB layer's."""
    mat, nt, gate = _first_hit_material("thfm_mask", coverage=True)
    subject_aov(nt, gate)
    return mat


# --------------------------------------------------------------------------- scene
SCENE_TEMPLATES = {}  # per render job: absolute scene file -> [(source object name, template object)]


def scene_default_material():
    mat = bpy.data.materials.get("thfm_scene_default")
    if mat is None:
        mat = make_material(
            {
                "name": "thfm_scene_default",
                "base_color": (0.6, 0.6, 0.6),
                "roughness": 0.7,
                "metallic": 0.0,
                "specular": 0.5,
            },
            "",
        )
        mat["thfm_fg"] = 1
    return mat


def prepare_scene_materials(ob):
    """Every material of an imported mesh gets the `fg` AOV node (the mask contract); empty slots a default."""
    me = ob.data
    if len(me.materials) == 0:
        me.materials.append(scene_default_material())
    for k, mat in enumerate(me.materials):
        if mat is None:
            me.materials[k] = scene_default_material()
    for slot in ob.material_slots:
        if slot.link == "OBJECT" and slot.material is None:
            slot.material = scene_default_material()
    for mat in {m for m in me.materials} | {s.material for s in ob.material_slots if s.material}:
        if mat.get("thfm_fg"):
            continue
        for node in mat.node_tree.nodes if mat.node_tree else ():  # textures of the scene file
            if node.type == "TEX_IMAGE" and node.image is not None and node.image.source == "FILE":
                check_image(node.image, f"texture of scene material {mat.name}")
        if mat.node_tree is None:
            mat.use_nodes = True
        subject_aov(mat.node_tree)
        mat["thfm_fg"] = 1


def scene_templates(path):
    """Import a scene file once per job; its meshes become unlinked templates (scene_import.py)."""
    if path not in SCENE_TEMPLATES:
        import scene_import  # sibling module: bpy, numpy and the standard library only

        try:
            meshes = scene_import.import_scene_file(path)
        except scene_import.SceneImportError as exc:
            raise contract.JobInputError(exc.what, exc.fix) from None
        index = len(SCENE_TEMPLATES)
        templates = []
        for src, ob in meshes:
            ob.name = f"thfm_file{index}:{src}"  # frees the file's own names for the next import
            for coll in list(ob.users_collection):
                coll.objects.unlink(ob)
            ob.use_fake_user = True
            prepare_scene_materials(ob)
            templates.append((src, ob))
        SCENE_TEMPLATES[path] = templates
    return SCENE_TEMPLATES[path]


class Built:
    """A built object: its pose (4,4) or (F,4,4), its baked vertex animation (F,V,3) or None, and its
    object-space vertices (None for scene files: they never move)."""

    __slots__ = ("ob", "pose", "anim", "base")

    def __init__(self, ob, pose, anim, base):
        self.ob, self.pose, self.anim, self.base = ob, pose, anim, base

    @property
    def moving(self):
        return self.base is not None and (self.anim is not None or self.pose.ndim == 3)

    def matrix(self, f):
        return self.pose if self.pose.ndim == 2 else self.pose[f]

    def local_vertices(self, f):
        return self.anim[f] if self.anim is not None else self.base

    def world_vertices(self, f):
        m = self.matrix(f)
        return self.local_vertices(f) @ m[:3, :3].T + m[:3, 3]


def add_flow_attributes(built):
    """Moving objects carry their vertices' world positions at t+1 and t-1 (set per frame)."""
    for b in built:
        b.ob[contract.PROP_MOVING] = 1.0 if b.moving else 0.0
        if b.moving:
            for name in (contract.ATTR_POS_NEXT, contract.ATTR_POS_PREV):
                b.ob.data.attributes.new(name, "FLOAT_VECTOR", "POINT")


def set_flow_attributes(b, frame, num_frames):
    attrs = b.ob.data.attributes
    for name, other in (
        (contract.ATTR_POS_NEXT, min(frame + 1, num_frames - 1)),
        (contract.ATTR_POS_PREV, max(frame - 1, 0)),
    ):
        attrs[name].data.foreach_set("vector", np.ascontiguousarray(b.world_vertices(other), np.float32).ravel())


# --------------------------------------------------------------------------- motion blur
# RGB with motion blur, labels at the shutter centre, exactly as without blur: the blurred RGB is
# a render call of its own that sees (a) a second camera keyframed at t - s/2, t, t + s/2 and (b) the
# motion of every moving object as two shape keys (its vertices at t - s/2 and t + s/2 in its frame-t
# object space) keyed 1 -> 0 -> 1 around the frame. The label call then uses the unkeyed camera and
# the shape keys at 0 - the very state a render without blur has - with scene motion blur off.


def _quat(m):
    """Unit quaternion (w, x, y, z) of a 3x3 rotation (Shepperd)."""
    t = np.trace(m)
    if t > 0:
        w = np.sqrt(1.0 + t) / 2
        q = [w, (m[2, 1] - m[1, 2]) / (4 * w), (m[0, 2] - m[2, 0]) / (4 * w), (m[1, 0] - m[0, 1]) / (4 * w)]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        x = np.sqrt(max(1.0 + m[i, i] - m[j, j] - m[k, k], 0.0)) / 2
        q = [0.0, 0.0, 0.0, 0.0]
        q[0] = (m[k, j] - m[j, k]) / (4 * x)
        q[1 + i] = x
        q[1 + j] = (m[j, i] + m[i, j]) / (4 * x)
        q[1 + k] = (m[k, i] + m[i, k]) / (4 * x)
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def _slerp(q0, q1, a):
    if np.dot(q0, q1) < 0:
        q1 = -q1
    d = float(np.clip(np.dot(q0, q1), -1.0, 1.0))
    if d > 0.9995:
        q = q0 + a * (q1 - q0)
    else:
        th = np.arccos(d)
        q = (np.sin((1 - a) * th) * q0 + np.sin(a * th) * q1) / np.sin(th)
    return q / np.linalg.norm(q)


def camera_matrix(r, t):
    """Blender world-from-camera matrix of the OpenCV world-to-camera [R|t]."""
    m = np.eye(4)
    m[:3, :3] = (BLENDER_CAM_TO_OPENCV @ r).T
    m[:3, 3] = -r.T @ t
    return m


def shutter_times(frame, num_frames, shutter):
    """(subframe, neighbour frame, fraction towards it) at shutter open, centre and close."""
    half = shutter / 2.0
    return [
        (frame - half, max(frame - 1, 0), half),
        (frame, frame, 0.0),
        (frame + half, min(frame + 1, num_frames - 1), half),
    ]


def keyframe_camera(cam_blur, cam_ob, matrices, frame, num_frames, shutter):
    """Key the blur camera's pose at shutter open, centre and close (lens and shift: frame t's)."""
    for attr in ("type", "sensor_fit", "sensor_width", "lens", "shift_x", "shift_y", "clip_start", "clip_end"):
        setattr(cam_blur.data, attr, getattr(cam_ob.data, attr))
    cam_blur.animation_data_clear()
    cam_blur.rotation_mode = "QUATERNION"
    m0 = matrices(frame)
    q_prev = None
    for sub, other, a in shutter_times(frame, num_frames, shutter):
        m1 = matrices(other)
        q = _slerp(_quat(m0[:3, :3]), _quat(m1[:3, :3]), a)
        if q_prev is not None and np.dot(q, q_prev) < 0:
            q = -q
        q_prev = q
        cam_blur.location = tuple(m0[:3, 3] + a * (m1[:3, 3] - m0[:3, 3]))
        cam_blur.rotation_quaternion = tuple(q)
        cam_blur.keyframe_insert("location", frame=sub)
        cam_blur.keyframe_insert("rotation_quaternion", frame=sub)


def add_blur_keys(built):
    for b in built:
        if b.moving:
            b.ob.shape_key_add(name="Basis", from_mix=False)
            b.ob.shape_key_add(name="thfm_open", from_mix=False)
            b.ob.shape_key_add(name="thfm_close", from_mix=False)


def set_blur_keys(b, frame, num_frames, shutter):
    """Basis = frame t's vertices; open/close = the shutter times' world positions in frame t's object space."""
    keys = b.ob.data.shape_keys
    inv = np.linalg.inv(b.matrix(frame))
    world_t = b.world_vertices(frame)
    times = shutter_times(frame, num_frames, shutter)
    for name, (sub, other, a) in (("thfm_open", times[0]), ("thfm_close", times[2])):
        w = world_t + a * (b.world_vertices(other) - world_t)
        local = w @ inv[:3, :3].T + inv[:3, 3]
        keys.key_blocks[name].data.foreach_set("co", np.ascontiguousarray(local, np.float32).ravel())
    keys.key_blocks["Basis"].data.foreach_set("co", np.ascontiguousarray(b.local_vertices(frame), np.float32).ravel())
    keys.animation_data_clear()
    for name, (sub, _, _), outer in (("thfm_open", times[0], 1.0), ("thfm_close", times[2], 1.0)):
        kb = keys.key_blocks[name]
        for when, value in ((sub, outer), (frame, 0.0)):
            kb.value = value
            kb.keyframe_insert("value", frame=when)


def _main_material_index(me) -> int:
    n = len(me.polygons)
    if n == 0 or len(me.materials) < 2:
        return 0
    index = np.empty(n, np.int32)
    area = np.empty(n, np.float64)
    me.polygons.foreach_get("material_index", index)
    me.polygons.foreach_get("area", area)
    return int(np.argmax(np.bincount(index, weights=area, minlength=len(me.materials))))


def build_scene_file(o, arrays, root):
    """A `scene_file` object: instances (shared meshes) of the file's meshes, placed by pose @ file matrix."""
    path = os.path.abspath(resolve(o["mesh_path"], root))
    include = o.get("include_objects")
    exclude = set(o.get("exclude_objects") or [])
    pose = arrays[o["pose"]["npz"]]
    templates = scene_templates(path)
    if include is not None:
        missing = sorted(set(include) - {src for src, _ in templates})
        if missing:
            warn(f"{o['name']}: objects {missing} are not meshes of {path}")
    # a procedural surface (a kit room's floor and walls) replaces each mesh's main material: the one
    # covering the largest area (a wall's plaster, not its skirting or a window's glass)
    finish = make_material(dict(o["materials"][0], surface_world=True), root) if o.get("materials") else None
    out = []
    for src, tmpl in templates:
        if (include is not None and src not in include) or src in exclude:
            continue
        ob = tmpl.copy()  # shares the mesh data and its materials
        if finish is not None and len(ob.material_slots):
            slot = ob.material_slots[_main_material_index(tmpl.data)]
            slot.link = "OBJECT"
            slot.material = finish
        ob.use_fake_user = False
        ob.name = f"{o['name']}:{src}"
        bpy.context.scene.collection.objects.link(ob)
        ob[SUBJECT_PROP] = 0.0
        ob[contract.PROP_PERSON] = 0.0
        ob.pass_index = int(o["instance"])
        ob.visible_shadow = bool(o["cast_shadow"])
        ob.is_shadow_catcher = False
        base = np.array(tmpl.matrix_world, np.float64)
        ob[contract.PROP_MOVING] = 0.0
        out.append(Built(ob, pose @ base, None, None))
    return out


def build_objects(doc, arrays, root):
    built = []
    for i, o in enumerate(doc["objects"]):
        kind = o["kind"]
        if kind == "scene_file":
            built += build_scene_file(o, arrays, root)
            continue
        labels = None
        vnormals = None
        face_material = None
        corner_uv = None
        if kind == "sphere":  # tessellated by the main environment (thfm_synth/render/meshes.py)
            v = arrays[f"object_{i}_sphere_vertices"]
            f = arrays[f"object_{i}_sphere_faces"]
            corner_uv = arrays[f"object_{i}_sphere_corner_uv"]
            vnormals = v
            verts = v * o["radius"]
        elif kind == "plane":
            sx, sy = o["size"][0] / 2, o["size"][1] / 2
            verts = np.array([[-sx, -sy, 0], [sx, -sy, 0], [sx, sy, 0], [-sx, sy, 0]], float)
            f = np.array([[0, 1, 2], [0, 2, 3]])
            corner_uv = (verts[f][..., :2] / [2 * sx, 2 * sy]) + 0.5
        elif kind == "box":
            verts, f, corner_uv = box_mesh(*o["size"])
        elif kind == "mesh_npz":
            path = resolve(o["mesh_path"], root)
            with np.load(path, allow_pickle=False) as z:
                keys = set(z.files)
                verts = z["vertices"].astype(np.float64)
                f = z["faces"].astype(np.int64)
                if "uv" in keys and "face_uv" in keys:
                    corner_uv = z["uv"][z["face_uv"]]
                if "face_material" in keys and len(o["materials"]) > 1:
                    face_material = np.clip(z["face_material"].astype(np.int32), 0, len(o["materials"]) - 1)
                if {"face_part", "corner_part_uv", "vertex_canonical"} <= keys:
                    labels = (z["face_part"], z["corner_part_uv"], z["vertex_canonical"])
                elif "face_part" in keys:
                    labels = (z["face_part"], np.zeros((len(f), 3, 2), np.float32), np.zeros((len(verts), 3)))
        else:
            raise contract.JobInputError(f"unknown object kind {kind!r}", "use a kind the description documents")
        me = build_mesh(
            o["name"],
            verts,
            f,
            corner_uv=corner_uv,
            face_material=face_material,
            labels=labels,
            smooth=o["shade_smooth"] and kind != "box" and kind != "plane",
            vertex_normals=vnormals,
        )
        for m in o["materials"]:
            me.materials.append(make_material(m, root))
        attach_alpha_ids(me, face_material, me.materials)  # alpha cards -> label override
        ob = bpy.data.objects.new(o["name"], me)
        bpy.context.scene.collection.objects.link(ob)
        ob[SUBJECT_PROP] = 1.0 if o["subject"] else 0.0
        ob[contract.PROP_PERSON] = float(o.get("person", 0))
        ob.pass_index = int(o["instance"])
        ob.visible_shadow = bool(o["cast_shadow"])
        ob.is_shadow_catcher = bool(o.get("shadow_catcher", False))
        pose = arrays[o["pose"]["npz"]]
        anim = arrays[o["vertex_animation_key"]] if o.get("vertex_animation_key") else None
        if anim is not None and anim.shape[1] != len(verts):
            raise contract.JobInputError(
                f"{o['name']}: vertex animation has {anim.shape[1]} vertices, the mesh {len(verts)}",
                "bake the animation from the same mesh file",
            )
        built.append(Built(ob, pose, anim, np.asarray(verts, np.float64)))
    return built


def build_world(w, root):
    world = bpy.data.worlds.new("thfm_world")
    bpy.context.scene.world = world
    nt = world.node_tree
    for n in list(nt.nodes):
        nt.nodes.remove(n)
    out = nt.nodes.new("ShaderNodeOutputWorld")
    bg = nt.nodes.new("ShaderNodeBackground")
    bg.inputs["Strength"].default_value = w["strength"]
    _link(nt, bg.outputs["Background"], out.inputs["Surface"])
    if w["kind"] == "color":
        bg.inputs["Color"].default_value = (*w["color"], 1.0)
    elif w["kind"] == "hdri":
        coord = nt.nodes.new("ShaderNodeTexCoord")
        mapping = nt.nodes.new("ShaderNodeMapping")
        # rotating the lookup by -theta turns the environment by +theta (counter-clockwise from above)
        mapping.inputs["Rotation"].default_value = (0.0, 0.0, -math.radians(w["rotation_deg"]))
        env = nt.nodes.new("ShaderNodeTexEnvironment")
        env.image = load_image(resolve(w["hdri_path"], root), "HDRI")
        _link(nt, coord.outputs["Generated"], mapping.inputs["Vector"])
        _link(nt, mapping.outputs["Vector"], env.inputs["Vector"])
        _link(nt, env.outputs["Color"], bg.inputs["Color"])
    elif w["kind"] == "sky":
        sky = nt.nodes.new("ShaderNodeTexSky")
        sky.sky_type = w["sky_model"]
        el, az = math.radians(w["sun_elevation_deg"]), math.radians(w["sun_azimuth_deg"])
        # Cycles puts the sun at azimuth sun_rotation + 90 deg (from +X, counter-clockwise)
        settings = {
            "sun_elevation": el,
            "sun_rotation": az - math.pi / 2,
            "sun_disc": w["sun_disc"],
            "sun_size": math.radians(w["sun_size_deg"]),
            "sun_intensity": w["sun_intensity"],
            "altitude": w["altitude_m"],
            "air_density": w["air_density"],
            "aerosol_density": w["aerosol_density"],
            "ozone_density": w["ozone_density"],
            "turbidity": w["turbidity"],
            "ground_albedo": w["ground_albedo"],
            "sun_direction": (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)),
        }
        for k, v in settings.items():
            if hasattr(sky, k):
                try:
                    setattr(sky, k, v)
                except (TypeError, ValueError) as exc:
                    warn(f"sky: cannot set {k}: {exc}")
        _link(nt, sky.outputs["Color"], bg.inputs["Color"])
    return world


def look_rotation(position, target):
    """Blender object rotation whose local -Z points from position to target (Z up)."""
    d = np.asarray(target, float) - np.asarray(position, float)
    n = np.linalg.norm(d)
    z = -d / n if n > 0 else np.array([0.0, 0.0, 1.0])
    up = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.999 else np.array([0.0, 1.0, 0.0])
    x = np.cross(up, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=1)


def build_lights(lights):
    for i, L in enumerate(lights):
        kind = {"point": "POINT", "area": "AREA", "sun": "SUN", "spot": "SPOT"}[L["kind"]]
        data = bpy.data.lights.new(f"thfm_light_{i}", kind)
        data.color = L["color"]
        data.energy = L["power_w"]
        if L.get("temperature_k"):
            data.use_temperature = True
            data.temperature = L["temperature_k"]
        if kind == "AREA":
            data.shape = "SQUARE"
            data.size = L["size_m"]
        elif kind == "SUN":
            data.angle = math.radians(L["size_m"])
        else:
            data.shadow_soft_size = L["size_m"]
        if kind == "SPOT":
            data.spot_size = math.radians(L["spot_angle_deg"])
        data.use_shadow = bool(L["cast_shadow"])
        ob = bpy.data.objects.new(f"thfm_light_{i}", data)
        m = np.eye(4)
        m[:3, :3] = look_rotation(L["position"], L["target"])
        m[:3, 3] = L["position"]
        ob.matrix_world = Matrix(m.tolist())
        bpy.context.scene.collection.objects.link(ob)


def set_camera(cam_ob, scene, k, r, t, width, height):
    """Copy K and world-to-camera [R|t] (OpenCV) onto a Blender camera, exactly.

    Horizontal sensor fit: fx = lens / sensor_width * W. Non-square pixels: Blender's fy =
    fx * aspect_x / aspect_y. Shift (in units of the fitted image width W):
    cx = W/2 - shift_x * W and cy = H/2 + shift_y * W * fy / fx (rows grow downwards).
    """
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    cam = cam_ob.data
    cam.type = "PERSP"
    cam.sensor_fit = "HORIZONTAL"
    cam.sensor_width = 36.0
    cam.lens = fx * cam.sensor_width / width
    cam.shift_x = (width / 2.0 - cx) / width
    cam.shift_y = (cy - height / 2.0) * fx / (fy * width)
    if fy >= fx:
        scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = fy / fx, 1.0
    else:
        scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = 1.0, fx / fy
    m = np.eye(4)
    m[:3, :3] = (BLENDER_CAM_TO_OPENCV @ r).T
    m[:3, 3] = -r.T @ t
    cam_ob.matrix_world = Matrix(m.tolist())


# --------------------------------------------------------------------------- render setup
def setup_device(scene, requested):
    if requested == "cpu":
        scene.cycles.device = "CPU"
        return "cpu"
    want = requested.upper()
    devices = []
    try:
        prefs = bpy.context.preferences.addons["cycles"].preferences
        prefs.compute_device_type = want
        prefs.refresh_devices()
        devices = [d for d in prefs.devices if d.type == want]
        for d in prefs.devices:
            d.use = d.type == want
    except Exception as exc:  # noqa: BLE001 - any failure means: no such device here
        warn(f"device {requested}: {exc}")
    if not devices:
        warn(f"render device {requested} is not available; falling back to cpu")
        scene.cycles.device = "CPU"
        return "cpu"
    scene.cycles.device = "GPU"
    return requested


def declare_aovs(vl, names):
    have = {a.name for a in vl.aovs}
    for name in names:
        if name not in have:
            a = vl.aovs.add()
            a.name = name
            a.type = "VALUE"


def configure_layer(vl, spec, overrides, aovs):
    vl.use = True
    vl.samples = spec["samples"]
    vl.use_pass_combined = "combined" in spec["passes"]  # Blender writes Combined regardless
    vl.use_pass_z = "depth" in spec["passes"]
    vl.use_pass_normal = "normal" in spec["passes"]
    vl.use_pass_object_index = "index" in spec["passes"]
    vl.use_pass_diffuse_color = "albedo" in spec["passes"]
    vl.use_motion_blur = bool(spec.get("motion_blur", False))  # labels: always at the shutter centre
    vl.cycles.use_denoising = bool(spec["denoise"])
    vl.cycles.denoising_store_passes = False
    vl.material_override = overrides.get(spec["override"]) if spec["override"] else None
    # Every AOV any shader of this job writes is declared on every view layer: an AOV output node
    # whose AOV the layer does not declare writes into another pass of that layer (measured: the
    # label shader's `fg` = 1 on the subject was added to Normal.X of a layer without AOVs).
    # spec["aovs"] only documents use.
    declare_aovs(vl, aovs)


def setup_scene(doc, device_override, threads):
    scene = bpy.context.scene
    r = doc["render"]
    cam = doc["camera"]
    scene.render.engine = "CYCLES"
    used = setup_device(scene, device_override or r["device"])
    c = scene.cycles
    c.samples = int(r["samples"])
    c.use_layer_samples = "USE"
    c.use_adaptive_sampling = bool(r["adaptive_sampling"])  # set again per render call (call_adaptive)
    c.adaptive_threshold = float(r.get("adaptive_threshold", 0.01))
    c.adaptive_min_samples = int(r.get("adaptive_min_samples", 0))
    c.use_denoising = bool(r["denoise"])
    c.denoiser = "OPENIMAGEDENOISE"
    c.denoising_prefilter = r.get("denoise_prefilter", "FAST")
    c.denoising_input_passes = "RGB_ALBEDO_NORMAL"
    c.denoising_use_gpu = used != "cpu"
    c.denoising_quality = r["denoise_quality"]
    c.seed = int(doc["seed"])
    c.use_animated_seed = False
    c.max_bounces = int(r["max_bounces"])
    c.caustics_reflective = False
    c.caustics_refractive = False
    c.sample_clamp_indirect = 10.0
    c.filter_width = float(r["filter_width_px"])
    c.pixel_filter_type = "BLACKMAN_HARRIS"
    c.use_light_tree = bool(r["light_tree"])
    # "auto": one gain per clip is metered on the linear render afterwards (thfm_synth/render/exposure.py)
    c.film_exposure = 1.0 if r["exposure"] == "auto" else 2.0 ** float(r["exposure"])
    scene.render.film_transparent = False
    scene.render.use_persistent_data = bool(r["persistent_data"])
    if int(threads) > 0:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = int(threads)
    scene.render.resolution_x = int(cam["width"])
    scene.render.resolution_y = int(cam["height"])
    scene.render.resolution_percentage = 100
    scene.render.use_compositing = False
    scene.render.use_sequencer = False
    scene.render.use_single_layer = False
    scene.render.use_file_extension = False
    scene.render.use_stamp = False
    scene.view_settings.view_transform = "Standard"  # only matters for previews; EXR stays linear
    return scene, used


def layer_plan(
    mode,
    modalities,
    samples,
    denoise,
    label_samples,
    per_modality_shading="label",
    motion_blur=False,
    mask_samples=None,
    adaptive=False,
):
    """Render calls per frame, each a list of view-layer specs rendered together.

    `mask_samples` (an int): the mask gets its own layer (contract.LAYER_MASK) with that many
    samples; `adaptive`: the RGB adapts, so it is rendered in a call of its own (Cycles' adaptive
    sampling is one switch per scene) and the labels and mask in a second, fixed-sample call.
    """
    want = set(modalities)
    own_mask = mask_samples is not None and mode == "single" and "mask" in want
    if mode == "rgb_only":
        want = {"rgb"}

    def rgb(name, mods):
        passes = {"combined"} | ({"albedo"} if "albedo" in mods else set())
        return {
            "name": name,
            "passes": passes,
            "samples": samples,
            "denoise": denoise and "rgb" in mods,
            "override": False,
            "aovs": (contract.AOV_FG,) if "mask" in mods and not own_mask else (),
            "motion_blur": motion_blur,
            **({"adaptive": True} if adaptive else {}),
        }

    def labels(name, mods):
        passes = {p for p, m in (("depth", "depth"), ("normal", "normal")) if m in mods}
        aovs = ()
        if mods & {"part", "canonical"}:
            passes.add("index")
            aovs = (
                (contract.AOV_PART,)
                + (contract.AOV_PART_UV if "part" in mods else ())
                + (contract.AOV_CANONICAL if "canonical" in mods else ())
            )
        if "flow" in mods:
            passes.add("depth")  # flow needs to know which pixels see a surface
            aovs += contract.FLOW_AOVS
        return {
            "name": name,
            "passes": passes,
            "samples": label_samples,
            "denoise": False,
            "override": "label",
            "aovs": aovs,
        }

    if own_mask:
        mask = {
            "name": contract.LAYER_MASK,
            "passes": set(),
            "samples": int(mask_samples),
            "denoise": False,
            "override": "mask",
            "aovs": (contract.AOV_FG,),
        }
        call = [rgb(contract.LAYER_RGB, want)] if "rgb" in want else []
        rest = ([labels(contract.LAYER_LABELS, want)] if want & set(LABEL_MODALITIES) else []) + [mask]
        return [call, rest] if adaptive and call else [call + rest]
    if mode in ("single", "rgb_only"):
        call = []
        if want & {"rgb", "mask"}:
            call.append(rgb(contract.LAYER_RGB, want))
        if want & set(LABEL_MODALITIES):
            call.append(labels(contract.LAYER_LABELS, want))
        if adaptive and len(call) > 1 and "rgb" in want:  # labels never adapt (nor does a mask)
            return [call[:1], call[1:]]
        return [call]
    # per_modality (benchmark baselines): one render call per modality.
    #   shading "label": RGB as above; the mask with the cheap label shader but all samples
    #     (coverage needs them); the other labels with `label_samples` (1 = the strong baseline).
    #   shading "full": every modality is a full render of the scene (its materials, all
    #     samples, all bounces) from which that modality's pass is kept - timing only: its
    #     label passes are averaged over samples, not exact.
    calls = []
    for m in modalities:
        if m == "rgb":
            calls.append([rgb("rgb", {"rgb"})])
        elif per_modality_shading == "full":
            spec = labels(m, {m}) if m != "mask" else rgb("mask", {"mask"})
            spec.update(samples=samples, override=False, denoise=False)
            spec["passes"] = set(spec["passes"]) | {"combined"}
            calls.append([spec])
        elif m == "mask":
            calls.append(
                [
                    {
                        "name": "mask",
                        "passes": set(),
                        "samples": samples,
                        "denoise": False,
                        "override": "label",
                        "aovs": (contract.AOV_FG,),
                    }
                ]
            )
        else:
            calls.append([labels(m, {m})])
    return calls


def make_layers(scene, calls, overrides, aovs):
    """Create every view layer used by any call."""
    specs = [spec for call in calls for spec in call]
    scene.view_layers[0].name = specs[0]["name"]
    for spec in specs[1:]:
        if spec["name"] not in scene.view_layers:
            scene.view_layers.new(spec["name"])
    for spec in specs:
        configure_layer(scene.view_layers[spec["name"]], spec, overrides, aovs)


def activate(scene, call, adaptive):
    names = {spec["name"] for spec in call}
    for vl in scene.view_layers:
        vl.use = vl.name in names
    # the mask's and labels' call never adapts: their values are exact averages over fixed samples
    scene.cycles.use_adaptive_sampling = adaptive and any(spec.get("adaptive") for spec in call)


def save_result(scene, path):
    """Write the render result (all view layers and passes) as one multilayer EXR.

    Blender 5.0.1 fails to write a multilayer EXR while the pixel aspect is not 1 ("Error
    writing render result"), so the aspect is reset for the save; the pixels are already
    rendered and `set_camera` sets it again for the next frame.
    """
    aspect = (scene.render.pixel_aspect_x, scene.render.pixel_aspect_y)
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    try:
        bpy.data.images["Render Result"].save_render(path, scene=scene)
    finally:
        scene.render.pixel_aspect_x, scene.render.pixel_aspect_y = aspect


def frame_seed(seed, frame):
    return zlib.crc32(f"{seed}:{frame}".encode()) & 0x7FFFFFFF


# --------------------------------------------------------------------------- main
def check_saved(path):
    """Blender's image writers report a failed write (e.g. disk full) only in their log: check the file."""
    if os.path.isfile(path) and os.path.getsize(path) > 0:
        return
    import shutil

    free = shutil.disk_usage(os.path.dirname(path)).free
    if free < 64 << 20:
        raise OSError(28, f"No space left on device: {path} was not written ({free >> 20} MB free)")
    raise RuntimeError(f"Blender did not write {path}")


def render(job):
    """Render one saved description (a contract.RenderJob); writes OUT/raw/*.exr and render_info.json."""
    t_start = time.perf_counter()
    root = os.path.abspath(job.scene)
    out = os.path.abspath(job.out)
    raw = os.path.join(out, contract.RAW_DIR)
    os.makedirs(raw, exist_ok=True)
    doc, arrays = load_description(root)
    n = int(doc["num_frames"])
    frames = list(range(n)) if job.frames is None else [f for f in job.frames if f < n]
    modalities = list(job.modalities)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.use_scripts_auto_execute = False  # scene files never run Python
    SCENE_TEMPLATES.clear()
    scene, device = setup_scene(doc, job.device, job.threads)
    scene.render.image_settings.media_type = "MULTI_LAYER_IMAGE"
    scene.render.image_settings.file_format = "OPEN_EXR_MULTILAYER"
    scene.render.image_settings.color_depth = "32"
    scene.render.image_settings.exr_codec = job.exr_codec

    PEOPLE[0] = max([int(o.get("person", 0)) for o in doc["objects"]] + [1])  # before any material is made
    objects = build_objects(doc, arrays, root)
    build_world(doc["world"], root)
    build_lights(doc["lights"])
    cam_ob = bpy.data.objects.new("thfm_camera", bpy.data.cameras.new("thfm_camera"))
    scene.collection.objects.link(cam_ob)
    scene.camera = cam_ob
    cam_ob.data.clip_start = doc["camera"]["clip_start"]
    cam_ob.data.clip_end = doc["camera"]["clip_end"]

    r = doc["render"]
    flow = "flow" in modalities and job.mode == "single"
    shutter = float(r.get("motion_blur_shutter", 0.0))
    blur = shutter > 0 and job.mode == "single" and "rgb" in modalities
    adaptive = bool(r["adaptive_sampling"])
    own_mask = contract.mask_layer(r)
    calls = layer_plan(
        job.mode,
        modalities,
        int(r["samples"]),
        bool(r["denoise"]),
        int(job.label_samples),
        job.per_modality_shading,
        motion_blur=blur,
        mask_samples=int(r.get("mask_samples") or r["samples"]) if own_mask else None,
        adaptive=adaptive,
    )
    if blur:  # the blurred RGB and the labels at the shutter centre are rendered apart (see motion blur)
        calls = [[spec] for call in calls for spec in call]
    overrides = {"label": label_material(flow=flow)}
    if any(spec["override"] == "mask" for call in calls for spec in call):
        overrides["mask"] = mask_material()
    aovs = contract.AOVS + contract.person_aovs(PEOPLE[0]) + (contract.FLOW_AOVS if flow else ())
    make_layers(scene, calls, overrides, aovs)
    K, R, T = (arrays[doc["camera"][k]["npz"]] for k in ("k", "r", "t"))
    width, height = int(doc["camera"]["width"]), int(doc["camera"]["height"])
    seed = int(doc["seed"])
    if flow:
        add_flow_attributes(objects)
    cam_blur = None
    if blur:
        scene.render.motion_blur_shutter = shutter
        scene.render.motion_blur_position = "CENTER"
        # keys interpolate linearly between shutter open, centre and close
        bpy.context.preferences.edit.keyframe_new_interpolation_type = "LINEAR"
        add_blur_keys(objects)
        cam_blur = bpy.data.objects.new("thfm_camera_blur", bpy.data.cameras.new("thfm_camera_blur"))
        scene.collection.objects.link(cam_blur)
    t_setup = time.perf_counter() - t_start

    timings = []
    for frame in frames:
        t0 = time.perf_counter()
        c0 = time.process_time()
        set_camera(cam_ob, scene, K[frame], R[frame], T[frame], width, height)
        for b in objects:
            b.ob.matrix_world = Matrix(b.matrix(frame).tolist())
            if b.anim is not None:
                b.ob.data.vertices.foreach_set("co", np.ascontiguousarray(b.anim[frame], np.float32).ravel())
            if flow and b.moving:
                set_flow_attributes(b, frame, n)
            if blur and b.moving:
                set_blur_keys(b, frame, n, shutter)
            if b.anim is not None or (flow and b.moving):
                b.ob.data.update()
        if blur:
            keyframe_camera(cam_blur, cam_ob, lambda f: camera_matrix(R[f], T[f]), frame, n, shutter)
        scene.cycles.seed = frame_seed(seed, frame)
        scene.frame_current = frame
        files = []
        render_s = save_s = 0.0
        call_cpu = []
        for i, call in enumerate(calls):
            activate(scene, call, adaptive)
            if blur:
                on = bool(call[0].get("motion_blur"))
                scene.camera = cam_blur if on else cam_ob
                scene.render.use_motion_blur = on
            suffix = "" if len(calls) == 1 else "_" + call[0]["name"]
            path = os.path.join(raw, f"{frame:05d}{suffix}.exr")
            t1, c1 = time.perf_counter(), time.process_time()
            bpy.ops.render.render(write_still=False)
            t2 = time.perf_counter()
            call_cpu.append(time.process_time() - c1)  # all threads of this process: the call's CPU cost
            render_s += t2 - t1
            save_result(scene, path)
            check_saved(path)
            save_s += time.perf_counter() - t2
            files.append(path)
        rec = {
            "frame": frame,
            "files": files,
            "seconds": time.perf_counter() - t0,
            "render_seconds": render_s,
            "save_seconds": save_s,
            "cpu_seconds": time.process_time() - c0,
            "call_cpu_seconds": call_cpu,
            "renders": len(calls),
        }
        timings.append(rec)
        contract.progress(rec)

    info = {
        "blender_version": bpy.app.version_string,
        "device_requested": job.device or r["device"],
        "device": device,
        "mode": job.mode,
        "per_modality_shading": job.per_modality_shading if job.mode == "per_modality" else None,
        "modalities": modalities,
        "layers": [
            [{**spec, "passes": sorted(spec["passes"]), "aovs": list(spec["aovs"])} for spec in call] for call in calls
        ],
        "exr_codec": job.exr_codec,
        "setup_seconds": t_setup,
        "frames": timings,
        "warnings": list(contract.WARNINGS),
    }
    contract.write_json_atomic(os.path.join(out, contract.RENDER_INFO), info)
    return info


if __name__ == "__main__":
    contract.script_main(contract.SCRIPT_RENDER, render)
