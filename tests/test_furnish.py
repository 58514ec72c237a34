"""Procedural rooms furnished from a kit: real pieces against the walls, clear of the subject's path."""

import dataclasses
import json
from types import SimpleNamespace

import numpy as np
import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.config import load_config
from thfm_synth.plan.planner import make_plan
from thfm_synth.render import outputs
from thfm_synth.render.scene.assemble import assemble
from thfm_synth.render.scene.furnish import WALL_GAP_M, KitPiece, furnish, room_kit
from thfm_synth.render.scene.layout import BODY_RADIUS_M, build_set, cutaway, obstacles, place_path
from thfm_synth.render.video.render_one import render_video

ROOM = {"generator": "room", "size_m": [6.0, 5.0, 2.8], "furniture": 6, "style": "living"}
PIECES = {
    "sofa": KitPiece("sofa", "/kit/sofa.fbx", (0.0, 0.0, 0.0), (2.0, 0.9, 0.8), 1.0),
    "bookcase": KitPiece("bookcase", "/kit/bookcase.fbx", (0.1, 0.2, 0.0), (0.8, 0.35, 1.8), 1.0),
    "plant": KitPiece("plant", "/kit/plant.fbx", (0.0, 0.0, -0.1), (0.4, 0.4, 1.0), 1.0),
    "rug": KitPiece("rug", "/kit/rug.fbx", (0.0, 0.0, 0.0), (2.0, 1.5, 0.01), 1.0),  # not a furniture role
}


def _rect(b):
    fp = b.footprint()
    return np.concatenate([fp.min(0), fp.max(0)])


@pytest.mark.parametrize("seed", range(6))
def test_pieces_stand_against_the_walls_facing_in_without_overlap(seed):
    bare = build_set(ROOM, seed)
    room = furnish(bare, (6.0, 5.0), PIECES, seed)
    assert room == furnish(bare, (6.0, 5.0), PIECES, seed)  # deterministic
    assert [b for b in room.boxes if b.role != "furniture"] == [b for b in bare.boxes if b.role != "furniture"]
    pieces = [b for b in room.boxes if b.role == "furniture"]
    assert pieces and all(b.piece_file is not None for b in pieces)
    assert {b.piece_role for b in pieces} <= {"sofa", "bookcase", "plant"}
    rects = [_rect(b) for b in pieces]
    for b, r in zip(pieces, rects):
        # inside the room, the back a wall gap from the nearest wall
        assert r[0] >= -3.0 - 1e-9 and r[2] <= 3.0 + 1e-9 and r[1] >= -2.5 - 1e-9 and r[3] <= 2.5 + 1e-9
        gaps = np.array([r[0] + 3.0, 3.0 - r[2], r[1] + 2.5, 2.5 - r[3]])
        assert gaps.min() == pytest.approx(WALL_GAP_M, abs=1e-9)
        # the piece's front (+Y in its file) points away from that wall, into the room
        pose = np.array(b.piece_pose)
        front = pose[:3, :3] @ np.array([0.0, 1.0, 0.0])
        inward = [np.array(v) for v in ((1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0))][int(np.argmin(gaps))]
        assert front @ inward == pytest.approx(1.0, abs=1e-9)
        # the file's anchor (bottom centre) lands on the floor at the box's centre
        spec = PIECES[b.piece_role]
        anchor = pose[:3, :3] @ np.array(spec.anchor) + pose[:3, 3]
        np.testing.assert_allclose(anchor, [b.center[0], b.center[1], 0.0], atol=1e-9)
        assert b.size == spec.size
    for i in range(len(rects)):
        for j in range(i):
            a, c = rects[i], rects[j]
            assert not (a[0] < c[2] - 1e-9 and c[0] < a[2] - 1e-9 and a[1] < c[3] - 1e-9 and c[1] < a[3] - 1e-9)


@pytest.mark.parametrize("u,v", [(0.0, 0.0), (0.3, 0.9), (0.99, 0.5)])
def test_the_subject_path_keeps_clear_of_the_pieces_and_the_cutaway_sees_them(u, v):
    path = np.stack([np.zeros(81), -np.linspace(0, 2.5, 81)], axis=1)
    room = furnish(build_set(ROOM, 4), (6.0, 5.0), PIECES, 4)
    offset, yaw = place_path(room, path, u, v)
    c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
    placed = (path - path.mean(0)) @ np.array([[c, s], [-s, c]]) + offset
    pieces = [b for b in obstacles(room) if b.piece_file is not None]
    assert pieces
    for b in pieces:
        assert not b.contains_xy(placed, pad=BODY_RADIUS_M - 1e-9).any()
    # a piece between the camera and the subject is cut away like a block would be
    target = pieces[0]
    cam = np.array([[target.center[0], target.center[1], 8.0]])
    subject = np.array([[[target.center[0], target.center[1], -1.0]]])
    assert target not in cutaway(room, cam, subject).boxes


