"""Rigged-file import through Blender: the CC0 Quaternius FBX, a glTF re-export of it, and bad files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from thfm_synth.assets.characters import NUM_PARTS, import_character, load_character
from thfm_synth.assets.characters.rigs import REQUIRED
from thfm_synth.errors import UserError
from thfm_synth.blender.runtime import RenderRuntime

from conftest import asset_path, require_test_asset

pytestmark = pytest.mark.render

MALE = asset_path("characters/Smooth_Male_Casual.fbx")
FEMALE = asset_path("characters/Smooth_Female_Casual.fbx")

MAKE_FILES = textwrap.dedent("""
    import sys
    import bpy
    out = sys.argv[sys.argv.index("--") + 1]
    # 1. a plain cube, no armature
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    bpy.ops.export_scene.fbx(filepath=out + "/cube.fbx")
    # 2. a skinned mesh on an armature whose bones follow no known naming
    bpy.ops.wm.read_factory_settings(use_empty=True)
    arm = bpy.data.objects.new("rig", bpy.data.armatures.new("rig"))
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    bpy.ops.object.mode_set(mode="EDIT")
    names = ["Hips", "Spine", "Head", "LeftArm", "RightArm", "LeftUpLeg", "RightUpLeg", "Tail"]
    prev = None
    for i, n in enumerate(names):
        b = arm.data.edit_bones.new(n)
        b.head = (0.1 * i, 0, 1.0)
        b.tail = (0.1 * i, 0, 1.1)
        if n != "Hips":
            b.parent = arm.data.edit_bones["Hips"]
    bpy.ops.object.mode_set(mode="OBJECT")
    bpy.ops.mesh.primitive_cube_add(size=0.5, location=(0, 0, 1))
    cube = bpy.context.active_object
    for n in names:
        cube.vertex_groups.new(name=n).add(list(range(8)), 1.0 / len(names), "REPLACE")
    cube.modifiers.new("arm", "ARMATURE").object = arm
    cube.parent = arm
    bpy.ops.object.select_all(action="SELECT")
    bpy.ops.export_scene.fbx(filepath=out + "/badrig.fbx", add_leaf_bones=False)
    # 3. the female Quaternius character re-exported as glTF binary
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.fbx(filepath=sys.argv[sys.argv.index("--") + 2], use_anim=False)
    bpy.ops.export_scene.gltf(filepath=out + "/female.glb", export_format="GLB", export_animations=False)
    # 4. the same with a packed base-colour texture on every material (a textured scan)
    img = bpy.data.images.load(out + "/skin_tex.png")
    img.pack()
    orm = bpy.data.images.load(out + "/orm_tex.png")
    orm.colorspace_settings.name = "Non-Color"
    orm.pack()
    nrm = bpy.data.images.load(out + "/nrm_tex.png")
    nrm.colorspace_settings.name = "Non-Color"
    nrm.pack()
    for mat in bpy.data.materials:
        if mat.node_tree is None:
            continue
        nt = mat.node_tree
        bsdf = next((n for n in nt.nodes if n.type == "BSDF_PRINCIPLED"), None)
        if bsdf is not None:
            tex = nt.nodes.new("ShaderNodeTexImage")
            tex.image = img
            nt.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
            t2 = nt.nodes.new("ShaderNodeTexImage")
            t2.image = orm
            sep = nt.nodes.new("ShaderNodeSeparateColor")
            nt.links.new(t2.outputs["Color"], sep.inputs["Color"])
            nt.links.new(sep.outputs["Green"], bsdf.inputs["Roughness"])
            nt.links.new(sep.outputs["Blue"], bsdf.inputs["Metallic"])
            t3 = nt.nodes.new("ShaderNodeTexImage")
            t3.image = nrm
            nm = nt.nodes.new("ShaderNodeNormalMap")
            nt.links.new(t3.outputs["Color"], nm.inputs["Color"])
            nt.links.new(nm.outputs["Normal"], bsdf.inputs["Normal"])
    bpy.ops.export_scene.gltf(filepath=out + "/textured.glb", export_format="GLB", export_animations=False)
    print("MADE", flush=True)
