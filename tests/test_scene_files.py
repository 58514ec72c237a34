"""3D scene files and kits as backgrounds: safe probing, walkable placement, real renders.

The shared test assets hold the Quaternius Modular Street Pack (a palette of 20 road tiles,
as .blend and binary .fbx) and 15 pieces of Kenney's Furniture Pack (ASCII FBX, which Blender's
own importer refuses). Blender runs in the render child only; everything else is numpy.
"""

import dataclasses
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from thfm_synth.render import qa
from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.errors import UserError
from thfm_synth.plan.planner import make_plan
from thfm_synth.render import outputs, runner
from thfm_synth.render.description import (
    Camera,
    DescriptionError,
    Light,
    Object,
    RenderSettings,
    SceneDescription,
    World,
    pose_matrix,
)
from thfm_synth.conventions import intrinsics, look_at
from thfm_synth.blender.runtime import RenderRuntime
from thfm_synth.render.scene import scene_files as sf
from thfm_synth.render.scene.assemble import assemble
from thfm_synth.render.scene.layout import BODY_RADIUS_M, SetLayout, WalkMap, place_path
from thfm_synth.render.video.render_one import render_video

SMALL = {"video": {"width": 128, "height": 80, "num_frames": 5}, "render": {"samples": 4, "denoise": False}}
KIT, STREET, STREET_FBX = "scenes-kenney_furniture_kit", "scenes-streets_all", "scenes-streets_all-fbx"


@pytest.fixture(scope="module")
def cache(character_cache):
    return character_cache


@pytest.fixture(scope="module")
def library(shared_manifest, shared_assets):
    return load_library([shared_manifest])


@pytest.fixture(scope="module")
def cfg():
    return load_config("preview", overrides=SMALL)


def spec_for(cfg, library, scene_id, **changes):
    spec = next(s for s in make_plan(cfg, library, 3, 60) if s.background_kind == "scene")
    return dataclasses.replace(
        spec,
        background_id=scene_id,
        camera_framing="full_body",
        character_id="anny-builtin-00",
        motion_id="builtin-walk",
        **changes,
    )


def disc_points(pts: np.ndarray, radius: float, rings: int = 4, per_ring: int = 24) -> np.ndarray:
    """Points on discs of `radius` around each (x, y) point: (N * (1 + rings * per_ring), 2)."""
    ang = np.linspace(0, 2 * np.pi, per_ring, endpoint=False)
    off = [np.zeros((1, 2))] + [
        r * np.stack([np.cos(ang), np.sin(ang)], 1) for r in np.linspace(radius / rings, radius, rings)
    ]
    off = np.concatenate(off)
    return (pts[:, None, :] + off[None]).reshape(-1, 2)


# ----------------------------------------------------------------------------- numpy only
def test_walk_map_placement_keeps_the_whole_path_on_walkable_cells():
    cell = 0.05
    free = np.ones((120, 200), bool)  # 10 x 6 m
    free[40:80, 80:120] = False  # a 2 x 2 m block in the middle
    free[:, :3] = free[:, -3:] = free[:3] = free[-3:] = False  # walls
    walk = WalkMap((-5.0, -3.0), cell, free, 0.25)
    layout = SetLayout((), (-5.0, -3.0), (5.0, 3.0), walk)
    path = np.stack([np.linspace(0, 3.0, 60), np.zeros(60)], 1)
    for u, v in [(0.5, 0.5), (0.1, 0.9), (0.9, 0.1)]:
        offset, yaw = place_path(layout, path, u, v)
        c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
        placed = (path - path.mean(0)) @ np.array([[c, s], [-s, c]]) + offset
        assert walk.lookup(walk.free, disc_points(placed, BODY_RADIUS_M)).all()
    clear = walk.clear(BODY_RADIUS_M)
    assert clear.sum() < free.sum() and not clear[40:80, 80:120].any()
    with pytest.raises(UserError, match="does not fit"):
        place_path(layout, np.stack([np.linspace(0, 12.0, 60), np.zeros(60)], 1), 0.5, 0.5)


