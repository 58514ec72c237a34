"""The dataset configuration: every knob of a dataset, with unit, range and meaning.

A config is YAML. It may start from a preset (`preset: paper`) and override any
field; unknown fields are errors. Ranges are written `[min, max]` and sampled
uniformly per video unless stated. Weights are relative (they need not sum to 1).
`thfm-synth plan --preset paper --print-config` prints the resolved result.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    field_validator,
    model_serializer,
    model_validator,
)

from thfm_synth.blender import contract

# --------------------------------------------------------------------------- ranges


def span(lo: float, hi: float, unit: str):
    """A `[min, max]` pair that must lie in [lo, hi] and be ordered."""

    def check(v: tuple[float, float]) -> tuple[float, float]:
        a, b = v
        if not (lo <= a <= hi and lo <= b <= hi):
            raise ValueError(f"must lie within [{lo}, {hi}] {unit}, got [{a}, {b}]")
        if a > b:
            raise ValueError(f"min {a} is greater than max {b}")
        return (float(a), float(b))

    return Annotated[tuple[StrictFloat, StrictFloat], AfterValidator(check)]


def weights(*names: str):
    """Relative weights over a fixed set of choices; at least one must be > 0."""

    def check(v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - set(names)
        if unknown:
            raise ValueError(f"unknown choice(s) {sorted(unknown)}; allowed: {list(names)}")
        if any(w < 0 for w in v.values()):
            raise ValueError("weights must be >= 0")
        if not any(w > 0 for w in v.values()):
            raise ValueError("at least one weight must be > 0")
        return {n: float(v.get(n, 0.0)) for n in names}

    return Annotated[dict[str, StrictFloat], AfterValidator(check)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sections

TRAJECTORIES = ("static", "orbit", "dolly_in", "dolly_out", "pan_follow", "handheld")
FRAMINGS = ("full_body", "upper_body", "face")
BACKGROUND_KINDS = ("hdri", "scene", "sky")


class VideoSettings(Section):
    width: StrictInt = Field(
        832, ge=64, le=4096, multiple_of=16, description="image width, pixels (multiple of 16: VAE x8 then 2x2 patches)"
    )
    height: StrictInt = Field(480, ge=64, le=4096, multiple_of=16, description="image height, pixels (multiple of 16)")
    num_frames: StrictInt = Field(
        81, ge=1, le=2001, description="frames per video; 4k+1 so the causal VAE (temporal factor 4) maps it exactly"
    )
    fps: StrictFloat = Field(24.0, gt=0, le=240, description="frames per second of the rendered video, Hz")

    @field_validator("num_frames")
    @classmethod
    def _frames_4k1(cls, v: int) -> int:
        if (v - 1) % 4:
            raise ValueError("must be 4k+1 (1, 5, 9, ..., 81)")
        return v


class RenderSettings(Section):
    """How Cycles renders: the dataset config's `render` section and, resolved per video, the scene
    description's (`thfm_synth.render.description`, saved to scene.json for the Blender child)."""

    engine: Literal["cycles"] = Field("cycles", description="render engine (EEVEE needs a GPU context)")
    samples: StrictInt = Field(16, ge=1, le=4096, description="Cycles samples per pixel for RGB, count")
    denoise: StrictBool = Field(True, description="OpenImageDenoise on RGB (labels are never denoised)")
    denoise_quality: Literal["HIGH", "BALANCED", "FAST"] = Field(
        "HIGH", description="OpenImageDenoise quality (FAST prefilter, albedo + normal guides)"
    )
    device: Literal["cpu", "cuda", "optix"] = Field("cpu", description="Cycles compute device; GPU falls back to CPU")
    max_bounces: StrictInt = Field(4, ge=0, le=64, description="light path bounces, count")
    exposure: Union[Literal["auto"], Annotated[StrictFloat, Field(ge=-16, le=16)]] = Field(
        "auto",
        description="RGB exposure: 'auto' (one gain per video metered to middle grey on the linear "
        "render, like a camera with locked auto-exposure) or fixed stops in [-16, 16]",
    )
    filter_width_px: StrictFloat = Field(
        1.5,
        gt=0,
        le=10,
        description="Blackman-Harris pixel filter width, pixels (also the width of the mask's soft edge)",
    )
    light_tree: StrictBool = Field(True, description="Cycles light tree (many-light sampling)")
    persistent_data: StrictBool = Field(True, description="keep scene data between the frames of a video")
    adaptive_sampling: StrictBool = Field(
        False,
        description="Cycles adaptive sampling of the RGB (the mask then gets its own fixed-sample "
        "view layer, so its coverage stays exactly k/mask_samples)",
    )
    adaptive_threshold: StrictFloat = Field(
        0.01, gt=0, le=1, description="adaptive sampling noise threshold (Cycles'), relative"
    )
    adaptive_min_samples: StrictInt = Field(
        0, ge=0, le=4096, description="adaptive sampling: samples before a pixel may stop, count (0 = Cycles' auto)"
    )
    mask_samples: Optional[StrictInt] = Field(
        None,
        ge=1,
        le=4096,
        description="samples of the soft mask, count (None = `samples`); when it differs from `samples` or "
        "the RGB adapts, the mask is rendered in its own cheap coverage-only view layer",
    )
    denoise_prefilter: Literal["NONE", "FAST", "ACCURATE"] = Field(
        "FAST", description="OpenImageDenoise prefilter of the albedo and normal guides"
    )
    optical_flow: bool = Field(
        False,
        description="also store forward and backward optical flow, exact from geometry "
        "at the pixel centre, with validity (flow/NNNNN.exr)",
    )
    albedo: bool = Field(False, description="also store the linear diffuse colour (albedo/NNNNN.exr)")
    write_linear_exr: bool = Field(
        False, description="also store the scene-linear RGB before exposure (rgb_linear/NNNNN.exr, half)"
    )
    motion_blur_shutter: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="RGB motion blur: shutter open time as a fraction of the frame time "
        "(0 = off); labels stay at the shutter centre",
    )

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # Fields added after datasets were rendered are left out at their defaults, so configs (and
        # their digests, which guard resumed renders) and scene.json stay what they were.
        data = handler(self)
        for key, default in _LATER_RENDER_DEFAULTS.items():
            if data.get(key, default) == default:
                data.pop(key, None)
        return data

    def mask_layer(self) -> bool:
        """The mask is rendered in its own fixed-sample layer (see blender_scripts/render_scene.py)."""
        return contract.mask_layer(self.model_dump())

    def _optional(self) -> tuple[str, ...]:
        return tuple(
            m
            for m, on in (("flow", self.optical_flow), ("albedo", self.albedo), ("rgb_linear", self.write_linear_exr))
            if on
        )

    def render_modalities(self) -> tuple[str, ...]:
        """What one render call makes for this config (blender.contract.RENDER_MODALITIES)."""
        return contract.DEFAULT_RENDER_MODALITIES + tuple(
            m for m in self._optional() if m in contract.RENDER_MODALITIES
        )

    def stored_modalities(self) -> tuple[str, ...]:
        """The files a video folder holds for this config (render/outputs.py formats)."""
        return (
            tuple(m for m in contract.STORED_MODALITIES if m not in contract.OPTIONAL_STORED_MODALITIES)
            + self._optional()
        )


