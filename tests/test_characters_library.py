"""Issue 19 end to end: a folder of rigged scans -> `assets import-characters` -> a library copied to
another folder -> `assets validate` there -> one video rendered from the copy.

The folder holds characters the test makes (two built-in bodies exported through Blender with an
image texture: FBX with Mixamo bone names, glTF with 3ds Max biped names, FBX with arbitrary
names, a bone map sidecar and centimetre units), the CC0 Quaternius FBX files, an unrigged cube
and a rig nothing maps. Checks: what is imported and refused, the licences each source gave,
heights within 2 cm of the source bodies, the texture in the copied store and visibly rendered,
and the render's labels exact (QA: reprojection, joints in the mask, depth vs normals)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap

import numpy as np
import pytest

from conftest import asset_path, require_test_asset, run_cli

pytestmark = [pytest.mark.render, pytest.mark.slow]

QUATERNIUS = [asset_path("characters/Smooth_Male_Casual.fbx"), asset_path("characters/Smooth_Female_Casual.fbx")]

MIXAMO = {
    "Hips": "Hips",
    "LowerBack": "Spine",
    "Spine": "Spine1",
    "Spine1": "Spine2",
    "Neck": "Neck",
    "Neck1": "Neck1",
    "Head": "Head",
    **{
        f"{s}{j}": f"{s}{j}"
        for s in ("Left", "Right")
        for j in ("Shoulder", "Arm", "ForeArm", "Hand", "UpLeg", "Leg", "Foot", "ToeBase")
    },
}
BIPED = {
    "Hips": "Pelvis",
    "LowerBack": "Spine",
    "Spine": "Spine1",
    "Spine1": "Spine2",
    "Neck": "Neck",
    "Head": "Head",
    **{
        f"{s}{j}": f"{s[0]} {b}"
        for s in ("Left", "Right")
        for j, b in (
            ("Shoulder", "Clavicle"),
            ("Arm", "UpperArm"),
            ("ForeArm", "Forearm"),
            ("Hand", "Hand"),
            ("UpLeg", "Thigh"),
            ("Leg", "Calf"),
            ("Foot", "Foot"),
            ("ToeBase", "Toe0"),
        )
    },
}

MAKE = textwrap.dedent("""
    import json, sys
    import bpy
    args = sys.argv[sys.argv.index("--") + 1:]
    scripts, out, jobs = args[0], args[1], json.loads(args[2])
    sys.path.insert(0, scripts)
    from character_load import build_character

    for job in jobs:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        rig, body = build_character(job["npz"], name="person", materials=False)
        # one textured Principled material (the base colour a fallback no texture may hide behind)
        img = bpy.data.images.load(job["texture"])
        mat = bpy.data.materials.new("Outfit")
        mat.use_nodes = True
        bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
        bsdf.inputs["Base Color"].default_value = (0.02, 0.02, 0.9, 1.0)
        tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
        tex.image = img
        mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        body.data.materials.clear()
        body.data.materials.append(mat)
        for p in body.data.polygons:
            p.material_index = 0
        for bone in rig.data.bones:  # renaming a bone renames its vertex group
            bone.name = job["prefix"] + job["names"].get(bone.name, "extra_" + bone.name)
        bpy.ops.object.select_all(action="SELECT")
        if job["path"].endswith(".fbx"):
            bpy.ops.export_scene.fbx(
                filepath=job["path"], add_leaf_bones=False, global_scale=job["scale"], path_mode="COPY",
                embed_textures=True, bake_anim=False,
            )
        else:
            bpy.ops.export_scene.gltf(filepath=job["path"], export_format="GLB", export_animations=False)
    # an unrigged mesh, never to be filed as anything
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    bpy.ops.export_scene.fbx(filepath=out + "/crate.fbx")
    print("MADE", flush=True)
