"""3D scene files and modular kits as backgrounds: probe, assemble, find walkable ground (numpy).

Blender is only a child process here: `blender_scripts/scene_probe.py` imports the file(s)
(safely: `.blend` by library append with Python auto-execution off - see
blender_scripts/scene_import.py) and writes every mesh object's name, world box, triangle count
and a layered height map (downward ray casts per cell, every hit with its face normal).
`probe_scene` runs it once per content sha256 and caches the result under
`CACHE/scenes/<sha256>-p<version>/` (the character cache dir of a render job).

A scene entry becomes a placed set of *parts* - (file, pose, object names), each one
`scene_file` object of the render description - in one of three ways (`load_file_scene`):

* kit (format `kit`, a folder of piece files): `kit_room` assembles a room from the pieces -
  floor tiles over the room, walls on its four sides with a doorway and windows, furniture
  groups with their backs to the walls (sofa + coffee table on a rug + floor lamp, TV cabinet
  with the TV on it, desk + chair, bookcase, potted plant), all from the seed. The kit's unit
  scale makes a floor tile `tile_m` (2 m): the Kenney pieces say "metres" but are 5x too big.
* street palette (a `.blend`/`.fbx`/`.glb` whose scene_type is `street` and which holds separate
  road tiles laid side by side, like the Quaternius Modular Street Pack: 20 tiles of 2x2 units,
  some overlapping, i.e. a palette and not a street): `street_from_tiles` lays a straight street
  of `Straight` tiles with a `4Way` crossing and short side arms, scaled so a tile is `tile_m`
  (12 m: 4 m road, 4 m pavements, 0.3 m kerbs), the pavement top at z = 0.
* as is (anything else, or `params.layout: as_is`): the file's objects where the file puts
  them, times `params.scale` (default 1; file units after the importer's unit conversion).

Walkable ground. The parts' height maps are resampled onto one world grid (`cell_m`, 5 cm
rooms, 10 cm streets) keeping every hit per cell, top first. A hit is *standable* if it faces
up (normal within 20 degrees of +Z) and the next surface above it is at least `clearance`
higher (the subject's height plus margin; coplanar duplicates ignored). Standable heights
form *levels* (2 cm histogram peaks, largest area first). For a level g the walk map marks
cells with a standable surface within 1.5 cm of g; everything else - walls, furniture, rugs,
kerbs, steps, holes, whatever stands in the head room - is not walkable. `layout.place_path` keeps
the whole root path, widened by the body radius, on walkable cells, and the subject's feet
are put at g. Levels are tried largest first; a scene where none fits raises a UserError
naming the scene. Meshes are read as closed solids seen from above: geometry no downward ray
meets (a wall modelled as a single vertical plane, with no thickness) is not an obstacle.

Cutaway (`cutaway_parts`): a part's object whose world box (above knee height over the
ground) is crossed by a camera-to-subject segment is hidden by name (`exclude_objects`), or
its whole part dropped; objects that carry the subject's walkable ground never are. A kit
room's walls go side by side: all walls of a side the camera is ever beyond (a film-set
cutaway), so no wall stump frames the view.

Params of a scene entry (manifest `params`, all optional): layout auto|as_is|street; scale,
objects, exclude (as is); tile_m (street tile / kit floor tile edge, metres); street_tiles
[min, max]; room_tiles [min, max]; pieces {role: file stem} (kit); cell_m; ground (outside
ground material: grass, asphalt, concrete, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from thfm_synth.conventions import yaw_matrix
from thfm_synth.errors import UserError
from thfm_synth.scene.layout import BODY_RADIUS_M, Box, SetLayout, WalkMap, _segment_hits_box, place_path

PROBE_VERSION = 1
PROBE_LAYERS = 6
GRID_LAYERS = 8
MAX_SLOPE_COS = float(np.cos(np.radians(20.0)))
LEVEL_TOL_M = 0.03  # standable heights this close form one level
WALK_TOL_M = 0.015  # walkable cells: surface within this of the level (a 2 cm rug is not floor: no sunk feet)
COPLANAR_M = 0.005
KNEE_M = 0.5
CUTAWAY_SIDE_M = 0.6  # assemble also keeps the line of sight to points this far beside the pelvis clear
MIN_CLEARANCE_M = 2.0
MIN_LEVEL_AREA_M2 = 1.0


# ----------------------------------------------------------------------------- probe
@dataclass(frozen=True)
class ProbedObject:
    file: str  # the probe's file key (path relative to a kit folder, or the file's name)
    name: str
    aabb_min: tuple[float, float, float]
    aabb_max: tuple[float, float, float]
    triangles: int
    materials: tuple[str, ...] = ()


@dataclass
class HeightMap:
    """One object's layered height map in its file frame (see blender_scripts/scene_probe.py)."""

    origin: np.ndarray  # (2,) x0, y0
    cell: float
    z: np.ndarray  # (K, ny, nx) float32, NaN = no hit; top first
    n: np.ndarray  # (K, ny, nx, 3) float32 face normals


