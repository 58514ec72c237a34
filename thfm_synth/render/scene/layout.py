"""Procedural sets and where the subject stands in them (pure numpy, renderer-agnostic).

A *set* is a list of axis-aligned-in-their-own-frame boxes (floor, walls, furniture,
buildings) that the Blender adapter turns into meshes. The same boxes give a *walkable
map*: a grid over the floor marking cells free of obstacles. Placement moves the
subject's whole root path (all frames, with a body-radius clearance) into free cells,
chosen by the plan's (placement_u, placement_v), so the character never intersects
geometry. Walls between the camera and the subject are removed afterwards (a film-set
"cutaway"), so rooms never hide the subject whatever the lens and trajectory.

Scenes from files (scene/scene_files.py) have no boxes to test against: their layout carries a
`WalkMap` instead - a grid of walkable cells (flat, facing up, at one ground height, with head
room above) - and `place_path` keeps the whole root path, widened by the body radius, on
walkable cells. Both kinds of test apply when a layout has boxes and a walk map.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from thfm_synth.errors import UserError

BODY_RADIUS_M = 0.35


@dataclass(frozen=True)
class Box:
    name: str
    center: tuple[float, float, float]  # world metres
    size: tuple[float, float, float]  # full extents along the box's own x, y, z
    yaw_deg: float  # rotation about world Z
    color: tuple[float, float, float]  # linear RGB base colour
    role: str  # floor | wall | furniture | building | ground
    roughness: float = 0.6
    surface: str | None = None  # procedural PBR surface (blender contract.SURFACES), tinted by `color`
    # drawn as a kit piece (scene/furnish.py) instead of a box: its file and file-to-world pose (4x4)
    piece_file: str | None = None
    piece_pose: tuple | None = None
    piece_role: str | None = None

    def footprint(self) -> np.ndarray:
        """(4, 2) corners of the box's base in world XY."""
        hx, hy = self.size[0] / 2, self.size[1] / 2
        c, s = np.cos(np.radians(self.yaw_deg)), np.sin(np.radians(self.yaw_deg))
        local = np.array([[-hx, -hy], [hx, -hy], [hx, hy], [-hx, hy]])
        return local @ np.array([[c, s], [-s, c]]) + np.array(self.center[:2])

    def contains_xy(self, pts: np.ndarray, pad: float = 0.0) -> np.ndarray:
        c, s = np.cos(np.radians(self.yaw_deg)), np.sin(np.radians(self.yaw_deg))
        d = np.asarray(pts) - np.array(self.center[:2])
        lx, ly = d[..., 0] * c + d[..., 1] * s, -d[..., 0] * s + d[..., 1] * c
        return (np.abs(lx) <= self.size[0] / 2 + pad) & (np.abs(ly) <= self.size[1] / 2 + pad)