def test_scene_file_objects_validate_and_round_trip(tmp_path):
    scene_file = tmp_path / "set.blend"
    scene_file.write_bytes(b"BLENDER-v500")  # existence is all validation checks
    pose = pose_matrix(translation=(1.0, 2.0, 0.5), scale=6.0)
    desc = SceneDescription(
        camera=Camera(k=intrinsics(50.0, 36.0, 64, 64), r=np.eye(3)[None], t=np.zeros((1, 3)), width=64, height=64),
        objects=[
            Object(
                "street",
                "scene_file",
                pose=pose,
                mesh_path=str(scene_file),
                materials=[],
                include_objects=["Street_Straight"],
                exclude_objects=["Lamp"],
            )
        ],
    )
    desc.save(tmp_path / "d")
    back = SceneDescription.load(tmp_path / "d")
    o = back.objects[0]
    assert o.kind == "scene_file" and o.include_objects == ["Street_Straight"] and o.exclude_objects == ["Lamp"]
    assert np.allclose(o.pose, pose) and o.mesh_path == str(scene_file) and o.instance == 1
    bad = [
        dataclasses.replace(desc.objects[0], mesh_path=str(tmp_path / "set.obj")),
        dataclasses.replace(desc.objects[0], subject=True),
        dataclasses.replace(desc.objects[0], mesh_path=str(tmp_path / "missing.blend")),
        dataclasses.replace(desc.objects[0], pose=np.zeros((4, 4))),
        Object("ball", "sphere", include_objects=["x"]),
    ]
    for obj in bad:
        with pytest.raises(DescriptionError):
            dataclasses.replace(desc, objects=[obj]).validate(root=tmp_path)


# ----------------------------------------------------------------------------- probes (Blender)
@pytest.mark.render
def test_probe_of_the_street_pack_blend_and_fbx(library, cache):
    entry = library.entry(STREET)
    probe = sf.probe_scene(
        library.path_of(entry),
        entry.sha256,
        cache,
        cell=0.02,
        objects={"Streets_all.blend": ["Street_Straight", "Street_4Way"]},
    )
    assert probe.safety["use_scripts_auto_execute"] is False and probe.safety["texts_loaded"] == 0
    names = sorted(o.name for o in probe.objects)
    assert len(names) == 20 and all(n.startswith("Street_") for n in names)
    for o in probe.objects:  # a palette: 2 x 2 unit tiles side by side, 10 cm thick at most 0.67 high
        size = np.subtract(o.aabb_max, o.aabb_min)
        assert np.allclose(size[:2], 2.0, atol=0.01) and o.triangles > 0, o
    straight = probe.heightmaps[("Streets_all.blend", "Street_Straight")]
    assert straight.z.shape[1:] == (100, 100) and set(probe.heightmaps) == {
        ("Streets_all.blend", "Street_Straight"),
        ("Streets_all.blend", "Street_4Way"),
    }
    top = straight.z[0]
    assert np.isfinite(top).mean() > 0.99
    assert np.allclose(np.percentile(top[np.isfinite(top)], [5, 95]), [0.10, 0.15], atol=0.002)  # road, pavement
    assert (straight.n[0][..., 2][np.isfinite(top)] > 0.99).mean() > 0.99  # flat tops face up
    assert sf.street_palette(probe) == ("Street_Straight", "Street_4Way") and sf.road_axis(straight) == 0
    # the binary FBX of the same pack: the same tiles where the .blend has them
    fentry = library.entry(STREET_FBX)
    fbx = sf.probe_scene(library.path_of(fentry), fentry.sha256, cache)
    by_name = {o.name: o for o in probe.objects}
    assert sorted(o.name for o in fbx.objects) == names
    for o in fbx.objects:
        assert np.allclose(o.aabb_min, by_name[o.name].aabb_min, atol=1e-3), o.name
        assert np.allclose(o.aabb_max, by_name[o.name].aabb_max, atol=1e-3), o.name