@dataclass
class Probe:
    path: Path  # the file, or the kit folder
    kind: str  # file | folder
    files: list[str]
    objects: list[ProbedObject]
    heightmaps: dict[tuple[str, str], HeightMap]
    safety: dict
    cell: float | None
    doc: dict = field(repr=False, default_factory=dict)

    def file_path(self, key: str) -> Path:
        return self.path / key if self.kind == "folder" else self.path

    def objects_of(self, key: str, names=None) -> list[ProbedObject]:
        return [o for o in self.objects if o.file == key and (names is None or o.name in names)]

    def bounds(self, key: str, names=None) -> tuple[np.ndarray, np.ndarray]:
        objs = self.objects_of(key, names)
        if not objs:
            raise UserError(f"{self.file_path(key)} holds no mesh object{' named ' + str(names) if names else ''}",
                            "check the scene file and the object names in the manifest params")
        return (np.min([o.aabb_min for o in objs], axis=0), np.max([o.aabb_max for o in objs], axis=0))


def _run_probe(path: Path, out: Path, cell: float | None, selection: dict | None, timeout: float) -> None:
    from thfm_synth.blender import contract
    from thfm_synth.blender.call import BlenderCrash, BlenderTimeout, call

    out.mkdir(parents=True, exist_ok=True)
    job = contract.SceneProbeJob(path=str(path.resolve()), out=str(out.resolve()), layers=PROBE_LAYERS,
                                 cell=None if cell is None else float(cell), objects=selection)
    try:
        call(contract.SCRIPT_SCENE_PROBE, job, job_dir=out / "_job", timeout=timeout)
    except BlenderTimeout:
        raise UserError(f"{path}: the Blender scene probe took longer than {timeout:.0f} s",
                        "use a smaller scene, or a coarser walkability grid (params.cell_m)") from None
    except BlenderCrash as exc:
        raise UserError(f"{path}: the Blender scene probe failed: {str(exc)[:400]}",
                        "check the file opens in Blender 5.0; run `python3 -m thfm_synth doctor` if Blender itself "
                        "fails") from None


