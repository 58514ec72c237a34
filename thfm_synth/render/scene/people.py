"""The other people of a video (config `people`): animated, then placed so no two bodies meet (numpy).

Person 0 is the planned subject: `assemble` places it and the camera frames it. Every other person
(`VideoSpec.others`) is animated like the subject (its own character, motion window, speed,
mirroring), turned by its planned yaw, and put with its first-frame pelvis `distance_m` from the
subject's in the planned bearing. A place is taken only if, at every frame, its pelvis stays at
least two body radii (`people.body_radius_m`) from every person already placed, never comes within
two body radii of the camera's line of sight to the subject's pelvis nor within three of the camera
itself (the subject is the video's subject: nobody walks in front of it), and - in rooms,
streets and scene files - its whole root path lies on free, walkable floor. When the planned place
fails, the bearing is turned in 45 degree steps and the distance grown (x1.5, x2); a person with no
place left is left out, never overlapped: the video records who stood and who was left out, with
the reason (metadata.json `people`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from thfm_synth.assets.library import Library
from thfm_synth.assets.characters.skinning import forward_kinematics, linear_blend_skinning
from thfm_synth.conventions import yaw_matrix
from thfm_synth.plan.spec import PersonSpec, VideoSpec
from thfm_synth.render.scene.animate import AnimatedCharacter, animate
from thfm_synth.render.scene.layout import SetLayout, path_fits

BEARING_STEPS_DEG = tuple(45.0 * k for k in range(8))
DISTANCE_FACTORS = (1.0, 1.5, 2.0)


@dataclass
class PlacedPerson:
    slot: int  # 1, 2, ... (0 is the subject)
    spec: PersonSpec
    anim: AnimatedCharacter
    placement: np.ndarray  # (4, 4) applied to the animated character
    vertices: np.ndarray  # (F, V, 3) float32, posed and placed
    joints_world: dict[str, np.ndarray]  # convention -> (F, K, 3)
    pelvis_xy: np.ndarray  # (F, 2)


def person_video_spec(spec: VideoSpec, person: PersonSpec) -> VideoSpec:
    """The video's spec with this person's character and motion in the subject's place (to animate it)."""
    return dataclasses.replace(
        spec,
        character_id=person.character_id,
        motion_id=person.motion_id,
        motion_start_frame=person.motion_start_frame,
        motion_speed=person.motion_speed,
        mirror=person.mirror,
        others=(),
    )


def posed_vertices(anim: AnimatedCharacter) -> np.ndarray:
    if anim.body is not None:  # SMPL-X: the mesh as the model poses it
        return anim.body.vertices
    clip = anim.clip
    return linear_blend_skinning(
        anim.character, forward_kinematics(anim.character, clip.local_rotations, clip.root_translation)
    )


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:3, :3].T + m[:3, 3]


def clearance(a_xy: np.ndarray, b_xy: np.ndarray) -> float:
    """Smallest distance between two pelvis paths at the same frames, metres."""
    return float(np.linalg.norm(np.asarray(a_xy) - np.asarray(b_xy), axis=1).min())


def sight_clearance(path_xy: np.ndarray, camera_xy: np.ndarray, subject_xy: np.ndarray) -> tuple[float, float]:
    """(smallest distance to the camera-to-subject segment, smallest distance to the camera), metres,
    over the frames; all (F, 2) in the ground plane."""
    p, a, b = (np.asarray(x, np.float64) for x in (path_xy, camera_xy, subject_xy))
    ab = b - a
    s = np.clip(np.einsum("fi,fi->f", p - a, ab) / np.maximum(np.einsum("fi,fi->f", ab, ab), 1e-12), 0.0, 1.0)
    to_line = np.linalg.norm(p - (a + s[:, None] * ab), axis=1)
    return float(to_line.min()), float(np.linalg.norm(p - a, axis=1).min())