@pytest.mark.render
def test_probe_of_the_kit_and_the_rooms_it_assembles(library, cache):
    entry = library.entry(KIT)
    probe = sf.probe_scene(library.path_of(entry), entry.sha256, cache)
    assert len(probe.files) == 15 and all(f.endswith(".fbx") for f in probe.files)
    assert {f["importer"] for f in probe.doc["files"]} == {"scene_import.read_ascii_fbx"}  # ASCII FBX 7.3
    pieces, scale = sf.kit_pieces(probe, {})
    assert scale == pytest.approx(0.2, abs=1e-4)  # 10-unit floor tiles -> 2 m
    assert np.allclose(pieces["floor"].size, [2.0, 2.0, 0.1], atol=1e-3)
    assert pieces["wall"].size[2] == pytest.approx(2.58, abs=0.01)  # a 2.58 m wall
    rooms = [sf.load_file_scene(entry, library.path_of(entry), seed, cache) for seed in (3, 3, 4)]
    assert [p.name for p in rooms[0].parts] == [p.name for p in rooms[1].parts]
    assert all(np.allclose(a.pose, b.pose) for a, b in zip(rooms[0].parts, rooms[1].parts))
    assert [p.name for p in rooms[0].parts] != [p.name for p in rooms[2].parts] or rooms[0].info != rooms[2].info
    for room in rooms[::2]:
        w, d = room.info["size_m"]
        roles = [p.name.split("_", 2)[2] for p in room.parts]
        assert roles.count("floor") == round(w / 2) * round(d / 2)
        assert roles.count("door") == 1 and 1 <= roles.count("window") <= 2
        walls = [p for p in room.parts if p.role == "wall"]
        assert {p.side for p in walls} == {"S", "E", "N", "W"} and len(walls) == 2 * (round(w / 2) + round(d / 2))
        furniture = [b for b in room.boxes if room.parts[b.part].role in ("furniture", "decor")]
        assert len(furniture) >= 3
        for b in furniture:  # inside the room, standing on the floor (top 10 cm) or on a cabinet
            assert b.lo[0] > -1e-6 and b.lo[1] > -1e-6 and b.hi[0] < w + 1e-6 and b.hi[1] < d + 1e-6, b.name
            assert b.lo[2] >= 0.1 - 1e-3, b.name
        boxes = [b for b in furniture if room.parts[b.part].role == "furniture" and b.name not in ("drawer 2", "plant")]
        for i, a in enumerate(boxes):  # furniture pieces do not interpenetrate (a TV may stand on its cabinet)
            for b in boxes[i + 1 :]:
                overlap = np.minimum(a.hi, b.hi) - np.maximum(a.lo, b.lo)
                assert overlap.min() <= 1e-3, (a.name, b.name)
        lv = sf.levels(room.grid, 2.0)
        assert lv[0][0] == pytest.approx(0.1, abs=1e-3) and lv[0][1] > 0.5 * w * d  # the floor