_LATER_RENDER_DEFAULTS = {
    "adaptive_threshold": 0.01,
    "adaptive_min_samples": 0,
    "mask_samples": None,
    "denoise_prefilter": "FAST",
}

BODY_BACKENDS = ("anny", "smplx")


class CharacterSettings(Section):
    """`character:` (or `characters:`). `backend: smplx` replaces the built-in anny bodies by as many
    SMPL-X bodies made from your own SMPL-X model files (SMPL-X licence: non-commercial research only)."""

    mirror_probability: StrictFloat = Field(
        0.5, ge=0, le=1, description="probability a video uses the L/R mirrored motion"
    )
    motion_speed: span(0.5, 2.0, "x") = Field((1.0, 1.0), description="playback speed factor range, x real time")
    backend: Literal["anny", "smplx"] = Field(
        "anny",
        description="body model of the built-in characters: anny (free, default) or smplx (your SMPL-X "
        "model files, smplx_model_dir; SMPL-X licence: non-commercial)",
    )
    smplx_model_dir: str | None = Field(
        None,
        description="folder with your SMPLX_NEUTRAL/MALE/FEMALE.npz (relative to the config file); needed "
        "by backend smplx; nothing is downloaded",
    )
    smplx_gender: Literal["mixed", "neutral", "male", "female"] = Field(
        "mixed", description="SMPL-X bodies: sampled sex (mixed: 46% female, 46% male, 8% neutral) or one model"
    )
    smplx_texture_dir: str | None = Field(
        None, description="SMPL-X bodies: folder of SMPL-X UV textures to use instead of procedural clothes"
    )

    @model_validator(mode="after")
    def _smplx_needs_models(self):
        if self.backend == "smplx" and not self.smplx_model_dir:
            raise ValueError("backend smplx needs smplx_model_dir: the folder of your SMPLX_*.npz model files")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # The SMPL-X settings are left out while the backend is anny, so configs (and their digests,
        # which guard resumed renders) of anny datasets are what they were before the backend existed.
        data = handler(self)
        if self.backend == "anny":
            for key in ("backend", "smplx_model_dir", "smplx_gender", "smplx_texture_dir"):
                data.pop(key, None)
        return data