def candidate_placements(root_xy: np.ndarray, subject_start_xy: np.ndarray, person: PersonSpec):
    """(placement 4x4 without height, bearing, distance) in the order they are tried."""
    start = np.asarray(root_xy[0], np.float64)
    turn = yaw_matrix(person.yaw_deg)
    for factor in DISTANCE_FACTORS:
        for step in BEARING_STEPS_DEG:
            bearing = person.bearing_deg + step
            d = person.distance_m * factor
            target = np.asarray(subject_start_xy, np.float64) + d * np.array(
                [np.cos(np.radians(bearing)), np.sin(np.radians(bearing))]
            )
            m = np.eye(4)
            m[:3, :3] = turn
            m[:3, 3] = np.array([*target, 0.0]) - turn @ np.array([*start, 0.0])
            yield m, bearing, d


def place_others(
    spec: VideoSpec,
    library: Library,
    cache_dir: str | Path,
    subject_pelvis_xy: np.ndarray,
    layout: SetLayout | None = None,
    walk_ground_z: float | None = None,
    camera_xy: np.ndarray | None = None,
) -> tuple[list[PlacedPerson], list[dict]]:
    """(placed people, a record per planned person: slot, character, motion, placed, where or why not)
    for `spec.others`; see the module doc.

    subject_pelvis_xy: the placed subject's pelvis path (F, 2); layout: the set or scene-file layout
    (None: open ground, anywhere goes); walk_ground_z: the walkable surface height of a scene file
    (feet are put on it), else feet stay on z = 0 where the retargeting put them; camera_xy: the
    camera centre per frame (F, 2) (None: no line-of-sight rule).
    """
    placed: list[PlacedPerson] = []
    records: list[dict] = []
    taken = [np.asarray(subject_pelvis_xy, np.float64)]
    for slot, person in enumerate(spec.others, start=1):
        radius = person.body_radius_m
        anim = animate(person_video_spec(spec, person), library, cache_dir)
        posed = posed_vertices(anim)
        positions, _ = anim.clip.forward_kinematics()
        hips = anim.clip.skeleton.find("Hips")
        pelvis = positions[:, 0 if hips is None else hips, :2]
        chosen = None
        for m, bearing, distance in candidate_placements(pelvis, taken[0][0], person):
            path = _apply(m, np.c_[pelvis, np.zeros(len(pelvis))])[:, :2]
            if min(clearance(path, other) for other in taken) < 2 * radius:
                continue
            if camera_xy is not None:
                to_line, to_camera = sight_clearance(path, camera_xy, taken[0])
                if to_line < 2 * radius or to_camera < 3 * radius:
                    continue
            if layout is not None and not path_fits(layout, path, radius):
                continue
            chosen = (m, bearing, distance, path)
            break
        record = {"slot": slot, "character_id": person.character_id, "motion_id": person.motion_id}
        if chosen is None:
            records.append(
                {
                    **record,
                    "placed": False,
                    "reason": f"no place {2 * radius:.2f} m clear of the others and the camera's view of the subject"
                    + (" on free floor" if layout is not None else ""),
                }
            )
            continue
        m, bearing, distance, path = chosen
        if walk_ground_z is not None:
            m[2, 3] = walk_ground_z - float(posed[..., 2].min())
        vertices = _apply(m, posed).astype(np.float32)
        joints = {name: _apply(m, js.positions) for name, js in anim.joints.items()}
        if anim.body is not None:
            joints.update(anim.body.regressor_joints(_apply(m, posed)[:, : anim.body.num_body_vertices]))
        placed.append(PlacedPerson(slot, person, anim, m, vertices, joints, path))
        taken.append(path)
        records.append(
            {
                **record,
                "placed": True,
                "bearing_deg": round(bearing % 360.0, 3),
                "distance_m": round(distance, 4),
                "min_clearance_m": round(min(clearance(path, other) for other in taken[:-1]), 4),
            }
        )
    return placed, records
