"""3D scene files and modular kits as backgrounds: probe, assemble, find walkable ground (numpy).

This module is the entry point (`load_file_scene`) and the public API; the work is in
`file_probe` (the Blender probe and its cache), `kit_room` (rooms from kit pieces), `street`
(streets from road tiles) and `walkable` (the height grid, levels, placement and cutaway).

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

import os
from pathlib import Path

import numpy as np

from thfm_synth.errors import UserError
from thfm_synth.render.scene.file_probe import (  # noqa: F401 - re-exported
    PROBE_LAYERS,
    PROBE_VERSION,
    HeightMap,
    Probe,
    ProbedObject,
    probe_scene,
    read_probe,
)
from thfm_synth.render.scene.kit_room import KIT_PIECES, kit_pieces, kit_room  # noqa: F401
from thfm_synth.render.scene.street import road_axis, street_from_tiles, street_palette  # noqa: F401
from thfm_synth.render.scene.walkable import (  # noqa: F401 - the public API of file scenes lives here
    CUTAWAY_SIDE_M,
    MIN_CLEARANCE_M,
    WALK_TOL_M,
    FileScene,
    LayerGrid,
    ObjectBox,
    Part,
    compose,
    cutaway_parts,
    description_objects,
    finish_scene,
    levels,
    place_subject,
    protected_boxes,
    standable,
    walk_map,
)


def as_is(entry_id: str, probe: Probe, heights: Probe, params: dict, cell: float) -> FileScene:
    key = probe.files[0]
    names = [o.name for o in probe.objects_of(key)]
    if params.get("objects"):
        names = [n for n in names if n in set(params["objects"])]
    names = [n for n in names if n not in set(params.get("exclude", ()))]
    if not names:
        raise UserError(
            f"scene {entry_id!r}: no mesh object left after params.objects/exclude", "name existing objects of the file"
        )
    scale = float(params.get("scale", 1.0))
    pose = np.diag([scale, scale, scale, 1.0])
    parts = [
        Part(
            "scene",
            probe.file_path(key),
            key,
            pose,
            None if len(names) == len(probe.objects_of(key)) else tuple(names),
            "scene",
        )
    ]
    return finish_scene(
        entry_id,
        "as_is",
        parts,
        heights,
        cell,
        params.get("ground", "concrete"),
        None,
        {"layout": "as_is", "scale": scale},
    )


def load_file_scene(entry, path: str | os.PathLike, seed: int, cache_dir: str | os.PathLike) -> FileScene:
    """The placed set of a non-procedural scene entry (`SceneEntry`: format blend/fbx/glb/gltf/kit)."""
    path = Path(path)
    params = dict(entry.params or {})
    objects = probe_scene(path, entry.sha256, cache_dir)
    if entry.format == "kit":
        if objects.kind != "folder":
            raise UserError(
                f"scene {entry.id!r} is format kit but {path} is not a folder",
                "point the entry at the kit's folder of piece files",
            )
        cell = float(params.get("cell_m", 0.05))
        _, scale = kit_pieces(objects, params)
        heights = probe_scene(path, entry.sha256, cache_dir, cell=cell / scale)
        return kit_room(entry.id, objects, heights, params, seed, cell)
    if objects.kind != "file":
        raise UserError(
            f"scene {entry.id!r} ({entry.format}) points at a folder {path}",
            "use format kit for a folder of pieces, or point at the scene file",
        )
    layout = params.get("layout", "auto")
    tiles = street_palette(objects) if layout in ("auto", "street") else None
    if layout == "street" and tiles is None:
        raise UserError(
            f"scene {entry.id!r}: params.layout is street but {path.name} has no 'Straight' road tile",
            "use layout as_is, or a street pack with Straight/4Way tiles",
        )
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