@pytest.mark.render
def test_blend_loading_never_runs_embedded_python(tmp_path, cache):
    """A .blend whose text block (registered to run on load) and scripted drivers write marker files.

    Opened as a trusted main file it does write them (so the trap works); the probe and the
    renderer read it by library append with auto-execution off: no marker appears.
    """
    runtime = RenderRuntime.detect()
    trap, marker = tmp_path / "trap.blend", tmp_path / "marker"
    make = tmp_path / "make_trap.py"
    make.write_text(
        textwrap.dedent(f"""
        import bpy
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.mesh.primitive_cube_add(size=1.0)
        cube = bpy.context.active_object
        cube.name = "Trap"
        txt = bpy.data.texts.new("trap.py")
        txt.write("from pathlib import Path\\nPath({str(marker)!r}).write_text('text block ran')\\n")
        txt.use_module = True  # "Register": run when the file is loaded with scripts allowed
        fc = cube.driver_add("location", 2)
        fc.driver.type = "SCRIPTED"
        fc.driver.expression = "__import__('pathlib').Path({str(marker) + ".driver"!r}).write_text('ran') and 0.0"
        mat = bpy.data.materials.new("TrapMat")
        cube.data.materials.append(mat)
        fc = mat.node_tree.nodes["Principled BSDF"].inputs["Roughness"].driver_add("default_value")
        fc.driver.type = "SCRIPTED"
        fc.driver.expression = "__import__('pathlib').Path({str(marker) + ".mat"!r}).write_text('ran') and 0.5"
        bpy.ops.wm.save_as_mainfile(filepath={str(trap)!r})
    """)
    )
    assert runtime.run_file(make, timeout=120).returncode == 0 and trap.is_file()
    assert not marker.exists()

    # 1. the probe (and its cache) - no marker
    probe = sf.probe_scene(trap, "f" * 64, cache, cell=0.1)
    assert [o.name for o in probe.objects] == ["Trap"] and probe.safety["texts_loaded"] == 0
    assert probe.safety["use_scripts_auto_execute"] is False
    # 2. the renderer, importing it as a scene_file object - no marker
    cam_r, cam_t = look_at(np.array([3.0, -3.0, 2.0]), np.zeros(3))
    desc = SceneDescription(
        camera=Camera(k=intrinsics(35.0, 36.0, 32, 32), r=cam_r[None], t=cam_t[None], width=32, height=32),
        objects=[Object("trap", "scene_file", mesh_path=str(trap), materials=[])],
        world=World(kind="color", color=(0.2, 0.2, 0.2)),
        lights=[Light("sun", power_w=3.0)],
        render=RenderSettings(samples=1, denoise=False),
    )
    desc.save(tmp_path / "scene")
    info = runner.render(tmp_path / "scene", tmp_path / "render", modalities=("rgb", "depth"), runtime=runtime)
    assert len(info["frames"]) == 1
    assert (
        not marker.exists() and not Path(str(marker) + ".driver").exists() and not Path(str(marker) + ".mat").exists()
    )
    # 3. control: the same file opened as a trusted main file runs both
    control = tmp_path / "control.py"
    control.write_text(
        f"import bpy\nbpy.ops.wm.open_mainfile(filepath={str(trap)!r}, load_ui=False, "
        f"use_scripts=True)\nbpy.context.view_layer.update()\n"
    )
    assert runtime.run_file(control, timeout=120).returncode == 0
    assert marker.read_text() == "text block ran" and Path(str(marker) + ".driver").exists()
    assert Path(str(marker) + ".mat").exists()


# ----------------------------------------------------------------------------- placement
def solid_depth(grid: sf.LayerGrid, pts: np.ndarray) -> np.ndarray:
    """How deep each 3D point lies inside scene geometry (0 outside), from the layered height map:
    a solid spans an upward-facing hit down to the next downward-facing hit below it."""
    j = np.floor((pts[:, 0] - grid.origin[0]) / grid.cell).astype(int)
    i = np.floor((pts[:, 1] - grid.origin[1]) / grid.cell).astype(int)
    _, ny, nx = grid.z.shape
    ok = (i >= 0) & (i < ny) & (j >= 0) & (j < nx)
    z, nz = grid.z[:, i.clip(0, ny - 1), j.clip(0, nx - 1)], grid.nz[:, i.clip(0, ny - 1), j.clip(0, nx - 1)]
    depth = np.zeros(len(pts))
    for k in range(z.shape[0]):
        top = np.where(ok & (nz[k] > 0), z[k], np.nan)
        below = np.full(len(pts), -np.inf)  # the next downward face under this top (or the bottom of all)
        for m in range(z.shape[0] - 1, k, -1):
            below = np.where(np.isfinite(z[m]) & (nz[m] < 0) & (z[m] < top), z[m], below)
        inside = (pts[:, 2] < top) & (pts[:, 2] > below)
        depth = np.maximum(depth, np.where(inside, top - pts[:, 2], 0.0))
    return depth


