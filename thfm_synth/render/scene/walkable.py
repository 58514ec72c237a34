"""Placed parts of a file scene, their layered height grid, walkable levels, placement and cutaway (numpy).

See `scene_files` for the rules (standable surfaces, levels, walk maps, cutaway).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from thfm_synth.conventions import yaw_matrix
from thfm_synth.errors import UserError
from thfm_synth.render.scene.file_probe import Probe
from thfm_synth.render.scene.layout import BODY_RADIUS_M, Box, SetLayout, WalkMap, _segment_hits_box, place_path

GRID_LAYERS = 8
MAX_SLOPE_COS = float(np.cos(np.radians(20.0)))
LEVEL_TOL_M = 0.03  # standable heights this close form one level
WALK_TOL_M = 0.015  # walkable cells: surface within this of the level (a 2 cm rug is not floor: no sunk feet)
COPLANAR_M = 0.005
KNEE_M = 0.5
CUTAWAY_SIDE_M = 0.6  # assemble also keeps the line of sight to points this far beside the pelvis clear
MIN_CLEARANCE_M = 2.0
MIN_LEVEL_AREA_M2 = 1.0


# ----------------------------------------------------------------------------- placed scenes
@dataclass
class Part:
    """One placed file (or a subset of its objects): one `scene_file` object of the description."""

    name: str
    file: Path
    key: str  # probe file key
    pose: np.ndarray  # (4, 4) file frame -> world
    objects: tuple[str, ...] | None  # the file's objects it uses (None = all)
    role: str  # floor | wall | furniture | decor | tile | scene
    side: str | None = None  # kit walls: the room side S/E/N/W they close
    # replaces the file's materials: (procedural PBR surface of blender contract.SURFACES, linear RGB tint)
    surface: tuple[str, tuple[float, float, float]] | None = None


@dataclass(frozen=True, eq=False)
class ObjectBox:
    part: int
    name: str
    lo: np.ndarray  # (3,) world
    hi: np.ndarray


@dataclass
class LayerGrid:
    """Every surface hit per world cell, top first: z (K, ny, nx) NaN = none, nz its normal's z,
    owner the index of the `ObjectBox` it belongs to (-1 none)."""

    origin: np.ndarray
    cell: float
    z: np.ndarray
    nz: np.ndarray
    owner: np.ndarray

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        _, ny, nx = self.z.shape
        return (self.origin[0] + (np.arange(nx) + 0.5) * self.cell, self.origin[1] + (np.arange(ny) + 0.5) * self.cell)


@dataclass
class FileScene:
    entry_id: str
    kind: str  # room | street | as_is
    parts: list[Part]
    boxes: list[ObjectBox]
    grid: LayerGrid
    ground_plane_z: float
    ground: str  # material of the outside ground plane (assemble.GROUNDS)
    info: dict = field(default_factory=dict)

    def shift_z(self, dz: float) -> "FileScene":
        parts = []
        for p in self.parts:
            pose = p.pose.copy()
            pose[2, 3] += dz
            parts.append(replace(p, pose=pose))
        boxes = [ObjectBox(b.part, b.name, b.lo + [0, 0, dz], b.hi + [0, 0, dz]) for b in self.boxes]
        g = self.grid
        grid = LayerGrid(g.origin, g.cell, g.z + np.float32(dz), g.nz, g.owner)
        return replace(self, parts=parts, boxes=boxes, grid=grid, ground_plane_z=self.ground_plane_z + dz)


def piece_pose(anchor: np.ndarray, scale: float, position: np.ndarray, yaw_deg: float) -> np.ndarray:
    """File frame -> world: move `anchor` (file units) to the origin, scale, turn about Z, move to `position`."""
    m = np.eye(4)
    m[:3, :3] = yaw_matrix(yaw_deg) * scale
    m[:3, 3] = np.asarray(position, np.float64) - m[:3, :3] @ np.asarray(anchor, np.float64)
    return m


def transform_box(pose: np.ndarray, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    w = corners @ pose[:3, :3].T + pose[:3, 3]
    return w.min(axis=0), w.max(axis=0)


def compose(
    parts: list[Part], probe: Probe, cell: float, layers: int = GRID_LAYERS
) -> tuple[list[ObjectBox], LayerGrid]:
    """Resample every part object's height map onto one world grid (nearest cell), all hits kept top first."""
    boxes = []
    for pi, part in enumerate(parts):
        for obj in probe.objects_of(part.key, part.objects):
            lo, hi = transform_box(part.pose, obj.aabb_min, obj.aabb_max)
            boxes.append(ObjectBox(pi, obj.name, lo, hi))
    if not boxes:
        raise UserError("the scene has no mesh objects", "check the scene file and the objects named in its params")
    lo = np.min([b.lo[:2] for b in boxes], axis=0)
    hi = np.max([b.hi[:2] for b in boxes], axis=0)
    origin = np.floor(lo / cell) * cell - cell
    nx, ny = np.ceil((hi - origin) / cell).astype(int) + 1
    if nx * ny > 40_000_000:
        raise UserError(
            f"the scene covers {hi[0] - lo[0]:.0f} x {hi[1] - lo[1]:.0f} m, too large for a "
            f"{cell * 100:.0f} cm walkability grid",
            "raise params.cell_m or limit params.objects",
        )
    z = np.full((layers, ny, nx), np.nan, np.float32)
    nz = np.zeros((layers, ny, nx), np.float32)
    owner = np.full((layers, ny, nx), -1, np.int32)
    for bi, box in enumerate(boxes):
        part = parts[box.part]
        hm = probe.heightmaps.get((part.key, box.name))
        if hm is None:
            continue
        a = part.pose
        if np.abs(a[2, :2]).max() > 1e-9 or np.abs(a[:2, 2]).max() > 1e-9 or a[2, 2] <= 0:
            raise ValueError(f"part {part.name}: only poses that keep +Z up are supported for walkability")
        j0, i0 = np.floor((box.lo[:2] - origin) / cell).astype(int)
        j1, i1 = np.ceil((box.hi[:2] - origin) / cell).astype(int)
        j0, i0, j1, i1 = max(j0, 0), max(i0, 0), min(j1, nx), min(i1, ny)
        if j1 <= j0 or i1 <= i0:
            continue
        xs = origin[0] + (np.arange(j0, j1) + 0.5) * cell
        ys = origin[1] + (np.arange(i0, i1) + 0.5) * cell
        wx, wy = np.meshgrid(xs, ys)
        inv = np.linalg.inv(a[:2, :2])
        fx = inv[0, 0] * (wx - a[0, 3]) + inv[0, 1] * (wy - a[1, 3])
        fy = inv[1, 0] * (wx - a[0, 3]) + inv[1, 1] * (wy - a[1, 3])
        fj = np.floor((fx - hm.origin[0]) / hm.cell).astype(np.int64)
        fi = np.floor((fy - hm.origin[1]) / hm.cell).astype(np.int64)
        k, hy, hx = hm.z.shape
        ok = (fi >= 0) & (fi < hy) & (fj >= 0) & (fj < hx)
        fi, fj = np.clip(fi, 0, hy - 1), np.clip(fj, 0, hx - 1)
        zs = np.where(ok[None], hm.z[:, fi, fj], np.nan) * a[2, 2] + a[2, 3]
        nf = hm.n[:, fi, fj]  # (K, h, w, 3)
        nw = nf @ np.linalg.inv(a[:3, :3])  # normals transform by the inverse transpose
        nlen = np.linalg.norm(nw, axis=-1)
        nzs = np.where(nlen > 0, nw[..., 2] / np.where(nlen > 0, nlen, 1), 0).astype(np.float32)
        sl = (slice(None), slice(i0, i1), slice(j0, j1))
        cz = np.concatenate([z[sl], zs.astype(np.float32)])
        cn = np.concatenate([nz[sl], nzs])
        co = np.concatenate([owner[sl], np.where(np.isfinite(zs), bi, -1).astype(np.int32)])
        order = np.argsort(-np.where(np.isfinite(cz), cz, -np.inf), axis=0, kind="stable")[:layers]
        z[sl] = np.take_along_axis(cz, order, 0)
        nz[sl] = np.take_along_axis(cn, order, 0)
        owner[sl] = np.take_along_axis(co, order, 0)
    return boxes, LayerGrid(origin, cell, z, nz, owner)


