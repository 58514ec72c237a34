"""Furniture from a kit (e.g. the Kenney pack) in a procedural room, in place of its furniture blocks.

A procedural room (scene/layout.py `room`) draws furniture *blocks* against its walls. When the asset
library holds a furniture kit (a scene entry of format `kit`, type room), each block becomes a real
piece of the kit - sofa, bookcase, desk, cabinet, lamp, plant, chair - standing against the same wall,
turned to face into the room, at the block's place along the wall (moved along it if it would
overlap a piece already placed, dropped if it fits nowhere). The piece's own footprint replaces the
block as the obstacle, so the subject's path (`place_path`), the other people and the cutaway keep
clear of what is actually drawn. Pure numpy: the kit's piece sizes come from its probe
(scene/kit_room.py `kit_pieces`), the draw from the video's render seed on its own stream, so rooms
without a kit are unchanged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from thfm_synth.render.scene.layout import Box, SetLayout, scene_rng
from thfm_synth.render.scene.walkable import piece_pose

# kit roles that stand alone against a wall (rugs, TVs and floors are not furniture blocks)
FURNITURE_ROLES = ("sofa", "bookcase", "tv_cabinet", "desk", "lamp", "plant", "chair")
WALL_GAP_M = 0.03
ROOM_KIT_STREAM = 34  # scene_rng(seed, 34): which piece replaces which block
KIT_CHOICE_STREAM = 35  # scene_rng(seed, 35): which kit, when the library holds several


@dataclass(frozen=True)
class KitPiece:
    """One piece file of a kit: where its file is, its anchor (file units: AABB centre in x, y and
    bottom in z), its size in metres (x along the wall, y depth, z height) and the kit's scale."""

    role: str
    file: str
    anchor: tuple[float, float, float]
    size: tuple[float, float, float]
    scale: float


def _side(box: Box, w: float, d: float) -> str:
    """The wall (S/E/N/W) a furniture block of `room` stands against."""
    if round(box.yaw_deg / 90.0) % 2 == 0:
        return "N" if box.center[1] > 0 else "S"
    return "E" if box.center[0] > 0 else "W"


# yaw turning a piece (it faces +Y in its file) away from the wall into the room, as in kit_room.SIDES
_YAW = {"S": 0.0, "E": 90.0, "N": 180.0, "W": 270.0}


def _place(side: str, along: float, piece: KitPiece, w: float, d: float) -> tuple[float, float]:
    depth = piece.size[1] / 2 + WALL_GAP_M
    return {
        "S": (along, -d / 2 + depth),
        "N": (along, d / 2 - depth),
        "E": (w / 2 - depth, along),
        "W": (-w / 2 + depth, along),
    }[side]


def _footprint(x: float, y: float, piece: KitPiece, side: str) -> np.ndarray:
    sx, sy = piece.size[:2]
    if side in ("E", "W"):
        sx, sy = sy, sx
    return np.array([x - sx / 2, y - sy / 2, x + sx / 2, y + sy / 2])


def furnish(layout: SetLayout, room_size: tuple[float, float], pieces: dict[str, KitPiece], seed: int) -> SetLayout:
    """The room with each furniture block replaced by a kit piece (see the module doc)."""
    roles = [r for r in FURNITURE_ROLES if r in pieces]
    if not roles:
        return layout
    w, d = room_size
    rng = scene_rng(seed, ROOM_KIT_STREAM)
    placed: list[np.ndarray] = []
    boxes = []
    for box in layout.boxes:
        if box.role != "furniture":
            boxes.append(box)
            continue
        piece = pieces[roles[int(rng.integers(len(roles)))]]
        side = _side(box, w, d)
        length = w if side in ("N", "S") else d
        half = piece.size[0] / 2
        if length < 2 * half + 0.1:
            continue
        want = box.center[0] if side in ("N", "S") else box.center[1]
        # the block's place first, then places along the wall nearest to it
        tries = np.concatenate([[want], rng.uniform(-length / 2 + half + 0.05, length / 2 - half - 0.05, 24)])
        tries = np.clip(tries, -length / 2 + half + 0.05, length / 2 - half - 0.05)
        tries = tries[np.argsort(np.abs(tries - want), kind="stable")]
        for along in tries:
            x, y = _place(side, float(along), piece, w, d)
            rect = _footprint(x, y, piece, side)
            if any(rect[0] < q[2] and q[0] < rect[2] and rect[1] < q[3] and q[1] < rect[3] for q in placed):
                continue
            placed.append(rect)
            yaw = _YAW[side]
            pose = piece_pose(np.asarray(piece.anchor), piece.scale, (x, y, 0.0), yaw)
            boxes.append(
                dataclasses.replace(
                    box,
                    center=(x, y, piece.size[2] / 2),
                    size=tuple(piece.size),
                    yaw_deg=yaw,
                    surface=None,
                    piece_file=piece.file,
                    piece_pose=tuple(map(tuple, pose)),
                    piece_role=piece.role,
                )
            )
            break
    return dataclasses.replace(layout, boxes=tuple(boxes))


def room_kit(library, background, seed: int):
    """The kit entry that furnishes procedural room `background` (None: keep its blocks).

    A room's manifest params may say `furniture_kit: none` (blocks) or name a kit entry's id; the
    default `auto` takes one of the library's room kits, drawn from the video's render seed."""
    params = getattr(background, "params", None) or {}
    if getattr(background, "format", None) != "procedural" or params.get("generator") != "room":
        return None
    choice = params.get("furniture_kit", "auto")
    if choice in (None, "none"):
        return None
    if choice != "auto":
        return library.entry(choice)
    kits = [e for e in library.by_kind.get("scenes", []) if e.format == "kit" and e.scene_type == "room"]
    if not kits:
        return None
    return kits[int(scene_rng(seed, KIT_CHOICE_STREAM).integers(len(kits)))]


def kit_pieces_of(probe, params: dict) -> dict[str, KitPiece]:
    """The furniture pieces of a probed kit (`file_probe.Probe`) as `KitPiece`s."""
    from thfm_synth.render.scene.kit_room import kit_pieces

    found, scale = kit_pieces(probe, params)
    return {
        role: KitPiece(
            role, str(probe.file_path(p.key)), tuple(map(float, p.anchor)), tuple(map(float, p.size)), float(scale)
        )
        for role, p in found.items()
        if role in FURNITURE_ROLES
    }