@pytest.mark.render
@pytest.mark.parametrize("scene_id,u,v", [(KIT, 0.6, 0.25), (KIT, 0.05, 0.95), (STREET, 0.3, 0.7)])
def test_the_subject_walks_on_walkable_ground_without_intersecting_the_scene(cfg, library, cache, scene_id, u, v):
    spec = spec_for(cfg, library, scene_id, placement_u=u, placement_v=v, num_frames=48)
    asm = assemble(spec, library, cfg.render, cache)
    fs, walk = asm.file_scene, asm.layout.walk
    assert fs is not None and walk is not None
    root = asm.joints_world["smpl24"][:, 0]  # pelvis
    # no root-path point within a body radius of anything but walkable ground
    assert walk.lookup(walk.free, disc_points(root[:, :2], BODY_RADIUS_M)).all()
    # feet on the walkable surface: the lowest vertex of the clip exactly at its height,
    # and the surface under the path flat at that height
    assert asm.vertices[..., 2].min() == pytest.approx(walk.ground_z, abs=1e-4)
    under = walk.lookup(walk.height, root[:, :2])
    assert np.abs(under - walk.ground_z).max() <= sf.WALK_TOL_M
    # no vertex of the body inside scene geometry (the floor itself: at most a few mm) ...
    assert solid_depth(fs.grid, asm.vertices[::4].reshape(-1, 3)).max() < 0.005
    # ... which this test would see: points 5 cm into the ground and inside the tallest object
    below = np.concatenate([root[:, :2], np.full((len(root), 1), walk.ground_z - 0.05)], 1)
    assert np.all(np.abs(solid_depth(fs.grid, below) - 0.05) < 0.005)
    tall = max(fs.boxes, key=lambda b: b.hi[2] - b.lo[2])
    assert solid_depth(fs.grid, ((tall.lo + tall.hi) / 2)[None]).max() > 0.05 or tall.hi[2] - tall.lo[2] < 0.3
    # what carries the subject is never cut away
    meshes = {o.name: o for o in asm.description.objects if o.kind == "scene_file"}
    protected = sf.protected_boxes(fs, asm.layout, root[:, :2], 2.0)
    assert protected
    for b in protected:
        part = fs.parts[fs.boxes[b].part]
        assert part.name in meshes and fs.boxes[b].name not in meshes[part.name].exclude_objects


@pytest.mark.render
def test_a_scene_that_cannot_hold_the_motion_is_a_clear_error(library, cache):
    entry = library.entry(KIT)
    room = sf.load_file_scene(entry, library.path_of(entry), 3, cache)
    path = np.stack([np.linspace(0, 40.0, 200), np.zeros(200)], 1)
    with pytest.raises(UserError, match=f"scene '{KIT}' has no walkable area") as err:
        sf.place_subject(room, path, 0.5, 0.5, 2.0)
    assert "room_tiles" in err.value.fix


# ----------------------------------------------------------------------------- renders
@pytest.mark.render
@pytest.mark.parametrize("scene_id", [KIT, STREET])
def test_kit_room_and_street_render_with_consistent_labels(cfg, library, cache, tmp_path, scene_id):
    spec = spec_for(cfg, library, scene_id)
    stats = render_video(spec, library, cfg.render, tmp_path, cache)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["qa"]["passed"], meta["qa"]
    assert stats["frames"] == spec.num_frames and not meta["render"]["warnings"]
    asm = assemble(spec, library, cfg.render, cache)
    asm.description.validate()  # assigns the instance ids exactly as the saved copy got them
    ids = {o.name: o.instance for o in asm.description.objects}
    scene_ids = [o.instance for o in asm.description.objects if o.kind == "scene_file"]
    assert len(scene_ids) > 3
    seen = set()
    for f in range(spec.num_frames):
        fr = outputs.read_frame(tmp_path, f, ("mask", "depth", "instance", "iuv"))
        assert (fr.mask > 0.5).sum() > 100  # the subject is in view in every frame
        on_scene = np.isin(fr.instance, scene_ids)
        seen |= set(np.unique(fr.instance[on_scene]).tolist())
        assert on_scene.mean() > 0.2  # the set fills the frame around the subject
        # scene objects are never in the mask: a pixel whose centre ray (the first sample) hits the
        # scene is never fully covered; partial coverage only on the subject's antialiased edge
        subject = fr.instance == ids["subject"]
        assert fr.mask[on_scene].max() < 1.0 and np.all(fr.mask[subject] > 0)
        assert (fr.mask[on_scene] > 0).sum() < 0.5 * subject.sum()
        assert np.all(fr.mask[qa.erode(on_scene, 4)] == 0.0)
        # labels: depth on every surface (scene meshes included) and none on the sky; no body part on the scene
        assert np.all(fr.depth[fr.instance > 0] > 0) and np.all(np.isfinite(fr.depth))
        assert np.all(fr.depth[fr.instance == 0] == 0)
        assert np.all(fr.part[on_scene] == 0)
    assert len(seen) >= 2