# ----------------------------------------------------------------------------- walkability
def standable(grid: LayerGrid, clearance: float) -> np.ndarray:
    """(K, ny, nx): the hit faces up, and above it is open air for `clearance` metres.

    Going down a cell's column, an upward face enters a solid and a downward face leaves it.
    The surface is in open air if the nearest hit above it is a downward face (the underside of
    something) or there is none; that underside must be `clearance` higher. A downward face
    coplanar with the surface (an object resting on it) counts as above it; an upward face
    coplanar with it is the same surface (overlapping tiles, duplicated faces) and is ignored.
    """
    z = grid.z
    finite = np.isfinite(z)
    up = (grid.nz > MAX_SLOPE_COS) & finite
    down = (grid.nz < 0) & finite
    out = np.zeros_like(up)
    for k in range(z.shape[0]):
        if not up[k].any():
            continue
        zk = z[k]
        near = np.full(zk.shape, np.inf, np.float32)
        near_down = np.zeros(zk.shape, bool)
        for j in range(z.shape[0]):
            if j == k:
                continue
            zj = z[j]
            cand = finite[j] & np.where(down[j], zj >= zk - COPLANAR_M, zj > zk + COPLANAR_M)
            cand &= ~(up[j] & (np.abs(zj - zk) <= COPLANAR_M))
            better = cand & (zj < near)
            near = np.where(better, zj, near)
            near_down = np.where(better, down[j], near_down)
        out[k] = up[k] & (np.isinf(near) | (near_down & (near - zk >= clearance)))
    return out


