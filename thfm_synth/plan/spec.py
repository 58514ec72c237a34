"""`VideoSpec`: everything that decides one video, as one immutable, flat record.

A spec is a row of plan.parquet; the renderer needs nothing else (plus the asset
library it names). Angles are degrees, lengths metres, focal lengths millimetres,
times seconds. The motion window is `num_frames` frames of the clip resampled to
fps / motion_speed, starting at `motion_start_frame`.

`camera_azimuth_reference` says what `camera_azimuth_deg` (and the orbit start, the pan and
handheld aim, the lights' azimuths) is measured from:
- "subject" (plan format 2, every plan made now): the subject's own facing after retargeting,
  mirroring and placement - the pelvis/shoulder frame's forward axis at the window's first
  frame; for face framing the face's (nose) direction, followed through the clip by moving
  cameras (scene/camera.py, scene/facing.py);
- "world" (plan format 1; a row without the column reads as this): world -Y, the rest
  facing, whichever way the motion turned the body. Such plans keep rendering as before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class LightSpec:
    type: str  # "area" | "point"
    azimuth_deg: float  # around the subject, 0 = in front of it
    elevation_deg: float
    distance_m: float
    power_w: float
    temperature_k: float
    size_m: float  # area light edge length (0 for point lights)


@dataclass(frozen=True)
class PersonSpec:
    """Another person in the video (config `people`): who, doing what, and where at the first frame -
    `distance_m` from the subject's pelvis, in the direction `bearing_deg` (counter-clockwise from
    world +X), turned by `yaw_deg` about world Z from the way its motion faces."""

    character_id: str
    motion_id: str
    motion_start_frame: int
    motion_speed: float
    mirror: bool
    distance_m: float
    bearing_deg: float
    yaw_deg: float
    body_radius_m: float  # no two bodies' discs of this radius may overlap (config people.body_radius_m)


@dataclass(frozen=True)
class VideoSpec:
    video_index: int
    video_id: str
    plan_seed: int
    render_seed: int  # seeds Cycles and any render-time randomness (handheld noise)
    # video format (copied from the config so a row is self-contained)
    width: int
    height: int
    num_frames: int
    fps: float
    # character and motion
    character_id: str
    motion_id: str
    motion_start_frame: int  # first frame of the window in the clip resampled to fps / motion_speed
    motion_speed: float  # playback speed factor
    mirror: bool  # use the left/right mirrored motion
    # background, lighting
    background_kind: str  # "hdri" | "scene" | "sky"
    background_id: str
    background_rotation_deg: float  # yaw of the HDRI / scene about world Z
    background_strength: float  # HDRI or sky strength multiplier
    sun_elevation_deg: float  # sky sun (sky backgrounds; key-light direction otherwise)
    sun_azimuth_deg: float
    placement_u: float  # where on the walkable ground of a scene the subject stands, [0, 1)
    placement_v: float
    lights: tuple[LightSpec, ...]
    # camera
    camera_trajectory: str  # static | orbit | dolly_in | dolly_out | pan_follow | handheld
    camera_framing: str  # full_body | upper_body | face
    subject_fill: float  # framed region height / image height
    camera_azimuth_deg: float  # 0 = in front of the subject (see camera_azimuth_reference)
    camera_elevation_deg: float
    camera_roll_deg: float
    focal_length_mm: float
    sensor_width_mm: float
    orbit_deg: float  # signed sweep over the clip (orbit only)
    dolly_ratio: float  # start/end distance ratio (dolly only)
    shake_deg: float  # handheld amplitude
    shake_hz: float
    # what camera_azimuth_deg is measured from (module docstring); the default is what a row
    # written before the field existed meant, so old plans are never re-aimed
    camera_azimuth_reference: str = "world"
    # the other people (config `people`); a one-person video has none, and its row has no `others`
    # column at all, so one-person plans are what they were before several people existed
    others: tuple[PersonSpec, ...] = ()

    @property
    def num_people(self) -> int:
        return 1 + len(self.others)

    def to_row(self) -> dict:
        row = dataclasses.asdict(self)
        row["lights"] = [dataclasses.asdict(light) for light in self.lights]
        if self.others:
            row["others"] = [dataclasses.asdict(p) for p in self.others]
        else:
            del row["others"]
        return row

    @classmethod
    def from_row(cls, row: dict) -> "VideoSpec":
        row = dict(row)
        row["lights"] = tuple(LightSpec(**light) for light in row["lights"])
        row["others"] = tuple(PersonSpec(**p) for p in (row.get("others") or ()))
        if row.get("camera_azimuth_reference") is None:  # a plan written before the field existed
            row["camera_azimuth_reference"] = AZIMUTH_FROM_WORLD
        return cls(**row)


AZIMUTH_FROM_SUBJECT = "subject"
AZIMUTH_FROM_WORLD = "world"
AZIMUTH_REFERENCES = (AZIMUTH_FROM_SUBJECT, AZIMUTH_FROM_WORLD)

_ARROW = {int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_()}


def _arrow_fields(cls) -> list[pa.Field]:
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    out = []
    for name, hint in hints.items():
        if name == "lights":
            out.append(pa.field(name, pa.list_(pa.struct(_arrow_fields(LightSpec))), nullable=False))
        elif name == "others":
            out.append(pa.field(name, pa.list_(pa.struct(_arrow_fields(PersonSpec))), nullable=False))
        else:
            out.append(pa.field(name, _ARROW[eval(hint) if isinstance(hint, str) else hint], nullable=False))
    return out


PLAN_SCHEMA_PEOPLE = pa.schema(_arrow_fields(VideoSpec))  # with the `others` column (several people)
PLAN_SCHEMA = pa.schema([f for f in PLAN_SCHEMA_PEOPLE if f.name != "others"])  # one person per video
