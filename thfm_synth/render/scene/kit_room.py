"""A room assembled from a modular kit of piece files (e.g. the Kenney furniture pack): floor, walls, furniture."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.errors import UserError
from thfm_synth.render.scene.file_probe import Probe
from thfm_synth.render.scene.walkable import FileScene, Part, finish_scene, piece_pose
from thfm_synth.render.scene.layout import scene_rng


KIT_PIECES = {
    "floor": "floorFull",
    "wall": "wall",
    "door": "wallDoorway",
    "window": "wallWindow",
    "sofa": "loungeSofa",
    "coffee_table": "tableCoffee",
    "rug": "rugRectangle",
    "tv_cabinet": "cabinetTelevision",
    "tv": "televisionModern",
    "desk": "desk",
    "chair": "chair",
    "bookcase": "bookcaseOpen",
    "lamp": "lampSquareFloor",
    "plant": "pottedPlant",
}
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
            raise UserError(
                f"kit {probe.path} has no {role} piece ({names[role]}.*)",
                f"add it, or name the kit's {role} piece in params.pieces",
            )
    flo, fhi = probe.bounds(found["floor"])
    scale = (
        float(params["unit_m"])
        if "unit_m" in params
        else float(params.get("tile_m", 2.0)) / float(max(fhi[0] - flo[0], fhi[1] - flo[1]))
    )
    pieces = {}
    for role, key in found.items():
        lo, hi = probe.bounds(key)
        pieces[role] = _Piece(
            key, np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, lo[2]]), (np.asarray(hi) - np.asarray(lo)) * scale
        )
    return pieces, scale


# Finishes of a kit room's floor and walls (procedural PBR surfaces, blender contract.SURFACES, over the
# kit's flat colours), drawn from their own stream (scene_rng(seed, 43)) so no piece moved.
KIT_FLOORS = (
    ("wood", (0.42, 0.27, 0.15)),
    ("wood", (0.62, 0.46, 0.3)),
    ("tiles", (0.7, 0.68, 0.63)),
    ("concrete", (0.5, 0.5, 0.49)),
)
KIT_WALLS = (
    ("plaster", (0.78, 0.76, 0.71)),
    ("plaster", (0.66, 0.7, 0.72)),
    ("plaster", (0.75, 0.66, 0.55)),
    ("brick", (0.55, 0.33, 0.25)),
    ("concrete", (0.6, 0.6, 0.58)),
)


def kit_finishes(seed: int) -> dict[str, tuple]:
    rng = scene_rng(seed, 43)
    return {
        "floor": KIT_FLOORS[int(rng.integers(len(KIT_FLOORS)))],
        "wall": KIT_WALLS[int(rng.integers(len(KIT_WALLS)))],
    }


def kit_room(entry_id: str, probe: Probe, heights: Probe, params: dict, seed: int, cell: float) -> FileScene:
    """A room assembled from a kit's pieces (see the module doc); pieces face +Y in their files."""
    pieces, scale = kit_pieces(probe, params)
    rng = scene_rng(seed, 42)
    finish = kit_finishes(seed)
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
        parts.append(
            Part(
                f"kit_{len(parts):02d}_{role}",
                probe.file_path(p.key),
                p.key,
                piece_pose(p.anchor, scale, (x, y, z), yaw),
                None,
                part_role,
                side if part_role == "wall" else None,
                finish["wall"] if part_role == "wall" else None,
            )
        )
        return footprint(role, x, y, yaw)

    def footprint(role, x, y, yaw):
        sx, sy = pieces[role].size[:2]
        if round(yaw / 90) % 2:
            sx, sy = sy, sx
        return np.array([x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2])

    for i in range(nx):
        for j in range(ny):
            p = pieces["floor"]
            parts.append(
                Part(
                    f"kit_{len(parts):02d}_floor",
                    probe.file_path(p.key),
                    p.key,
                    piece_pose(p.anchor, scale, ((i + 0.5) * tile, (j + 0.5) * tile, 0.0), 0.0),
                    None,
                    "floor",
                    surface=finish["floor"],
                )
            )
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
            if role != "rug" and any(
                r[0] < q[2] and q[0] < r[2] and r[1] < q[3] and q[1] < r[3] for q in placed + keep_out
            ):
                return False
        return True

    gap = 0.03

    def group_layout(name):
        """[(role, da along the wall, depth centre, z, yaw_extra)] of a furniture group, or None."""
        if any(
            r not in pieces
            for r in {
                "lounge": ("sofa",),
                "tv": ("tv_cabinet",),
                "desk": ("desk",),
                "bookcase": ("bookcase",),
                "plant": ("plant",),
            }[name]
        ):
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
                items.append(
                    ("lamp", (w / 2 + 0.15 + lw / 2) * (1 if rng.random() < 0.5 else -1), gap + ld / 2, floor_top, 0.0)
                )
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
    return finish_scene(
        entry_id,
        "room",
        parts,
        heights,
        cell,
        params.get("ground", "grass"),
        -0.002,
        {
            "layout": "kit_room",
            "unit_m": scale,
            "tiles": (nx, ny),
            "size_m": (width, depth),
            "door": door,
            "windows": sorted(windows),
            "groups": placed_groups,
            "floor_top_m": floor_top,
        },
    )