def levels(
    grid: LayerGrid, clearance: float, min_area: float = MIN_LEVEL_AREA_M2, max_levels: int = 6
) -> list[tuple[float, float]]:
    """Ground levels [(z, area m2)], largest first: peaks of the standable heights (2 cm bins).

    A level must cover `min_area` and a fifth of the largest one (a sofa seat or a table top is
    not ground to stand on)."""
    st = standable(grid, clearance)
    zs = np.sort(grid.z[st].astype(np.float64))
    out = []
    cell_area = grid.cell**2
    while len(zs) and len(out) < max_levels:
        bins = np.floor(zs / 0.02).astype(np.int64)
        vals, counts = np.unique(bins, return_counts=True)
        b = vals[np.argmax(counts)]
        near = np.abs(zs - (b + 0.5) * 0.02) <= LEVEL_TOL_M
        level = float(np.median(zs[near]))
        members = np.abs(zs - level) <= LEVEL_TOL_M
        area = float(members.sum()) * cell_area
        if area < max(min_area, 0.2 * (out[0][1] if out else 0.0)):
            break
        out.append((level, area))
        zs = zs[np.abs(zs - level) > 2 * LEVEL_TOL_M]
    return out


def walk_map(grid: LayerGrid, level: float, clearance: float, tol: float = WALK_TOL_M) -> WalkMap:
    st = standable(grid, clearance) & (np.abs(grid.z - level) <= tol)
    free = st.any(axis=0)
    height = np.where(free, np.where(st, grid.z, -np.inf).max(axis=0), np.nan).astype(np.float32)
    return WalkMap((float(grid.origin[0]), float(grid.origin[1])), grid.cell, free, float(level), height)


def layout_of(walk: WalkMap) -> SetLayout:
    ii, jj = np.nonzero(walk.free)
    if len(ii) == 0:
        lo = hi = np.asarray(walk.origin)
    else:
        lo = np.array([walk.origin[0] + jj.min() * walk.cell, walk.origin[1] + ii.min() * walk.cell])
        hi = np.array([walk.origin[0] + (jj.max() + 1) * walk.cell, walk.origin[1] + (ii.max() + 1) * walk.cell])
    return SetLayout((), (float(lo[0]), float(lo[1])), (float(hi[0]), float(hi[1])), walk)


def place_subject(
    scene: FileScene, path_xy: np.ndarray, u: float, v: float, clearance: float, radius: float = BODY_RADIUS_M
) -> tuple[np.ndarray, float, SetLayout]:
    """(offset, yaw, layout) as `place_path`, on the first level (largest first) that holds the path."""
    lv = levels(scene.grid, clearance)
    path = np.asarray(path_xy, np.float64)
    extent = float(np.ptp(path, axis=0).max()) if len(path) else 0.0
    tried = []
    for z, area in lv:
        layout = layout_of(walk_map(scene.grid, z, clearance))
        try:
            offset, yaw = place_path(layout, path, u, v, radius)
        except UserError:
            tried.append(f"{area:.1f} m2 at z = {z:.2f} m")
            continue
        return offset, yaw, layout
    where = "; ".join(tried) if tried else "no flat, upward-facing surface with head room"
    raise UserError(
        f"scene {scene.entry_id!r} has no walkable area that holds this motion: its root path spans "
        f"{extent:.1f} m plus a {radius:.2f} m body radius, {clearance:.1f} m head room "
        f"(walkable levels: {where})",
        "use a larger scene (or raise the kit's params.room_tiles / the street's params.street_tiles), "
        "a shorter or slower motion window, or drop the scene from the library "
        "(or lower background.kind_weights.scene)",
    )