@dataclass(frozen=True, eq=False)
class WalkMap:
    """Walkable cells over world XY: cell (i, j) covers x in x0 + [j, j+1) cell, y in y0 + [i, i+1) cell.

    free: (ny, nx) bool - standable at `ground_z` (within the builder's tolerance) with head room;
    height: (ny, nx) float32 - the surface height there (NaN elsewhere).
    """

    origin: tuple[float, float]
    cell: float
    free: np.ndarray
    ground_z: float
    height: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.free.shape)

    def cells_of(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, inside) of world XY points (..., 2)."""
        pts = np.asarray(pts, np.float64)
        j = np.floor((pts[..., 0] - self.origin[0]) / self.cell).astype(np.int64)
        i = np.floor((pts[..., 1] - self.origin[1]) / self.cell).astype(np.int64)
        ny, nx = self.free.shape
        inside = (i >= 0) & (i < ny) & (j >= 0) & (j < nx)
        return np.clip(i, 0, ny - 1), np.clip(j, 0, nx - 1), inside

    def lookup(self, grid: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """grid value at each point; False/0 outside the grid."""
        i, j, inside = self.cells_of(pts)
        return np.where(inside, grid[i, j], np.zeros((), grid.dtype))

    def clear(self, radius: float) -> np.ndarray:
        """Cells whose every point within `radius` lies on free cells (erosion by a disc).

        The disc is widened by half a cell diagonal, so a point anywhere in a clear cell is at
        least `radius` from any non-free cell.
        """
        r = radius + self.cell * np.sqrt(0.5)
        k = int(np.ceil(r / self.cell))
        ny, nx = self.free.shape
        pad = np.zeros((ny + 2 * k, nx + 2 * k), bool)
        pad[k : k + ny, k : k + nx] = self.free
        out = self.free.copy()
        for di in range(-k, k + 1):
            for dj in range(-k, k + 1):
                # cells (di, dj) away whose nearest point is within r of this cell's centre
                dx = max(abs(dj) - 0.5, 0.0) * self.cell
                dy = max(abs(di) - 0.5, 0.0) * self.cell
                if dx * dx + dy * dy > r * r or (di == 0 and dj == 0):
                    continue
                out &= pad[k + di : k + di + ny, k + dj : k + dj + nx]
        return out

    def area_m2(self) -> float:
        return float(self.free.sum()) * self.cell**2


@dataclass(frozen=True)
class SetLayout:
    boxes: tuple[Box, ...]
    floor_min: tuple[float, float]  # walkable area bounds in world XY
    floor_max: tuple[float, float]
    walk: WalkMap | None = field(default=None, compare=False)  # scenes from files: walkable cells


def scene_rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


PALETTES = {
    "living": [(0.55, 0.45, 0.35), (0.3, 0.35, 0.4), (0.7, 0.68, 0.62), (0.25, 0.2, 0.18)],
    "office": [(0.6, 0.6, 0.62), (0.2, 0.22, 0.25), (0.45, 0.5, 0.55), (0.7, 0.7, 0.68)],
    "studio": [(0.8, 0.8, 0.8), (0.15, 0.15, 0.15), (0.5, 0.5, 0.5)],
    "town": [(0.62, 0.5, 0.42), (0.5, 0.52, 0.55), (0.7, 0.62, 0.5), (0.4, 0.38, 0.36)],
}


def room(params: dict, seed: int) -> SetLayout:
    """A walled room with furniture blocks along the walls; params from the built-in manifest."""
    w, d, h = params["size_m"]
    palette = PALETTES.get(params.get("style", "living"), PALETTES["living"])
    rng = scene_rng(seed, 31)
    wall_c = palette[int(rng.random() * len(palette))]
    floor_c = palette[int(rng.random() * len(palette))]
    t = 0.12
    boxes = [Box("floor", (0, 0, -0.05), (w + 2 * t, d + 2 * t, 0.1), 0, floor_c, "floor", 0.5)]
    for name, c, s in (
        ("wall_n", (0, d / 2 + t / 2, h / 2), (w + 2 * t, t, h)),
        ("wall_s", (0, -d / 2 - t / 2, h / 2), (w + 2 * t, t, h)),
        ("wall_e", (w / 2 + t / 2, 0, h / 2), (t, d, h)),
        ("wall_w", (-w / 2 - t / 2, 0, h / 2), (t, d, h)),
    ):
        boxes.append(Box(name, c, s, 0, wall_c, "wall", 0.8))
    for k in range(int(params.get("furniture", 4))):
        fw, fd, fh = 0.5 + 1.3 * rng.random(), 0.4 + 0.5 * rng.random(), 0.4 + 1.4 * rng.random()
        side = int(rng.random() * 4)
        along = rng.random() - 0.5
        if side in (0, 1):  # against north/south wall
            x = along * (w - fw)
            y = (d / 2 - fd / 2) * (1 if side == 0 else -1)
            yaw = 0.0
        else:
            x = (w / 2 - fd / 2) * (1 if side == 2 else -1)
            y = along * (d - fw)
            yaw = 90.0
        color = palette[int(rng.random() * len(palette))]
        boxes.append(Box(f"furniture_{k}", (x, y, fh / 2), (fw, fd, fh), yaw, color, "furniture"))
    return SetLayout(tuple(boxes), (-w / 2, -d / 2), (w / 2, d / 2))


def street(params: dict, seed: int) -> SetLayout:
    """A straight street: road, two pavements and building blocks on both sides."""
    length = float(params.get("length_m", 40.0))
    palette = PALETTES.get(params.get("style", "town"), PALETTES["town"])
    rng = scene_rng(seed, 32)
    road_w, walk_w = 7.0, 3.0
    boxes = [Box("road", (0, 0, -0.05), (road_w, length, 0.1), 0, (0.08, 0.08, 0.09), "ground", 0.9)]
    for sgn in (-1, 1):
        boxes.append(
            Box(
                f"pavement_{sgn}",
                (sgn * (road_w / 2 + walk_w / 2), 0, 0.0),
                (walk_w, length, 0.1),
                0,
                (0.45, 0.44, 0.42),
                "ground",
                0.85,
            )
        )
        y = -length / 2
        k = 0
        while y < length / 2 - 2:
            bw = min(5 + 7 * rng.random(), length / 2 - y)
            bh = 4 + 12 * rng.random()
            bd = 6 + 4 * rng.random()
            x = sgn * (road_w / 2 + walk_w + bd / 2)
            boxes.append(
                Box(
                    f"building_{sgn}_{k}",
                    (x, y + bw / 2, bh / 2),
                    (bd, bw - 0.2, bh),
                    0,
                    palette[int(rng.random() * len(palette))],
                    "building",
                    0.8,
                )
            )
            y += bw
            k += 1
    half = road_w / 2 + walk_w - 0.2
    return SetLayout(tuple(boxes), (-half, -length / 2 + 1), (half, length / 2 - 1))


# Surfaces per role, drawn per video from their own stream (scene_rng(seed, 33)) so adding them did
# not move any wall or piece of furniture of an existing seed.
ROOM_SURFACES = {
    "floor": ("wood", "tiles", "concrete", "wood"),
    "wall": ("plaster", "plaster", "brick", "concrete"),
    "furniture": ("wood", "fabric", "plaster", "wood"),
}
STREET_SURFACES = {
    "road": ("asphalt",),
    "pavement": ("tiles", "concrete"),
    "building": ("brick", "plaster", "concrete"),
}


def _with_surfaces(layout: SetLayout, table: dict, seed: int) -> SetLayout:
    rng = scene_rng(seed, 33)
    wall = table.get("wall", ("plaster",))[int(rng.random() * len(table.get("wall", ("plaster",))))]
    boxes = []
    for b in layout.boxes:
        key = b.name.split("_")[0] if b.name.split("_")[0] in table else b.role
        options = table.get(key)
        if key == "wall":
            surface = wall  # one finish for the room's four walls
        else:
            surface = options[int(rng.random() * len(options))] if options else None
        boxes.append(dataclasses.replace(b, surface=surface))
    return dataclasses.replace(layout, boxes=tuple(boxes))


def room_with_surfaces(params: dict, seed: int) -> SetLayout:
    return _with_surfaces(room(params, seed), ROOM_SURFACES, seed)


def street_with_surfaces(params: dict, seed: int) -> SetLayout:
    return _with_surfaces(street(params, seed), STREET_SURFACES, seed)


GENERATORS = {"room": room_with_surfaces, "street": street_with_surfaces}


def build_set(params: dict, seed: int) -> SetLayout:
    try:
        gen = GENERATORS[params["generator"]]
    except KeyError:
        raise UserError(
            f"unknown procedural scene generator {params.get('generator')!r}", f"use one of {sorted(GENERATORS)}"
        ) from None
    return gen(params, seed)


def obstacles(layout: SetLayout) -> list[Box]:
    return [b for b in layout.boxes if b.role in ("wall", "furniture", "building")]


def place_path(
    layout: SetLayout, path_xy: np.ndarray, u: float, v: float, radius: float = BODY_RADIUS_M
) -> tuple[np.ndarray, float]:
    """Shift and turn a root path so all of it lies on free floor.

    Returns (offset (2,), yaw in degrees) to apply as p' = R(yaw) p + offset. Candidates are
    tried in an order set by (u, v): yaw from a seeded list, the path's centre on a grid;
    the first that keeps every frame `radius` away from obstacles and inside the floor wins.
    """
    if layout.walk is not None:
        return _place_on_walk_map(layout, path_xy, u, v, radius)
    path = np.asarray(path_xy, dtype=np.float64) - np.asarray(path_xy).mean(axis=0)
    lo, hi = np.array(layout.floor_min), np.array(layout.floor_max)
    obs = obstacles(layout)
    yaws = (np.array([0, 90, 180, 270, 45, 135, 225, 315]) + 360 * u) % 360
    gx = np.linspace(lo[0], hi[0], 17)
    gy = np.linspace(lo[1], hi[1], 17)
    centres = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
    pref = lo + (hi - lo) * np.array([u, v])
    centres = centres[np.argsort(np.linalg.norm(centres - pref, axis=1), kind="stable")]
    for yaw in yaws:
        c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
        turned = path @ np.array([[c, s], [-s, c]])
        for centre in centres:
            p = turned + centre
            if np.any(p < lo + radius) or np.any(p > hi - radius):
                continue
            if any(b.contains_xy(p, pad=radius).any() for b in obs):
                continue
            return centre, float(yaw)
    raise UserError(
        "the subject's motion does not fit on the free floor of this scene",
        "use a larger scene or a shorter/slower motion window",
    )


def path_fits(layout: SetLayout, points_xy: np.ndarray, radius: float = BODY_RADIUS_M) -> bool:
    """True when every point lies on free floor, at least `radius` from every obstacle (and, on a walk
    map, on cells clear of non-walkable cells by `radius`): the test `place_path` applies."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    if layout.walk is not None:
        if not layout.walk.lookup(layout.walk.clear(radius), pts[None]).all():
            return False
    else:
        lo, hi = np.array(layout.floor_min), np.array(layout.floor_max)
        if np.any(pts < lo + radius) or np.any(pts > hi - radius):
            return False
    return not any(b.contains_xy(pts, pad=radius).any() for b in obstacles(layout))


