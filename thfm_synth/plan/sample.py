"""Per-video random choices: a pure function of (config, library, seed, i, balanced picks)."""

from __future__ import annotations

import numpy as np

from thfm_synth.assets.manifest import MotionEntry
from thfm_synth.config.schema import FRAMINGS, TRAJECTORIES, DatasetConfig
from thfm_synth.assets.motion.window import choose_window_from_profile
from thfm_synth.plan.spec import AZIMUTH_FROM_SUBJECT, LightSpec, PersonSpec, VideoSpec

STREAM_VIDEO = 1  # SeedSequence key of the per-video stream
STREAM_PEOPLE = 2  # how many people a video shows (config `people`)
STREAM_PERSON = 100  # + slot k: person k's own draws


class Draw:
    """Uniform draws from one per-video PCG64 stream (raw doubles only: stable across NumPy)."""

    def __init__(self, seed: int, index: int, stream: int = STREAM_VIDEO):
        self._rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index, stream])))

    def u(self) -> float:
        return float(self._rng.random())

    def span(self, lo_hi: tuple[float, float]) -> float:
        lo, hi = lo_hi
        return lo + (hi - lo) * self.u()

    def integer(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi] inclusive."""
        return lo + min(int(self.u() * (hi - lo + 1)), hi - lo)

    def choice(self, weights: dict[str, float], order: tuple[str, ...]) -> str:
        w = np.array([weights[k] for k in order])
        cdf = np.cumsum(w / w.sum())
        return order[min(int(np.searchsorted(cdf, self.u(), side="right")), len(order) - 1)]


def motion_window_start(entry: MotionEntry, cfg: DatasetConfig, speed: float, u: float) -> int:
    """First frame of the clip's window, counted in the clip resampled to fps / speed.

    With the manifest's activity profile, windows where the actor stands still are
    rarely chosen (see motion/window.py); a clip shorter than the video starts at 0 and
    is played forward and back by the renderer.
    """
    return choose_window_from_profile(
        entry.activity, entry.num_frames, entry.fps, cfg.video.num_frames, u, fps=cfg.video.fps / speed
    )


def sample_video(
    cfg: DatasetConfig,
    seed: int,
    index: int,
    character_id: str,
    motion: MotionEntry,
    background_kind: str,
    background_id: str,
) -> VideoSpec:
    d = Draw(seed, index)
    cam, light, bg = cfg.camera, cfg.lighting, cfg.background
    # The order of draws is part of the plan format: append new draws at the end only.
    speed = d.span(cfg.character.motion_speed)
    start = motion_window_start(motion, cfg, speed, d.u())
    mirror = d.u() < cfg.character.mirror_probability
    rotation = d.span(bg.rotation_deg)
    strength = d.span(light.hdri_strength if background_kind == "hdri" else light.sun_strength)
    sun_el, sun_az = d.span(light.sun_elevation_deg), d.span(light.sun_azimuth_deg)
    place_u, place_v = d.u(), d.u()
    lights = []
    for _ in range(d.integer(*light.extra_lights)):
        kind = "area" if d.u() < 0.6 else "point"
        lights.append(
            LightSpec(
                type=kind,
                azimuth_deg=d.span((-180.0, 180.0)),
                elevation_deg=d.span((10.0, 70.0)),
                distance_m=d.span(light.light_distance_m),
                power_w=d.span(light.light_power_w),
                temperature_k=d.span(light.light_temperature_k),
                size_m=d.span((0.5, 2.0)) if kind == "area" else 0.0,
            )
        )
    trajectory = d.choice(cam.trajectory_weights, TRAJECTORIES)
    framing = d.choice(cam.framing_weights, FRAMINGS)
    fill = d.span(cam.subject_fill)
    azimuth, elevation, roll = d.span(cam.azimuth_deg), d.span(cam.elevation_deg), d.span(cam.roll_deg)
    focal = d.span(cam.focal_length_mm)
    orbit = d.span(cam.orbit_deg) * (1.0 if d.u() < 0.5 else -1.0)
    dolly = d.span(cam.dolly_ratio)
    shake_deg, shake_hz = d.span(cam.shake_deg), d.span(cam.shake_hz)
    render_seed = d.integer(0, 2**31 - 1)
    return VideoSpec(
        video_index=index,
        video_id=f"v{index:06d}",
        plan_seed=seed,
        render_seed=render_seed,
        width=cfg.video.width,
        height=cfg.video.height,
        num_frames=cfg.video.num_frames,
        fps=cfg.video.fps,
        character_id=character_id,
        motion_id=motion.id,
        motion_start_frame=start,
        motion_speed=speed,
        mirror=mirror,
        background_kind=background_kind,
        background_id=background_id,
        background_rotation_deg=rotation,
        background_strength=strength,
        sun_elevation_deg=sun_el,
        sun_azimuth_deg=sun_az,
        placement_u=place_u,
        placement_v=place_v,
        lights=tuple(lights),
        camera_trajectory=trajectory,
        camera_framing=framing,
        subject_fill=fill,
        camera_azimuth_deg=azimuth,
        camera_elevation_deg=elevation,
        camera_roll_deg=roll,
        focal_length_mm=focal,
        sensor_width_mm=cam.sensor_width_mm,
        orbit_deg=orbit if trajectory == "orbit" else 0.0,
        dolly_ratio=dolly if trajectory in ("dolly_in", "dolly_out") else 1.0,
        shake_deg=shake_deg if trajectory == "handheld" else 0.0,
        shake_hz=shake_hz if trajectory == "handheld" else 0.0,
        camera_azimuth_reference=AZIMUTH_FROM_SUBJECT,
    )


def num_people(cfg: DatasetConfig, seed: int, index: int) -> int:
    """How many people video `index` shows (1 unless config `people.count` allows more: no draw then)."""
    lo, hi = cfg.people.count
    return lo if lo == hi else Draw(seed, index, STREAM_PEOPLE).integer(lo, hi)


def sample_person(
    cfg: DatasetConfig, seed: int, index: int, slot: int, character_id: str, motion: MotionEntry
) -> PersonSpec:
    """Person `slot` (>= 1) of video `index`: its own stream, so adding people leaves person 0 as it was."""
    d = Draw(seed, index, STREAM_PERSON + slot)
    speed = d.span(cfg.character.motion_speed)
    start = motion_window_start(motion, cfg, speed, d.u())
    mirror = d.u() < cfg.character.mirror_probability
    return PersonSpec(
        character_id=character_id,
        motion_id=motion.id,
        motion_start_frame=start,
        motion_speed=speed,
        mirror=mirror,
        distance_m=d.span(cfg.people.spacing_m),
        bearing_deg=d.span((0.0, 360.0)),
        yaw_deg=d.span((0.0, 360.0)),
        body_radius_m=cfg.people.body_radius_m,
    )