def protected_boxes(scene: FileScene, layout: SetLayout, points_xy: np.ndarray, clearance: float) -> set[int]:
    """Object boxes that carry the walkable surface under the given points (never cut away)."""
    walk = layout.walk
    grid = scene.grid
    st = standable(grid, clearance) & (np.abs(grid.z - walk.ground_z) <= WALK_TOL_M)
    i, j, inside = walk.cells_of(np.asarray(points_xy).reshape(-1, 2))
    out = set()
    for a, b in zip(i[inside], j[inside]):
        ks = np.flatnonzero(st[:, a, b])
        out.update(int(grid.owner[k, a, b]) for k in ks if grid.owner[k, a, b] >= 0)
    return out


def cutaway_parts(
    scene: FileScene,
    camera_centres: np.ndarray,
    subject_points: np.ndarray,
    ground_z: float,
    protected: set[int] = frozenset(),
) -> dict[int, set[str]]:
    """{part index: object names to hide}: boxes between a camera centre and a subject point.

    Only the part of a box above knee height over the ground counts (floors, roads and rugs are
    never in the way); floors/tiles and `protected` boxes are kept.
    """
    hidden: dict[int, set[str]] = {}
    frames = range(0, len(camera_centres), max(1, len(camera_centres) // 12))
    size = scene.info.get("size_m")
    for bi, b in enumerate(scene.boxes):
        part = scene.parts[b.part]
        if bi in protected or part.role in ("floor", "tile"):
            continue
        if part.side and size:  # a kit room's wall: gone whole when the camera is ever beyond its side
            cam = np.asarray(camera_centres)
            beyond = {"S": cam[:, 1] < 0, "N": cam[:, 1] > size[1], "W": cam[:, 0] < 0, "E": cam[:, 0] > size[0]}
            if beyond[part.side].any():
                hidden.setdefault(b.part, set()).add(b.name)
                continue
        z0 = max(b.lo[2], ground_z + KNEE_M)
        if b.hi[2] <= z0:
            continue
        lo = np.array([b.lo[0], b.lo[1], z0])
        box = Box(b.name, tuple((lo + b.hi) / 2), tuple(np.maximum(b.hi - lo, 1e-6)), 0.0, (0, 0, 0), "furniture")
        if any(_segment_hits_box(camera_centres[f], p, box) for f in frames for p in subject_points[f]):
            hidden.setdefault(b.part, set()).add(b.name)
    return hidden


def description_objects(scene: FileScene, hidden: dict[int, set[str]]) -> list:
    """`scene_file` objects of the description, one per part (parts with every object hidden are dropped)."""
    from thfm_synth.render.description import Material, Object

    out = []
    for pi, part in enumerate(scene.parts):
        names = {b.name for b in scene.boxes if b.part == pi}
        gone = hidden.get(pi, set()) & names
        if names and gone == names:
            continue
        out.append(
            Object(
                name=part.name,
                kind="scene_file",
                mesh_path=str(part.file),
                pose=part.pose,
                include_objects=list(part.objects) if part.objects is not None else None,
                exclude_objects=sorted(gone),
                materials=[]
                if part.surface is None
                else [
                    Material(name=f"{part.name}_{part.surface[0]}", base_color=part.surface[1], surface=part.surface[0])
                ],
            )
        )
    return out


# ----------------------------------------------------------------------------- as is / street / kit
def finish_scene(
    entry_id: str,
    kind: str,
    parts: list[Part],
    probe: Probe,
    cell: float,
    ground: str,
    plane_z: float | None,
    info: dict,
) -> FileScene:
    boxes, grid = compose(parts, probe, cell)
    if plane_z is None:
        plane_z = float(min(b.lo[2] for b in boxes)) - 0.01
    return FileScene(entry_id, kind, parts, boxes, grid, plane_z, ground, info)