def probe_scene(path: str | os.PathLike, sha256: str, cache_dir: str | os.PathLike, cell: float | None = None,
                objects: dict[str, list[str] | None] | None = None, timeout: float = 1800) -> Probe:
    """Probe a scene file or kit folder (cached per sha256): objects always; height maps with `cell`.

    cell: height-map cell edge in the file's units (after the importer's unit conversion);
    objects: {file key: [names] or None} limits the height maps (None = every object).
    """
    path = Path(path)
    base = Path(cache_dir) / "scenes" / f"{sha256[:32]}-p{PROBE_VERSION}"
    if cell is None:
        key = "objects"
    else:
        sel = json.dumps(objects, sort_keys=True)
        key = f"hm-{float(cell):.6g}-{hashlib.sha1(sel.encode()).hexdigest()[:12]}"
    final = base / key
    if not (final / "probe.json").is_file():
        tmp = base / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            _run_probe(path, tmp, cell, objects, timeout)
            try:
                os.replace(tmp, final)
            except OSError:  # another worker finished first
                if not (final / "probe.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return read_probe(final, path)


def read_probe(folder: str | os.PathLike, path: str | os.PathLike) -> Probe:
    folder = Path(folder)
    doc = json.loads((folder / "probe.json").read_text())
    objects = [ProbedObject(f["file"], o["name"], tuple(o["aabb_min"]), tuple(o["aabb_max"]), int(o["triangles"]),
                            tuple(o.get("materials", ())))
               for f in doc["files"] for o in f["objects"]]
    hms = {}
    hm = doc.get("heightmap")
    if hm:
        with np.load(folder / hm["file"], allow_pickle=False) as z:
            for e in hm["entries"]:
                hms[(e["file"], e["object"])] = HeightMap(np.asarray(e["origin"], np.float64), float(hm["cell"]),
                                                          z[e["key"] + "_z"].astype(np.float32),
                                                          z[e["key"] + "_n"].astype(np.float32))
    return Probe(Path(path), doc["kind"], [f["file"] for f in doc["files"]], objects, hms, doc.get("safety", {}),
                 float(hm["cell"]) if hm else None, doc)


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


def compose(parts: list[Part], probe: Probe, cell: float, layers: int = GRID_LAYERS) -> tuple[list[ObjectBox], LayerGrid]:
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
    nx, ny = (np.ceil((hi - origin) / cell).astype(int) + 1)
    if nx * ny > 40_000_000:
        raise UserError(f"the scene covers {hi[0] - lo[0]:.0f} x {hi[1] - lo[1]:.0f} m, too large for a "
                        f"{cell * 100:.0f} cm walkability grid", "raise params.cell_m or limit params.objects")
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


def levels(grid: LayerGrid, clearance: float, min_area: float = MIN_LEVEL_AREA_M2, max_levels: int = 6
           ) -> list[tuple[float, float]]:
    """Ground levels [(z, area m2)], largest first: peaks of the standable heights (2 cm bins).

    A level must cover `min_area` and a fifth of the largest one (a sofa seat or a table top is
    not ground to stand on)."""
    st = standable(grid, clearance)
    zs = np.sort(grid.z[st].astype(np.float64))
    out = []
    cell_area = grid.cell ** 2
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


def place_subject(scene: FileScene, path_xy: np.ndarray, u: float, v: float, clearance: float,
                  radius: float = BODY_RADIUS_M) -> tuple[np.ndarray, float, SetLayout]:
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
    raise UserError(f"scene {scene.entry_id!r} has no walkable area that holds this motion: its root path spans "
                    f"{extent:.1f} m plus a {radius:.2f} m body radius, {clearance:.1f} m head room "
                    f"(walkable levels: {where})",
                    "use a larger scene (or raise the kit's params.room_tiles / the street's params.street_tiles), "
                    "a shorter or slower motion window, or drop the scene from the library "
                    "(or lower background.kind_weights.scene)")


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


def cutaway_parts(scene: FileScene, camera_centres: np.ndarray, subject_points: np.ndarray, ground_z: float,
                  protected: set[int] = frozenset()) -> dict[int, set[str]]:
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
    from thfm_synth.render.description import Object

    out = []
    for pi, part in enumerate(scene.parts):
        names = {b.name for b in scene.boxes if b.part == pi}
        gone = hidden.get(pi, set()) & names
        if names and gone == names:
            continue
        out.append(Object(name=part.name, kind="scene_file", mesh_path=str(part.file), pose=part.pose,
                          include_objects=list(part.objects) if part.objects is not None else None,
                          exclude_objects=sorted(gone), materials=[]))
    return out


# ----------------------------------------------------------------------------- as is / street / kit
def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def _finish(entry_id: str, kind: str, parts: list[Part], probe: Probe, cell: float, ground: str,
            plane_z: float | None, info: dict) -> FileScene:
    boxes, grid = compose(parts, probe, cell)
    if plane_z is None:
        plane_z = float(min(b.lo[2] for b in boxes)) - 0.01
    return FileScene(entry_id, kind, parts, boxes, grid, plane_z, ground, info)


def as_is(entry_id: str, probe: Probe, heights: Probe, params: dict, cell: float) -> FileScene:
    key = probe.files[0]
    names = [o.name for o in probe.objects_of(key)]
    if params.get("objects"):
        names = [n for n in names if n in set(params["objects"])]
    names = [n for n in names if n not in set(params.get("exclude", ()))]
    if not names:
        raise UserError(f"scene {entry_id!r}: no mesh object left after params.objects/exclude",
                        "name existing objects of the file")
    scale = float(params.get("scale", 1.0))
    pose = np.diag([scale, scale, scale, 1.0])
    parts = [Part("scene", probe.file_path(key), key, pose,
                  None if len(names) == len(probe.objects_of(key)) else tuple(names), "scene")]
    return _finish(entry_id, "as_is", parts, heights, cell, params.get("ground", "concrete"), None,
                   {"layout": "as_is", "scale": scale})


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
    cross = sorted((o for o in objs if STREET_CROSSING.search(o.name)
                    and np.allclose(np.subtract(o.aabb_max, o.aabb_min)[:2], size, rtol=0.05)),
                   key=lambda o: (len(o.name), o.name))
    return straight[0].name, (cross[0].name if cross else None)


def road_axis(hm: HeightMap) -> int:
    """0 if the road of a straight tile runs along file X, 1 along Y (its heights vary across it)."""
    top = np.where(np.isfinite(hm.z[0]), hm.z[0], np.nanmin(hm.z[0]))
    across_y = np.median(top, axis=1).var()  # profile along Y (median over X)
    across_x = np.median(top, axis=0).var()
    return 0 if across_y >= across_x else 1


def street_from_tiles(entry_id: str, probe: Probe, heights: Probe, params: dict, seed: int, scale: float,
                      tiles: tuple[str, str | None], cell: float) -> FileScene:
    key = probe.files[0]
    straight, crossing = tiles
    rng = _rng(seed, 41)
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
        parts.append(Part(f"street_{len(parts):02d}_{name}", probe.file_path(key), key,
                          piece_pose(anchor, scale, (x, y, 0.0), yaw + align), (name,), role))

    for k in range(n):
        tile(crossing if k == c else straight, (k - c if crossing else k - (n - 1) / 2) * tile_m, 0.0, 0.0)
    for sgn, m in zip((1, -1), arms):
        for k in range(1, m + 1):
            tile(straight, 0.0, sgn * k * tile_m, 90.0)
    scene = _finish(entry_id, "street", parts, heights, cell, params.get("ground", "concrete"), 0.0,
                    {"layout": "street", "tile_m": tile_m, "scale": scale, "tiles": n, "crossing": c, "arms": arms,
                     "straight": straight, "crossing_tile": crossing})
    lv = levels(scene.grid, MIN_CLEARANCE_M)
    top = lv[0][0] if lv else 0.0  # the pavement: put it at z = 0, the outside ground just under it
    scene = scene.shift_z(-top)
    scene.ground_plane_z = -0.005
    return scene


KIT_PIECES = {"floor": "floorFull", "wall": "wall", "door": "wallDoorway", "window": "wallWindow",
              "sofa": "loungeSofa", "coffee_table": "tableCoffee", "rug": "rugRectangle",
              "tv_cabinet": "cabinetTelevision", "tv": "televisionModern", "desk": "desk", "chair": "chair",
              "bookcase": "bookcaseOpen", "lamp": "lampSquareFloor", "plant": "pottedPlant"}
SIDES = {"S": 0.0, "E": 90.0, "N": 180.0, "W": 270.0}


@dataclass(frozen=True)
class _Piece:
    key: str
    anchor: np.ndarray  # file units: centre of the AABB in x, y; its bottom in z
    size: np.ndarray  # metres (x along the wall, y depth, z height) after the kit scale


def kit_pieces(probe: Probe, params: dict) -> tuple[dict[str, _Piece], float]:
    """Piece files of a kit by role, and the kit's unit scale (metres per file unit)."""
    stems = {Path(f).stem.lower(): f for f in probe.files}
    names = {**KIT_PIECES, **params.get("pieces", {})}
    found = {role: stems[stem.lower()] for role, stem in names.items() if stem.lower() in stems}
    for role in ("floor", "wall"):
        if role not in found:
            raise UserError(f"kit {probe.path} has no {role} piece ({names[role]}.*)",
                            f"add it, or name the kit's {role} piece in params.pieces")
    flo, fhi = probe.bounds(found["floor"])
    scale = float(params["unit_m"]) if "unit_m" in params else float(params.get("tile_m", 2.0)) / float(
        max(fhi[0] - flo[0], fhi[1] - flo[1]))
    pieces = {}
    for role, key in found.items():
        lo, hi = probe.bounds(key)
        pieces[role] = _Piece(key, np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]),
                              (np.asarray(hi) - np.asarray(lo)) * scale)
    return pieces, scale