def test_no_pieces_or_no_kit_keeps_the_blocks():
    bare = build_set(ROOM, 1)
    assert furnish(bare, (6.0, 5.0), {"rug": PIECES["rug"]}, 1) == bare
    entry = SimpleNamespace(format="procedural", params=dict(ROOM), id="room-x")
    kit = SimpleNamespace(id="kit-a", format="kit", scene_type="room")
    street = SimpleNamespace(id="kit-b", format="kit", scene_type="street")
    lib = SimpleNamespace(by_kind={"scenes": [kit, street]}, entry=lambda i: {"kit-a": kit}[i])
    assert room_kit(lib, entry, 0) is kit
    assert room_kit(SimpleNamespace(by_kind={"scenes": [street]}), entry, 0) is None
    assert room_kit(lib, SimpleNamespace(format="procedural", params={**ROOM, "furniture_kit": "none"}), 0) is None
    assert room_kit(lib, SimpleNamespace(format="procedural", params={**ROOM, "furniture_kit": "kit-a"}), 0) is kit
    assert room_kit(lib, SimpleNamespace(format="procedural", params={"generator": "street"}), 0) is None
    assert room_kit(lib, SimpleNamespace(id="sky-clear", params={}), 0) is None  # skies and HDRIs: no format


@pytest.mark.render
def test_a_furnished_room_renders_its_pieces_where_their_obstacles_are(
    shared_manifest, shared_assets, tmp_path, character_cache
):
    """Every pixel the render labels as a kit piece lies inside that piece's obstacle box: what is
    drawn is what the subject's path and the cutaway avoid. The kit is recorded and verified."""
    library = load_library([shared_manifest])
    cfg = load_config(
        "preview",
        overrides={"video": {"width": 160, "height": 96, "num_frames": 1}, "render": {"samples": 4, "denoise": False}},
    )
    spec = next(s for s in make_plan(cfg, library, 3, 60) if s.background_kind == "scene")
    cache = character_cache
    out = tmp_path / "video"
    seen = 0
    for seed in range(40):  # a room and camera where pieces are in view
        spec = dataclasses.replace(
            spec,
            background_id="room-living",
            character_id="anny-builtin-00",
            motion_id="builtin-walk",
            camera_framing="full_body",
            render_seed=seed,
            focal_length_mm=24.0,
        )
        asm = assemble(spec, library, cfg.render, cache)
        asm.description.validate()
        pieces = {o.name: o for o in asm.description.objects if o.kind == "scene_file"}
        boxes = {f"set_{b.name}": b for b in asm.layout.boxes if b.piece_file is not None}
        assert set(pieces) == set(boxes) and pieces
        cam = asm.description.camera
        centres = np.array([b.center for b in boxes.values()])
        c = centres @ cam.r[0].T + cam.t[0]
        uv = c[:, :2] / c[:, 2:] * [cam.k[0][0, 0], cam.k[0][1, 1]] + [cam.k[0][0, 2], cam.k[0][1, 2]]
        inside = (c[:, 2] > 0.5) & (uv[:, 0] > 8) & (uv[:, 0] < 152) & (uv[:, 1] > 8) & (uv[:, 1] < 88)
        if inside.sum() >= 2:
            break
    render_video(spec, library, cfg.render, out, cache)
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["qa"]["passed"], meta["qa"]
    kit = library.entry("scenes-kenney_furniture_kit")
    assert meta["assets"][kit.id]["sha256"] == kit.sha256
    assert sorted(f["name"] for f in meta["furniture"]) == sorted(b.name for b in boxes.values())
    for f in range(spec.num_frames):
        fr = outputs.read_frame(out, f, ("depth", "instance"))
        k, r, t = cam.k[f], cam.r[f], cam.t[f]
        for name, obj in pieces.items():
            on = fr.instance == obj.instance
            if on.sum() < 5:
                continue
            seen += 1
            v, u = np.nonzero(on)
            z = fr.depth[v, u]
            rays = np.linalg.inv(k) @ np.stack([u + 0.5, v + 0.5, np.ones_like(u, dtype=float)])
            world = (np.asarray(r).T @ (rays * z - np.asarray(t)[:, None])).T
            box = boxes[name]
            assert box.contains_xy(world[:, :2], pad=0.02).all(), name
            assert world[:, 2].min() > -0.02 and world[:, 2].max() < box.size[2] + 0.02, name
    assert seen >= 2