class PeopleSettings(Section):
    """`people:` several people per video. Person 0 is the planned subject the camera frames; the
    others get their own character and motion (each person slot balanced over the plan like the
    subject's), stand `spacing_m` from the subject at the start, and are placed so that no two
    bodies (discs of `body_radius_m`) ever overlap during the clip; one that does not fit is left
    out and the video records how many stood (metadata.json `people`)."""

    count: tuple[int, int] = Field((1, 1), description="people per video, [min, max] count (1..8), uniform")
    spacing_m: span(0.5, 20.0, "m") = Field(
        (1.2, 3.0), description="distance of each other person from the subject at the first frame, metres"
    )
    body_radius_m: StrictFloat = Field(
        0.35, gt=0.05, le=2.0, description="radius of the disc a body may not share with another, metres"
    )

    @model_validator(mode="after")
    def _count(self):
        a, b = self.count
        if not (1 <= a <= b <= 8):
            raise ValueError(f"count must satisfy 1 <= min <= max <= 8, got [{a}, {b}]")
        return self


class BackgroundSettings(Section):
    kind_weights: weights(*BACKGROUND_KINDS) = Field(
        {"hdri": 0.5, "scene": 0.4, "sky": 0.1},
        description="relative frequency of HDRI / full 3D scene / procedural sky; kinds with no asset are dropped",
    )
    rotation_deg: span(0, 360, "deg") = Field((0.0, 360.0), description="yaw of HDRI/scene about world Z, degrees")


class LightingSettings(Section):
    hdri_strength: span(0.05, 20, "x") = Field((0.6, 1.6), description="HDRI emission multiplier, x")
    sun_elevation_deg: span(-5, 90, "deg") = Field((10.0, 75.0), description="sky sun elevation, degrees")
    sun_azimuth_deg: span(0, 360, "deg") = Field((0.0, 360.0), description="sky sun azimuth, degrees")
    sun_strength: span(0, 20, "x") = Field((0.5, 1.5), description="sky strength multiplier, x")
    extra_lights: tuple[StrictInt, StrictInt] = Field(
        (0, 2), description="number of extra area/point lights, [min, max] count (0..8)"
    )
    light_power_w: span(1, 5000, "W") = Field((50.0, 800.0), description="extra light power, watts")
    light_temperature_k: span(1000, 12000, "K") = Field(
        (2700.0, 7500.0), description="extra light colour temperature, kelvin"
    )
    light_distance_m: span(0.5, 30, "m") = Field(
        (2.0, 6.0), description="extra light distance from the subject, metres"
    )

    @model_validator(mode="after")
    def _lights(self):
        a, b = self.extra_lights
        if not (0 <= a <= b <= 8):
            raise ValueError(f"extra_lights must satisfy 0 <= min <= max <= 8, got [{a}, {b}]")
        return self


class CameraSettings(Section):
    focal_length_mm: span(8, 300, "mm") = Field((24.0, 85.0), description="lens focal length, millimetres")
    sensor_width_mm: StrictFloat = Field(36.0, gt=1, le=100, description="sensor width, millimetres (horizontal fit)")
    framing_weights: weights(*FRAMINGS) = Field(
        {"full_body": 0.6, "upper_body": 0.3, "face": 0.1}, description="subject scale mix (Goliath-style splits)"
    )
    subject_fill: span(0.3, 1.0, "fraction") = Field(
        (0.55, 0.85), description="height of the framed region as a fraction of the image height"
    )
    azimuth_deg: span(-180, 180, "deg") = Field(
        (-180.0, 180.0),
        description="camera yaw around the subject, degrees: 0 = in front of the subject as it "
        "faces at the clip's first frame (face framing: of its face), +90 = its left",
    )
    elevation_deg: span(-30, 60, "deg") = Field(
        (-5.0, 25.0), description="camera pitch above the subject's centre, degrees"
    )
    roll_deg: span(-15, 15, "deg") = Field((-2.0, 2.0), description="camera roll, degrees")
    trajectory_weights: weights(*TRAJECTORIES) = Field(
        {"static": 0.25, "orbit": 0.2, "dolly_in": 0.1, "dolly_out": 0.1, "pan_follow": 0.2, "handheld": 0.15},
        description="camera motion mix",
    )
    orbit_deg: span(0, 180, "deg") = Field((15.0, 90.0), description="orbit sweep over the clip (random sign), degrees")
    dolly_ratio: span(1.0, 3.0, "x") = Field((1.2, 1.8), description="start/end distance ratio of a dolly, x")
    shake_deg: span(0, 5, "deg") = Field((0.2, 1.2), description="handheld shake amplitude, degrees")
    shake_hz: span(0.1, 5, "Hz") = Field((0.5, 2.0), description="handheld shake dominant frequency, Hz")