@pytest.mark.render
def test_a_gltf_scene_as_is_walkable_ground_obstacles_and_cutaway(tmp_path, cache):
    """A generic .glb (a 10 x 10 m ground, a 1 m crate, a 3 m pillar): used where the file puts it."""
    from thfm_synth.assets.manifest import SceneEntry, file_sha256

    glb = tmp_path / "yard.glb"
    make = tmp_path / "make_glb.py"
    make.write_text(
        textwrap.dedent(f"""
        import bpy
        bpy.ops.wm.read_factory_settings(use_empty=True)
        for name, size, loc in (("Ground", (10, 10, 0.2), (0, 0, -0.1)), ("Crate", (1, 1, 1), (2, 0, 0.5)),
                                ("Pillar", (0.4, 0.4, 3), (-2, 2, 1.5))):
            bpy.ops.mesh.primitive_cube_add(size=1.0, location=loc)
            ob = bpy.context.active_object
            ob.name = name
            ob.scale = size
        bpy.ops.export_scene.gltf(filepath={str(glb)!r}, export_format="GLB")
    """)
    )
    runtime = RenderRuntime.detect()
    assert runtime.run_file(make, timeout=120).returncode == 0 and glb.is_file()
    entry = SceneEntry(
        id="test-yard",
        path=glb.name,
        sha256=file_sha256(glb),
        licence="CC0-1.0",
        source="test",
        format="glb",
        scene_type="generic",
    )
    scene = sf.load_file_scene(entry, glb, 0, cache)
    assert scene.kind == "as_is" and {b.name for b in scene.boxes} == {"Ground", "Crate", "Pillar"}
    crate = next(b for b in scene.boxes if b.name == "Crate")
    assert np.allclose(crate.lo, [1.5, -0.5, 0], atol=1e-4) and np.allclose(crate.hi, [2.5, 0.5, 1], atol=1e-4)
    ((z, area),) = sf.levels(scene.grid, 2.0)  # the ground; the crate top (1 m2, < a fifth) is no level
    assert z == pytest.approx(0.0, abs=1e-4) and area == pytest.approx(100 - 1 - 0.16, abs=1.0)
    walk = sf.walk_map(scene.grid, z, 2.0)
    assert not walk.lookup(walk.free, np.array([[2.0, 0.0], [-2.0, 2.0]])).any()
    assert walk.lookup(walk.free, np.array([[-3.0, -3.0], [0.0, 0.0]])).all()
    path = np.stack([np.linspace(0, 3.0, 40), np.zeros(40)], 1)
    offset, yaw, layout = sf.place_subject(scene, path, 0.5, 0.5, 2.0)
    c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    placed = (path - path.mean(0)) @ np.array([[c, s], [-s, c]]) + offset
    assert walk.lookup(walk.free, disc_points(placed, BODY_RADIUS_M)).all()
    # a camera behind the crate, looking at a subject beyond it: the crate goes, the ground stays
    subject = np.array([[[4.0, 0.0, 1.0], [4.0, 0.0, 0.05], [4.0, 0.0, 1.7]]])
    hidden = sf.cutaway_parts(scene, np.array([[-1.0, 0.0, 1.2]]), subject, 0.0)
    assert hidden == {0: {"Crate"}}
    objs = sf.description_objects(scene, hidden)
    assert len(objs) == 1 and objs[0].exclude_objects == ["Crate"] and objs[0].include_objects is None