""")


def checker(path, cells=8, size=256):
    """Red/green checker: a texture whose colours no material default gives."""
    from PIL import Image

    y, x = np.mgrid[:size, :size] // (size // cells)
    red = ((x + y) % 2 == 0)[..., None]
    rgb = np.where(red, [220, 30, 25], [25, 200, 30]).astype(np.uint8)
    Image.fromarray(rgb).save(path)


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from thfm_synth.assets.characters import load_character
    from thfm_synth.assets.characters.builtin import bake_builtin
    from thfm_synth.assets.library import BUILTIN_MANIFEST
    from thfm_synth.assets.manifest import load_manifest
    from thfm_synth.blender.runtime import RenderRuntime

    from conftest import REPO

    for q in QUATERNIUS:
        require_test_asset(q)
    root = tmp_path_factory.mktemp("scans")
    d = root / "scans"
    d.mkdir()
    cache = root / "bodies"
    entries = load_manifest(BUILTIN_MANIFEST).manifest.characters
    sources = {}
    jobs = []
    tex = root / "outfit.png"
    checker(tex)
    odd = {c: f"jnt_{i:02d}" for i, c in enumerate(MIXAMO)}  # arbitrary names: only a bone map maps them
    for name, entry, names, prefix, scale in (
        ("Ana.fbx", entries[1], MIXAMO, "mixamorig:", 1.0),
        ("Ben.glb", entries[4], BIPED, "Bip01 ", 1.0),
        ("Cem.fbx", entries[1], odd, "", 100.0),  # centimetres
        ("Dee.fbx", entries[4], {k: f"q{i}" for i, k in enumerate(MIXAMO)}, "", 1.0),  # unmappable, no map
    ):
        npz = bake_builtin(entry, cache)
        sources[name] = load_character(npz).height_m
        jobs.append(
            {
                "npz": str(npz),
                "texture": str(tex),
                "names": names,
                "prefix": prefix,
                "scale": scale,
                "path": str(d / name),
            }
        )
    script = root / "make.py"
    script.write_text(MAKE)
    proc = RenderRuntime.detect().run_file(
        script, [str(REPO / "blender_scripts"), str(d), json.dumps(jobs)], timeout=600
    )
    assert "MADE" in proc.stdout, proc.stderr[-3000:]
    (d / "Cem.bonemap.yaml").write_text("".join(f"{k}: {v}\n" for k, v in odd.items()))
    (d / "Ana.licence.txt").write_text("# sidecar: the SPDX id first\nCC-BY-4.0 Test Author\n")
    (d / "quaternius").mkdir()
    for q in QUATERNIUS:
        shutil.copy(q, d / "quaternius" / q.name)
    (d / "LICENCES.yaml").write_text("'quaternius/*': CC0-1.0\n")
    return d, sources


@pytest.fixture(scope="module")
def library(scans, tmp_path_factory):
    d, sources = scans
    lib = tmp_path_factory.mktemp("made") / "lib"
    p = run_cli("assets", "import-characters", str(d), "--out", str(lib), "--licence", "LicenseRef-Test", timeout=900)
    return p, lib


def test_folder_imports_refuses_and_reports(library):
    p, lib = library
    assert p.returncode == 0, p.stdout + p.stderr
    assert "5 imported, 0 already present, 2 refused, 0 failed" in p.stdout, p.stdout
    refused = {ln.split(":")[0].split()[-1]: ln for ln in p.stdout.splitlines() if ln.startswith("  refused")}
    assert set(refused) == {"crate.fbx", "Dee.fbx"}, refused
    assert "has no armature" in refused["crate.fbx"]
    assert (
        "no known rig matches" in refused["Dee.fbx"]
        and "q3" in refused["Dee.fbx"]
        and "--bone-map" in refused["Dee.fbx"]
    )
    assert not list(lib.glob("crate*")) and not list(lib.glob("Dee*")) and not list(lib.glob("*_textures"))
    assert sorted(p.name for p in lib.iterdir() if not p.name.endswith(".npz")) == ["manifest.yaml", "textures"]


def test_rerun_is_idempotent(scans, library):
    d, _ = scans
    p, lib = library
    before = (lib / "manifest.yaml").read_bytes()
    again = run_cli(
        "assets", "import-characters", str(d), "--out", str(lib), "--licence", "LicenseRef-Test", timeout=600
    )
    assert again.returncode == 0 and "0 imported, 5 already present, 2 refused" in again.stdout, again.stdout
    assert (lib / "manifest.yaml").read_bytes() == before


def test_entries_licences_rigs_heights_and_textures(scans, library):
    from thfm_synth.assets.characters import load_character
    from thfm_synth.assets.characters.materials import texture_refs
    from thfm_synth.assets.manifest import file_sha256, load_manifest

    d, sources = scans
    _, lib = library
    entries = {e.id: e for e in load_manifest(lib / "manifest.yaml").manifest.characters}
    assert set(entries) == {"Ana", "Ben", "Cem", "Smooth_Male_Casual", "Smooth_Female_Casual"}
    assert entries["Ana"].licence == "CC-BY-4.0"  # sidecar
    assert entries["Smooth_Male_Casual"].licence == "CC0-1.0"  # LICENCES.yaml
    assert entries["Ben"].licence == entries["Cem"].licence == "LicenseRef-Test"  # --licence
    assert entries["Ana"].rig == "mixamo" and entries["Ben"].rig == "biped" and entries["Cem"].rig == "custom"
    assert entries["Smooth_Male_Casual"].rig == "quaternius"
    from PIL import Image

    source = np.asarray(Image.open(d.parent / "outfit.png").convert("RGB"))
    for aid, src in (("Ana", "Ana.fbx"), ("Ben", "Ben.glb"), ("Cem", "Cem.fbx")):
        e = entries[aid]
        c = load_character(lib / e.path)
        assert abs(c.height_m - sources[src]) < 0.02, (aid, c.height_m, sources[src])
        assert abs(e.height_m - c.height_m) < 1e-3
        assert e.params["import"]["file_sha256"] == file_sha256(d / src)
        refs = texture_refs(c.materials)
        digests = {r["sha256"] for _, _, r in refs}
        assert set(e.params["import"]["textures"]) == digests and digests, (aid, e.params)
        assert (lib / "textures").is_dir() and all((lib / r["path"]).is_file() for _, _, r in refs)
        # the stored image is the outfit texture, pixel for pixel (exporters may re-encode the PNG)
        stored = [np.asarray(Image.open(lib / r["path"]).convert("RGB")) for _, _, r in refs]
        assert any(im.shape == source.shape and np.array_equal(im, source) for im in stored), aid
    cem = load_character(lib / "Cem.npz")
    assert (
        cem.meta["rescaled"]["unit"] == "centimetres"
        and cem.meta["bone_map"]["LeftForeArm"] == f"jnt_{list(MIXAMO).index('LeftForeArm'):02d}"
    )


@pytest.fixture(scope="module")
def copied(library, tmp_path_factory):
    _, lib = library
    node = tmp_path_factory.mktemp("node") / "lib"
    shutil.copytree(lib, node)
    return node


def test_copied_library_validates(copied):
    p = run_cli("assets", "validate", str(copied / "manifest.yaml"), timeout=600)
    assert p.returncode == 0 and "5 entries, 0 problem(s)" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("character", ["Ana", "Cem"])
def test_render_from_the_copy_is_textured_and_exact(copied, character, tmp_path):
    from thfm_synth.assets.library import load_library
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan
    from thfm_synth.render import outputs
    from thfm_synth.render.video.render_one import render_video

    cfg = load_config(
        "preview", overrides={"video": {"width": 256, "height": 160, "num_frames": 5}, "render": {"samples": 4}}
    )
    library = load_library([copied / "manifest.yaml"], builtin=True)
    spec = next(s for s in make_plan(cfg, library, 1, 40) if s.background_kind == "sky")
    spec = dataclasses.replace(
        spec, character_id=character, camera_framing="full_body", motion_id="builtin-walk", motion_start_frame=30
    )
    out = tmp_path / "v"
    out.mkdir()
    render_video(spec, library, cfg.render, out, tmp_path / "cache")
    meta = json.loads((out / "metadata.json").read_text())
    qa = meta["qa"]
    assert qa["passed"], qa
    assert qa["figures"]["reprojection_px"] < 0.01 and qa["figures"]["visible_joints_in_mask"] >= 0.95
    assert qa["figures"]["depth_normal_median_deg"] < 10.0
    assert meta["assets"][character]["licence"] in ("CC-BY-4.0", "LicenseRef-Test")
    # the texture is on the person: red and green checker cells, not the material's blue fallback
    red = green = blue = total = 0
    for f in range(spec.num_frames):
        fr = outputs.read_frame(out, f, ("rgb", "mask"))
        px = fr.rgb[fr.mask > 0.99].astype(np.float64)
        r, g, b = px[:, 0], px[:, 1], px[:, 2]
        red += int(((r > 1.5 * g) & (r > 1.5 * b)).sum())
        green += int(((g > 1.3 * r) & (g > 1.3 * b)).sum())
        blue += int(((b > 1.5 * r) & (b > 1.5 * g)).sum())
        total += len(px)
    assert total > 1000 and red > 0.15 * total and green > 0.15 * total and blue < 0.05 * total, (
        red,
        green,
        blue,
        total,
    )


def test_the_imported_body_renders_like_the_built_in_it_was_exported_from(copied, tmp_path):
    """Issue 11.4: a dressed built-in character exported to FBX (Mixamo bone names) and imported back
    renders the same person in the same place: the same silhouette, DensePose parts and depth as the
    built-in it came from, frame by frame (the retarget onto the renamed rig, the unit handling and the
    labels of the import all feed this)."""
    from thfm_synth.assets.library import BUILTIN_MANIFEST, load_library
    from thfm_synth.assets.manifest import load_manifest
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan
    from thfm_synth.render import outputs
    from thfm_synth.render.video.render_one import render_video

    original = load_manifest(BUILTIN_MANIFEST).manifest.characters[1].id  # what Ana.fbx was exported from
    cfg = load_config(
        "preview",
        overrides={"video": {"width": 256, "height": 160, "num_frames": 5}, "render": {"samples": 4}},
    )
    library = load_library([copied / "manifest.yaml"], builtin=True)
    spec = next(s for s in make_plan(cfg, library, 1, 40) if s.background_kind == "sky")
    spec = dataclasses.replace(
        spec, camera_framing="full_body", motion_id="builtin-walk", motion_start_frame=30, mirror=False
    )
    frames = {}
    for cid in ("Ana", original):
        out = tmp_path / cid
        out.mkdir()
        render_video(dataclasses.replace(spec, character_id=cid), library, cfg.render, out, tmp_path / "cache")
        assert json.loads((out / "metadata.json").read_text())["qa"]["passed"]
        frames[cid] = [outputs.read_frame(out, f, ("mask", "depth", "iuv")) for f in range(spec.num_frames)]
    for a, b in zip(frames["Ana"], frames[original]):
        ma, mb = a.mask > 0.5, b.mask > 0.5
        iou = (ma & mb).sum() / (ma | mb).sum()
        both = ma & mb & (a.part > 0) & (b.part > 0)
        parts = (a.part[both] == b.part[both]).mean()
        depth = np.median(np.abs(a.depth[both] - b.depth[both]))
        assert iou > 0.9 and parts > 0.83 and depth < 0.01, (iou, parts, depth)


def test_the_copied_library_renders_on_a_local_ray_farm(copied, tmp_path):
    """The issue's end: the copied library on a (local) Ray farm through `thfm-synth render`, every
    video done with QA passed and the characters' digests the library's."""
    import pyarrow.parquet as pq

    from thfm_synth.assets.library import load_library
    from thfm_synth.assets.manifest import load_manifest
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan, plan_meta, write_plan

    cfg = load_config(
        "preview",
        overrides={"video": {"width": 128, "height": 80, "num_frames": 5}, "render": {"samples": 2, "denoise": False}},
    )
    library = load_library([copied / "manifest.yaml"], builtin=True)
    specs = [
        dataclasses.replace(s, character_id=c, others=()) for s, c in zip(make_plan(cfg, library, 0, 2), ("Ana", "Cem"))
    ]
    plan = tmp_path / "plan.parquet"
    write_plan(plan, specs, plan_meta(cfg, library, 0, 2))
    out = tmp_path / "farm"
    p = run_cli("render", "--plan", str(plan), "--out", str(out), "--workers", "2", "--cache", str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr[-3000:]
    assert "failed 0" in p.stdout + p.stderr
    rows = {r["video_id"]: r for r in pq.read_table(out / "videos.parquet").to_pylist()}
    assert set(rows) == {s.video_id for s in specs}
    entries = {e.id: e for e in load_manifest(copied / "manifest.yaml").manifest.characters}
    for s in specs:
        meta = json.loads((out / "videos" / s.video_id / "metadata.json").read_text())
        assert meta["qa"]["passed"], meta["qa"]
        assert meta["assets"][s.character_id]["sha256"] == entries[s.character_id].sha256