class AssetSettings(Section):
    builtin: StrictBool = Field(
        True, description="include the built-in library (sky presets, parametric bodies, built-in motions)"
    )
    manifests: tuple[str, ...] = Field((), description="asset manifest files (paths relative to the config file)")


class QaSettings(Section):
    """When a rendered video fails QA (`thfm_synth/render/qa.py`): it is then committed but recorded as
    `qa_failed`, listed by `render --status` and left out of `preprocess` unless asked for."""

    reprojection_px_max: StrictFloat = Field(
        0.01, gt=0, le=100, description="stored 2D joints vs the projected 3D joints, worst joint, pixels"
    )
    visible_joints_in_mask_min: StrictFloat = Field(
        0.95, ge=0, le=1, description="fraction of the visible joints (all frames) within one pixel of mask > 0.5"
    )
    depth_normal_median_deg_max: StrictFloat = Field(
        10.0,
        gt=0,
        le=180,
        description="median angle between normals from depth gradients and the normal pass, degrees "
        "(a low-poly subject's limit is raised to its mesh's shading-vs-facet angle + 2, render/qa.py)",
    )
    silhouette_nearer_min: StrictFloat = Field(
        0.9,
        ge=0,
        le=1,
        description="fraction of silhouette edge pairs where the subject is nearer than its surroundings, worst frame",
    )
    silhouette_on_depth_edge_min: StrictFloat = Field(
        0.5,
        ge=0,
        le=1,
        description="fraction of silhouette edge "
        "pairs on a depth step (the mask "
        "aligned with its subject), worst "
        "frame",
    )
    normal_unit_err_max: StrictFloat = Field(0.01, gt=0, le=1, description="largest | |n| - 1 | on the subject")
    depth_bad_in_subject_max: StrictFloat = Field(
        0.05,
        ge=0,
        le=1,
        description="fraction of the fully covered "
        "subject pixels whose centre ray "
        "found no surface (fine holes such "
        "as hair between its strands), "
        "worst frame",
    )
    subject_min_coverage: StrictFloat = Field(
        0.001,
        ge=0,
        le=1,
        description="soft-mask area, as a fraction of the image, for the person to count as visible in a frame",
    )
    visible_frames_min: StrictFloat = Field(
        0.8, ge=0, le=1, description="fraction of frames in which the person must be visible"
    )
    root_speed_max_mps: StrictFloat = Field(
        15.0, gt=0, le=1000, description="largest pelvis speed, m/s (a sprinter: ~10; playback speed factors scale it)"
    )
    joint_speed_max_mps: StrictFloat = Field(
        50.0, gt=0, le=1000, description="largest speed of any joint, m/s (a pitcher's hand: ~40)"
    )
    joint_height_m: span(-100, 1000, "m") = Field(
        (-0.5, 5.0), description="allowed height of every joint above the ground, metres"
    )
    background_failed_max: StrictFloat = Field(
        0.5,
        ge=0,
        le=1,
        description="fraction of the background (outside "
        "the mask) that may be pure black or "
        "missing-texture magenta, worst frame",
    )
    subject_clipped_max: StrictFloat = Field(
        0.05, ge=0, le=1, description="fraction of the person's pixels at 8-bit white (a blown-out person), worst frame"
    )


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("custom", description="dataset name")
    num_videos: StrictInt = Field(20000, ge=1, le=10_000_000, description="videos in the dataset, count")
    video: VideoSettings = VideoSettings()
    render: RenderSettings = RenderSettings()
    character: CharacterSettings = Field(CharacterSettings(), validation_alias=AliasChoices("character", "characters"))
    background: BackgroundSettings = BackgroundSettings()
    lighting: LightingSettings = LightingSettings()
    camera: CameraSettings = CameraSettings()
    people: PeopleSettings = PeopleSettings()
    assets: AssetSettings = AssetSettings()
    qa: QaSettings = QaSettings()

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        # `people` is left out while it is the one-person default, so configs (and their digests,
        # which guard resumed renders) of one-person datasets are what they were before it existed.
        data = handler(self)
        if self.people == PeopleSettings():
            data.pop("people", None)
        return data