def _place_on_walk_map(
    layout: SetLayout, path_xy: np.ndarray, u: float, v: float, radius: float, max_centres: int = 6000
) -> tuple[np.ndarray, float]:
    """`place_path` on a walk map: every root point on a cell clear of non-walkable cells by `radius`.

    Candidates: yaws as for boxes; centres = clear cells (thinned to at most `max_centres`,
    evenly), nearest first to the point (u, v) of the walkable bounds.
    """
    walk = layout.walk
    path = np.asarray(path_xy, dtype=np.float64) - np.asarray(path_xy).mean(axis=0)
    clear = walk.clear(radius)
    obs = obstacles(layout)
    ii, jj = np.nonzero(clear)
    if len(ii) == 0:
        raise UserError(
            "the subject's motion does not fit on the free floor of this scene "
            f"(no walkable cell is {radius:.2f} m from every obstacle)",
            "use a larger scene or a shorter/slower motion window",
        )
    stride = max(1, int(np.ceil(np.sqrt(len(ii) / max_centres))))
    keep = (ii % stride == 0) & (jj % stride == 0)
    if keep.sum() < 1:
        keep[:] = True
    ii, jj = ii[keep], jj[keep]
    centres = np.stack([walk.origin[0] + (jj + 0.5) * walk.cell, walk.origin[1] + (ii + 0.5) * walk.cell], 1)
    lo, hi = np.array(layout.floor_min), np.array(layout.floor_max)
    pref = lo + (hi - lo) * np.array([u, v])
    centres = centres[np.argsort(np.linalg.norm(centres - pref, axis=1), kind="stable")]
    yaws = (np.array([0, 90, 180, 270, 45, 135, 225, 315]) + 360 * u) % 360
    for yaw in yaws:
        c, s = np.cos(np.radians(yaw)), np.sin(np.radians(yaw))
        turned = path @ np.array([[c, s], [-s, c]])
        for start in range(0, len(centres), 256):
            chunk = centres[start : start + 256]
            pts = chunk[:, None, :] + turned[None]  # (C, P, 2)
            good = walk.lookup(clear, pts).all(axis=1)
            for k in np.flatnonzero(good):
                if any(b.contains_xy(pts[k], pad=radius).any() for b in obs):
                    continue
                return chunk[k], float(yaw)
    raise UserError(
        "the subject's motion does not fit on the free floor of this scene "
        f"(walkable area {walk.area_m2():.1f} m2 at z = {walk.ground_z:.2f} m)",
        "use a larger scene or a shorter/slower motion window",
    )


