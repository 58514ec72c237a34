import numpy as np
import pytest

from thfm_synth.assets.library import load_library
from thfm_synth.errors import UserError
from thfm_synth.render.scene.layout import BODY_RADIUS_M, build_set, cutaway, obstacles, place_path


@pytest.fixture(scope="module")
def scenes():
    return load_library(builtin=True).by_kind["scenes"]


def walk_path(length_m=3.0, n=81):
    return np.stack([np.zeros(n), -np.linspace(0, length_m, n)], axis=1)


def test_sets_are_deterministic_and_well_formed(scenes):
    for entry in scenes:
        a, b = build_set(entry.params, 5), build_set(entry.params, 5)
        assert a == b
        assert build_set(entry.params, 6) != a
        assert all(min(box.size) > 0 for box in a.boxes)
        assert obstacles(a), entry.id


@pytest.mark.parametrize("u,v", [(0.0, 0.0), (0.3, 0.9), (0.99, 0.5), (0.5, 0.5)])
def test_placed_paths_avoid_every_obstacle_and_stay_on_the_floor(scenes, u, v):
    path = walk_path()
    for entry in scenes:
        layout = build_set(entry.params, 2)
        offset, yaw = place_path(layout, path, u, v)
        c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
        placed = (path - path.mean(0)) @ np.array([[c, s], [-s, c]]) + offset
        assert np.all(placed >= np.array(layout.floor_min) + BODY_RADIUS_M - 1e-9)
        assert np.all(placed <= np.array(layout.floor_max) - BODY_RADIUS_M + 1e-9)
        for box in obstacles(layout):
            assert not box.contains_xy(placed, pad=BODY_RADIUS_M - 1e-9).any(), (entry.id, box.name)


def test_a_path_too_long_for_the_room_is_a_clear_error(scenes):
    room = next(e for e in scenes if e.params["generator"] == "room")
    with pytest.raises(UserError, match="does not fit"):
        place_path(build_set(room.params, 1), walk_path(length_m=30.0), 0.5, 0.5)


def test_cutaway_removes_exactly_the_walls_between_camera_and_subject(scenes):
    room = next(e for e in scenes if e.id == "room-living")
    layout = build_set(room.params, 3)
    subject = np.array([[[0.0, 0.0, 1.0], [0.0, 0.0, 0.1], [0.0, 0.0, 1.7]]])
    camera = np.array([[0.0, -12.0, 1.5]])  # far outside, beyond the south wall
    cut = cutaway(layout, camera, subject)
    removed = {b.name for b in layout.boxes} - {b.name for b in cut.boxes}
    assert "wall_s" in removed and "wall_n" not in removed and "floor" not in removed


def test_sets_get_pbr_surfaces_without_moving_anything():
    """Rooms and streets are finished with procedural PBR surfaces drawn from their own stream: the
    boxes are where they were without them, one finish covers a room's four walls, and every surface
    is one the Blender side builds."""
    import dataclasses

    from thfm_synth.blender.contract import SURFACES
    from thfm_synth.render.scene import layout as L

    seen = set()
    for seed in range(12):
        for gen, bare in (("room", L.room), ("street", L.street)):
            params = {"generator": gen, "size_m": [5.0, 4.0, 2.7], "furniture": 3}
            finished = build_set(params, seed)
            plain = bare(params, seed)
            assert [dataclasses.replace(b, surface=None) for b in finished.boxes] == list(plain.boxes)
            assert all(b.surface in SURFACES for b in finished.boxes)
            assert finished == build_set(params, seed)  # deterministic per seed
            if gen == "room":
                assert len({b.surface for b in finished.boxes if b.role == "wall"}) == 1
            seen |= {b.surface for b in finished.boxes}
    assert seen == set(SURFACES)
