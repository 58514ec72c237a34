"""A straight street with a crossing, laid from a palette of road tiles (e.g. the Quaternius street pack)."""

from __future__ import annotations

import re

import numpy as np

from thfm_synth.render.scene.file_probe import HeightMap, Probe
from thfm_synth.render.scene.walkable import MIN_CLEARANCE_M, FileScene, Part, finish_scene, levels, piece_pose
from thfm_synth.render.scene.layout import scene_rng

STREET_STRAIGHT = re.compile(r"straight", re.I)
STREET_CROSSING = re.compile(r"4[ _-]?way|cross", re.I)


def street_palette(probe: Probe) -> tuple[str, str | None] | None:
    """(straight tile, crossing tile or None) if the file looks like a palette of road tiles."""
    objs = probe.objects_of(probe.files[0])
    straight = sorted((o for o in objs if STREET_STRAIGHT.search(o.name)), key=lambda o: (len(o.name), o.name))
    if len(objs) < 3 or not straight:
        return None
    size = np.subtract(straight[0].aabb_max, straight[0].aabb_min)[:2]
    if size.min() <= 0 or size.max() / size.min() > 1.25:
        return None
    cross = sorted(
        (
            o
            for o in objs
            if STREET_CROSSING.search(o.name) and np.allclose(np.subtract(o.aabb_max, o.aabb_min)[:2], size, rtol=0.05)
        ),
        key=lambda o: (len(o.name), o.name),
    )
    return straight[0].name, (cross[0].name if cross else None)


def road_axis(hm: HeightMap) -> int:
    """0 if the road of a straight tile runs along file X, 1 along Y (its heights vary across it)."""
    top = np.where(np.isfinite(hm.z[0]), hm.z[0], np.nanmin(hm.z[0]))
    across_y = np.median(top, axis=1).var()  # profile along Y (median over X)
    across_x = np.median(top, axis=0).var()
    return 0 if across_y >= across_x else 1


def street_from_tiles(
    entry_id: str,
    probe: Probe,
    heights: Probe,
    params: dict,
    seed: int,
    scale: float,
    tiles: tuple[str, str | None],
    cell: float,
) -> FileScene:
    key = probe.files[0]
    straight, crossing = tiles
    rng = scene_rng(seed, 41)
    lo, hi = probe.bounds(key, [straight])
    tile_m = float(params.get("tile_m", 12.0))
    axis = road_axis(heights.heightmaps[(key, straight)])
    align = 0.0 if axis == 0 else -90.0  # turn the tile so its road runs along world X
    lo_n, hi_n = params.get("street_tiles", (5, 7))
    n = int(rng.integers(int(lo_n), int(hi_n) + 1))
    c = int(rng.integers(1, max(2, n - 1))) if crossing else -1
    arms = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if crossing else (0, 0)
    parts = []

    def tile(name, x, y, yaw, role="tile"):
        tlo, thi = probe.bounds(key, [name])
        anchor = np.array([(tlo[0] + thi[0]) / 2, (tlo[1] + thi[1]) / 2, 0.0])
        parts.append(
            Part(
                f"street_{len(parts):02d}_{name}",
                probe.file_path(key),
                key,
                piece_pose(anchor, scale, (x, y, 0.0), yaw + align),
                (name,),
                role,
            )
        )

    for k in range(n):
        tile(crossing if k == c else straight, (k - c if crossing else k - (n - 1) / 2) * tile_m, 0.0, 0.0)
    for sgn, m in zip((1, -1), arms):
        for k in range(1, m + 1):
            tile(straight, 0.0, sgn * k * tile_m, 90.0)
    scene = finish_scene(
        entry_id,
        "street",
        parts,
        heights,
        cell,
        params.get("ground", "concrete"),
        0.0,
        {
            "layout": "street",
            "tile_m": tile_m,
            "scale": scale,
            "tiles": n,
            "crossing": c,
            "arms": arms,
            "straight": straight,
            "crossing_tile": crossing,
        },
    )
    lv = levels(scene.grid, MIN_CLEARANCE_M)
    top = lv[0][0] if lv else 0.0  # the pavement: put it at z = 0, the outside ground just under it
    scene = scene.shift_z(-top)
    scene.ground_plane_z = -0.005
    return scene