""")


@pytest.fixture(scope="module")
def made_files(tmp_path_factory):
    require_test_asset(FEMALE)
    out = tmp_path_factory.mktemp("files")
    script = out / "make_files.py"
    script.write_text(MAKE_FILES)
    from PIL import Image  # the textures of the textured export (8x8 flat colours)

    for name, rgb in (("skin_tex", (230, 102, 51)), ("orm_tex", (255, 179, 51)), ("nrm_tex", (128, 128, 255))):
        Image.new("RGB", (8, 8), rgb).save(out / f"{name}.png")
    proc = RenderRuntime.detect().run_file(script, [str(out), str(FEMALE)], timeout=240)
    assert "MADE" in proc.stdout, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def male(tmp_path_factory):
    require_test_asset(MALE)
    out = tmp_path_factory.mktemp("male") / "male.npz"
    c = import_character(MALE, out)
    return c, out


def _check_character(c):
    have = set(c.joint_names)
    for req in REQUIRED:
        assert (have & set(req)) if isinstance(req, tuple) else req in have, req
    assert c.joint_names[0] == "Hips"
    assert 1.4 <= c.height_m <= 2.1
    assert abs(c.vertices[:, 2].min()) < 1e-6
    j = {n: i for i, n in enumerate(c.joint_names)}
    for side in ("Left", "Right"):
        foot = j[f"{side}Foot"]
        assert c.joint_heads[foot, 2] < 0.15  # ankles near the ground
        assert c.joint_tails[foot, 1] < c.joint_heads[foot, 1] - 0.03  # toes point to -Y: facing -Y
        # the foot hangs from the shin, not from the root (Quaternius IK feet are re-parented)
        assert c.joint_names[c.joint_parents[foot]] == f"{side}Leg"
    assert c.joint_heads[j["LeftArm"], 0] > 0.1 > -0.1 > c.joint_heads[j["RightArm"], 0]  # left is +X
    assert c.joint_heads[j["Head"], 2] > c.joint_heads[j["Hips"], 2] > c.joint_heads[j["LeftLeg"], 2]
    w = c.skin_weights.astype(np.float64)
    assert np.all(w.sum(1) == 1.0) and np.all(w[:, 0] > 0)
    assert set(np.unique(c.vertex_part)) == set(range(1, NUM_PARTS + 1))
    can = c.vertex_canonical
    assert np.array_equal(can.min(0), np.zeros(3)) and np.array_equal(can.max(0), np.ones(3))
    assert c.vertex_part_uv.min() >= 0 and c.vertex_part_uv.max() <= 1


def test_quaternius_fbx_imports(male):
    c, path = male
    _check_character(c)
    assert c.meta["rig"] == "quaternius"
    assert c.meta["rig_map"]["Body"] == "Hips" and c.meta["rig_map"]["UpperArm.L"] == "LeftArm"
    assert "PoleTarget.L" in c.meta["skeleton"]["dropped"]
    assert c.meta["rescaled"] is not None and c.meta["rescaled"]["from_m"] > 4  # the file is 4.8 "m" tall
    assert {m["name"] for m in c.materials} >= {"Skin", "Shirt", "Pants", "Shoes"}
    assert load_character(path).meta["id"] == "male"


def test_gltf_import_and_explicit_height(made_files, tmp_path):
    c = import_character(made_files / "female.glb", tmp_path / "female.npz", rig="quaternius", height_m=1.68)
    _check_character(c)
    assert abs(c.height_m - 1.68) < 1e-4 and c.meta["import"]["importer"] == "import_scene.gltf"
    # the glTF importer's bone display shape is not reported as a mesh the armature fails to deform
    assert c.meta["import"]["unskinned_meshes"] == [], c.meta["import"]


def test_file_without_armature_is_one_clear_line(made_files, tmp_path):
    with pytest.raises(UserError) as err:
        import_character(made_files / "cube.fbx", tmp_path / "x.npz")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{made_files / 'cube.fbx'} has no armature") and "(fix: export the character" in msg
    assert not (tmp_path / "x.npz").exists()


def test_rig_without_required_bones_lists_them(made_files, tmp_path):
    with pytest.raises(UserError) as err:
        import_character(made_files / "badrig.fbx", tmp_path / "x.npz")
    msg = str(err.value)
    assert "\n" not in msg and "missing required bones" in msg
    for role in (
        "Neck (neck)",
        "LeftForeArm (left forearm)",
        "RightHand (right hand)",
        "LeftLeg (left shin)",
        "RightFoot (right foot)",
        "LeftShoulder (left clavicle)",
    ):
        assert role in msg
    assert "Head (head)" not in msg and "Hips (pelvis)" not in msg


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(UserError, match="not found"):
        import_character(tmp_path / "nope.fbx", tmp_path / "x.npz")
    (tmp_path / "a.obj").write_text("v 0 0 0\n")
    with pytest.raises(UserError, match="unsupported character format .obj"):
        import_character(tmp_path / "a.obj", tmp_path / "x.npz")


def test_character_npz_dispatches_and_caches_imports(tmp_path):
    from thfm_synth.assets.manifest import CharacterEntry, file_sha256
    from thfm_synth.assets.characters.builtin import character_npz

    require_test_asset(MALE)
    entry = CharacterEntry(
        id="male",
        path="characters/Smooth_Male_Casual.fbx",
        sha256=file_sha256(MALE),
        licence="CC0-1.0",
        source="Quaternius",
        format="fbx",
        rig="quaternius",
        height_m=1.8,
    )
    p = character_npz(entry, MALE, tmp_path)
    assert abs(load_character(p).height_m - 1.8) < 1e-4
    mtime = p.stat().st_mtime_ns
    assert character_npz(entry, MALE, tmp_path) == p and p.stat().st_mtime_ns == mtime
    assert character_npz(entry.model_copy(update={"format": "npz"}), p, tmp_path) == p
    with pytest.raises(UserError, match="not supported"):
        character_npz(entry.model_copy(update={"format": "blend"}), MALE, tmp_path)


def test_textured_import_is_self_contained(made_files, tmp_path):
    """Packed textures land in the library's content-addressed store, referenced relatively and
    covered by their sha256; the library copied elsewhere (original deleted) still resolves them."""
    import shutil

    from thfm_synth.assets.characters.materials import texture_refs
    from thfm_synth.assets.characters.textures import resolve_texture, verify_folder

    lib = tmp_path / "lib"
    lib.mkdir()
    c = import_character(made_files / "textured.glb", lib / "tex.npz")
    refs = texture_refs(c.materials)
    assert refs and all(r["path"].startswith("textures/") and not Path(r["path"]).is_absolute() for _, _, r in refs)
    assert sorted(p.name for p in lib.iterdir()) == ["tex.npz", "textures"]  # no <name>_textures folder
    moved = tmp_path / "elsewhere"
    shutil.copytree(lib, moved)
    shutil.rmtree(lib)
    stats = verify_folder(moved)
    assert stats["references"] == len(refs) == stats["verified"]
    for _, _, r in texture_refs(load_character(moved / "tex.npz").materials):
        assert resolve_texture(moved / "tex.npz", r).parent == (moved / "textures").resolve()
    # an altered texture is caught by its digest
    victim = next((moved / "textures").iterdir())
    victim.write_bytes(victim.read_bytes() + b"x")
    with pytest.raises(UserError, match="sha256"):
        verify_folder(moved)


def test_textured_import_keeps_every_map(made_files, tmp_path):
    """Issue 11.4: normal, roughness and metallic maps survive a glTF round trip; glTF's packed
    channels (roughness G, metallic B) become the red channel the schema reads."""
    from PIL import Image

    from thfm_synth.assets.characters.textures import resolve_texture

    npz = tmp_path / "tex.npz"
    c = import_character(made_files / "textured.glb", npz)
    m = next(m for m in c.materials if m.get("base_color_map"))
    for key in ("base_color_map", "normal_map", "roughness_map", "metallic_map"):
        assert m.get(key) and m[key]["path"].startswith("textures/"), (key, m)
    red = {
        key: np.asarray(Image.open(resolve_texture(npz, m[key])).convert("RGB"))[..., 0].mean()
        for key in ("roughness_map", "metallic_map")
    }
    assert abs(red["roughness_map"] - 179) < 3 and abs(red["metallic_map"] - 51) < 3, red
    assert not m.get("roughness_is_gloss")


@pytest.mark.parametrize(
    "height,unit,metres",
    [
        (170.0, "centimetres", 1.70),
        (16.6, "decimetres", 1.66),
        (1820.0, "millimetres", 1.82),
        (66.0, "inches", 1.6764),
        (0.166, "a scale 10x too small", 1.66),
        (4.8, None, None),
    ],
)
def test_wrong_unit_heights_keep_their_real_height(height, unit, metres):
    from thfm_synth.assets.characters.importer import guess_unit

    got = guess_unit(height)
    assert (got and got[0]) == unit
    if got:
        assert abs(height * got[1] - metres) < 1e-9


def test_bogus_rig_is_a_usage_error(tmp_path):
    from conftest import run_cli
    from thfm_synth.assets.characters.rigs import RIG_NAMES
    from thfm_synth.cli import IMPORT_RIGS

    assert IMPORT_RIGS == ("auto", *RIG_NAMES)
    p = run_cli(
        "assets", "import-character", str(tmp_path / "x.fbx"), "--out", str(tmp_path / "x.npz"), "--rig", "bogus"
    )
    assert p.returncode == 2 and "bogus" in p.stderr


def test_validate_checks_an_imported_characters_textures(made_files, tmp_path):
    """A library folder (npz + manifest + textures/) copied elsewhere validates; a missing texture
    is a validate problem naming it, not a render-time failure."""
    import shutil

    from thfm_synth.assets.manifest import CharacterEntry, Manifest, dump_manifest, file_sha256
    from thfm_synth.assets.validate import validate

    lib = tmp_path / "lib"
    lib.mkdir()
    import_character(made_files / "textured.glb", lib / "tex.npz")
    entry = CharacterEntry(
        id="tex", path="tex.npz", sha256=file_sha256(lib / "tex.npz"), licence="CC0-1.0", source="test", format="npz"
    )
    (lib / "manifest.yaml").write_text(dump_manifest(Manifest(name="lib", characters=[entry])))
    moved = tmp_path / "node"
    shutil.copytree(lib, moved)
    shutil.rmtree(lib)
    n, problems = validate(moved / "manifest.yaml")
    assert n == 1 and problems == []
    victim = next((moved / "textures").iterdir())
    victim.unlink()
    n, problems = validate(moved / "manifest.yaml")
    assert len(problems) >= 1 and victim.name in problems[0] and "missing" in problems[0], problems


def test_rig_matching_nothing_is_not_called_a_best_match():
    from thfm_synth.assets.characters.rigs import map_rig

    bones = [f"Skeleton_joint_{i}" for i in range(19)]
    with pytest.raises(UserError) as err:
        map_rig(bones, source="odd.glb")
    msg = str(err.value)
    assert "best match" not in msg and "no known rig matches its 19 bones" in msg
    assert "Skeleton_joint_18" in msg and "left forearm" in msg  # their bones next to the required ones