def kit_room(entry_id: str, probe: Probe, heights: Probe, params: dict, seed: int, cell: float) -> FileScene:
    """A room assembled from a kit's pieces (see the module doc); pieces face +Y in their files."""
    pieces, scale = kit_pieces(probe, params)
    rng = _rng(seed, 42)
    tile = float(pieces["floor"].size[0])
    lo_t, hi_t = params.get("room_tiles", (3, 5))
    nx, ny = (int(rng.integers(int(lo_t), int(hi_t) + 1)) for _ in range(2))
    width, depth = nx * tile, ny * tile
    floor_top = float(pieces["floor"].size[2])
    wall_t = float(pieces["wall"].size[1])
    length = {"S": width, "N": width, "E": depth, "W": depth}
    parts: list[Part] = []

    def world(side, a, d):
        return {"S": (a, d), "E": (width - d, a), "N": (width - a, depth - d), "W": (d, depth - a)}[side]

    def add(role, side, a, d, z, yaw_extra=0.0, part_role="furniture"):
        p = pieces[role]
        x, y = world(side, a, d)
        yaw = (SIDES[side] + yaw_extra) % 360
        parts.append(Part(f"kit_{len(parts):02d}_{role}", probe.file_path(p.key), p.key,
                          piece_pose(p.anchor, scale, (x, y, z), yaw), None, part_role,
                          side if part_role == "wall" else None))
        return footprint(role, x, y, yaw)

    def footprint(role, x, y, yaw):
        sx, sy = pieces[role].size[:2]
        if round(yaw / 90) % 2:
            sx, sy = sy, sx
        return np.array([x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2])

    for i in range(nx):
        for j in range(ny):
            p = pieces["floor"]
            parts.append(Part(f"kit_{len(parts):02d}_floor", probe.file_path(p.key), p.key,
                              piece_pose(p.anchor, scale, ((i + 0.5) * tile, (j + 0.5) * tile, 0.0), 0.0),
                              None, "floor"))
    segments = [(s, k) for s in SIDES for k in range(int(round(length[s] / tile)))]
    order = rng.permutation(len(segments))
    door = segments[order[0]] if "door" in pieces else None
    windows = set()
    if "window" in pieces:
        n_windows = int(rng.integers(1, 3))
        for idx in order[1:]:
            if len(windows) >= n_windows:
                break
            if segments[idx][0] != (door[0] if door else None):
                windows.add(segments[idx])
    for seg in segments:
        role = "door" if seg == door else "window" if seg in windows else "wall"
        add(role, seg[0], (seg[1] + 0.5) * tile, -wall_t / 2, 0.0, part_role="wall")

    placed: list[np.ndarray] = []
    keep_out = []
    if door:
        a0, a1 = door[1] * tile - 0.2, (door[1] + 1) * tile + 0.2
        c0, c1 = np.array(world(door[0], a0, 0.0)), np.array(world(door[0], a1, 1.4))
        keep_out.append(np.array([*np.minimum(c0, c1), *np.maximum(c0, c1)]))

    def free(rects):
        """Every piece inside the room; all but rugs clear of placed furniture and the doorway."""
        for role, r in rects:
            if r[0] < 0.01 or r[1] < 0.01 or r[2] > width - 0.01 or r[3] > depth - 0.01:
                return False
            if role != "rug" and any(r[0] < q[2] and q[0] < r[2] and r[1] < q[3] and q[1] < r[3]
                                     for q in placed + keep_out):
                return False
        return True

    gap = 0.03

    def group_layout(name):
        """[(role, da along the wall, depth centre, z, yaw_extra)] of a furniture group, or None."""
        if any(r not in pieces for r in {"lounge": ("sofa",), "tv": ("tv_cabinet",), "desk": ("desk",),
                                          "bookcase": ("bookcase",), "plant": ("plant",)}[name]):
            return None
        s = lambda role: pieces[role].size  # noqa: E731
        if name == "lounge":
            w, d = s("sofa")[:2]
            items = [("sofa", 0.0, gap + d / 2, floor_top, 0.0)]
            if "coffee_table" in pieces:
                td = s("coffee_table")[1]
                tz = floor_top + (s("rug")[2] if "rug" in pieces else 0.0)
                items.append(("coffee_table", 0.0, gap + d + 0.45 + td / 2, tz, 0.0))
                if "rug" in pieces:
                    items.append(("rug", 0.0, gap + d + 0.45 + td / 2, floor_top, 0.0))
            if "lamp" in pieces:
                lw, ld = s("lamp")[:2]
                items.append(("lamp", (w / 2 + 0.15 + lw / 2) * (1 if rng.random() < 0.5 else -1),
                              gap + ld / 2, floor_top, 0.0))
            return items
        if name == "tv":
            d = s("tv_cabinet")[1]
            items = [("tv_cabinet", 0.0, gap + d / 2, floor_top, 0.0)]
            if "tv" in pieces:
                items.append(("tv", 0.0, gap + d / 2, floor_top + s("tv_cabinet")[2], 0.0))
            return items
        if name == "desk":
            d = s("desk")[1]
            items = [("desk", 0.0, gap + d / 2, floor_top, 0.0)]
            if "chair" in pieces:
                items.append(("chair", 0.0, gap + d + 0.1 + s("chair")[1] / 2, floor_top, 180.0))
            return items
        role = {"bookcase": "bookcase", "plant": "plant"}[name]
        return [(role, 0.0, gap + s(role)[1] / 2, floor_top, 0.0)]

    groups = ["lounge", "tv", "desk", "bookcase", "plant"]
    groups = groups[:2] + [groups[2 + k] for k in rng.permutation(3)]
    n_groups = int(rng.integers(3, len(groups) + 1))
    placed_groups = []
    for name in groups[:n_groups]:
        items = group_layout(name)
        if not items:
            continue
        for _ in range(40):
            side = list(SIDES)[int(rng.integers(4))]
            rects = []
            span = [abs(da) + pieces[role].size[0] / 2 for role, da, *_ in items]
            half = max(span)
            if length[side] < 2 * half + 0.1:
                continue
            a = float(rng.uniform(half + 0.05, length[side] - half - 0.05))
            for role, da, d, z, yaw_extra in items:
                x, y = world(side, a + da, d)
                rects.append((role, footprint(role, x, y, (SIDES[side] + yaw_extra) % 360)))
            if not free(rects):
                continue
            for role, da, d, z, yaw_extra in items:
                rect = add(role, side, a + da, d, z, yaw_extra, "decor" if role == "rug" else "furniture")
                if role != "rug":
                    placed.append(rect)
            placed_groups.append((name, side))
            break
    return _finish(entry_id, "room", parts, heights, cell, params.get("ground", "grass"), -0.002,
                   {"layout": "kit_room", "unit_m": scale, "tiles": (nx, ny), "size_m": (width, depth),
                    "door": door, "windows": sorted(windows), "groups": placed_groups, "floor_top_m": floor_top})