def _segment_hits_box(a: np.ndarray, b: np.ndarray, box: Box) -> bool:
    """Slab test of segment a->b against the box (in the box's frame)."""
    c, s = np.cos(np.radians(box.yaw_deg)), np.sin(np.radians(box.yaw_deg))
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])
    pa, pb = rot @ (a - box.center), rot @ (b - box.center)
    d = pb - pa
    half = np.array(box.size) / 2
    t0, t1 = 0.0, 1.0
    for k in range(3):
        if abs(d[k]) < 1e-12:
            if abs(pa[k]) > half[k]:
                return False
            continue
        ta, tb = (-half[k] - pa[k]) / d[k], (half[k] - pa[k]) / d[k]
        t0, t1 = max(t0, min(ta, tb)), min(t1, max(ta, tb))
        if t0 > t1:
            return False
    return True


def cutaway(layout: SetLayout, camera_centres: np.ndarray, subject_points: np.ndarray) -> SetLayout:
    """Drop walls, furniture and buildings between any camera centre and the subject (a film-set cutaway).

    subject_points: (F, P, 3) points per frame (e.g. head, pelvis, feet) that must stay visible.
    """
    keep = []
    for box in layout.boxes:
        blocking = box.role in ("wall", "furniture", "building") and any(
            _segment_hits_box(camera_centres[f], p, box)
            for f in range(0, len(camera_centres), max(1, len(camera_centres) // 12))
            for p in subject_points[f]
        )
        if not blocking:
            keep.append(box)
    return SetLayout(tuple(keep), layout.floor_min, layout.floor_max, layout.walk)