# ----------------------------------------------------------------------------- entry point
def load_file_scene(entry, path: str | os.PathLike, seed: int, cache_dir: str | os.PathLike) -> FileScene:
    """The placed set of a non-procedural scene entry (`SceneEntry`: format blend/fbx/glb/gltf/kit)."""
    path = Path(path)
    params = dict(entry.params or {})
    objects = probe_scene(path, entry.sha256, cache_dir)
    if entry.format == "kit":
        if objects.kind != "folder":
            raise UserError(f"scene {entry.id!r} is format kit but {path} is not a folder",
                            "point the entry at the kit's folder of piece files")
        cell = float(params.get("cell_m", 0.05))
        _, scale = kit_pieces(objects, params)
        heights = probe_scene(path, entry.sha256, cache_dir, cell=cell / scale)
        return kit_room(entry.id, objects, heights, params, seed, cell)
    if objects.kind != "file":
        raise UserError(f"scene {entry.id!r} ({entry.format}) points at a folder {path}",
                        "use format kit for a folder of pieces, or point at the scene file")
    layout = params.get("layout", "auto")
    tiles = street_palette(objects) if layout in ("auto", "street") else None
    if layout == "street" and tiles is None:
        raise UserError(f"scene {entry.id!r}: params.layout is street but {path.name} has no 'Straight' road tile",
                        "use layout as_is, or a street pack with Straight/4Way tiles")
    key = objects.files[0]
    if tiles is not None and (layout == "street" or entry.scene_type == "street"):
        cell = float(params.get("cell_m", 0.1))
        lo, hi = objects.bounds(key, [tiles[0]])
        scale = float(params.get("tile_m", 12.0)) / float(max(hi[0] - lo[0], hi[1] - lo[1]))
        want = {key: [t for t in tiles if t]}
        heights = probe_scene(path, entry.sha256, cache_dir, cell=cell / scale, objects=want)
        return street_from_tiles(entry.id, objects, heights, params, seed, scale, tiles, cell)
    cell = float(params.get("cell_m", 0.05 if entry.scene_type == "room" else 0.1))
    scale = float(params.get("scale", 1.0))
    heights = probe_scene(path, entry.sha256, cache_dir, cell=cell / scale)
    return as_is(entry.id, objects, heights, params, cell)
