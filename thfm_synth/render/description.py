"""A renderer-agnostic scene description (pure Python + numpy, no Blender).

A `SceneDescription` says *what* is in a clip - one camera per frame, objects with poses and
materials, a world background, lights, render settings - and nothing about *how* a renderer
builds it. `blender_scripts/render_scene.py` is the only code that turns it into a Blender
scene; it reads the serialised folder with numpy 1.26 and the standard library, so the folder
format below is the contract between the two environments (`FORMAT_VERSION`).

Conventions (`thfm_synth.conventions`): world metres, Z up; camera OpenCV (x right, y down,
z forward) with intrinsics K (pixels, pixel (0, 0) the top-left corner of the top-left pixel)
and world-to-camera [R|t]; colours are *linear* Rec.709 RGB; angles are degrees.

Folder format (`save` / `load`; no pickle anywhere)::

    scene.json    every scalar and string (the dataclasses below, field for field);
                  array-valued fields hold {"npz": KEY} - a key of arrays.npz
    arrays.npz    float64 camera K (F,3,3), R (F,3,3), t (F,3); object poses (4,4) or (F,4,4);
                  baked vertex animation (F,V,3) float32

Objects
- `sphere` (radius), `plane` (size_x, size_y, lying in the local XY plane, normal +Z) and `box`
  (full extents size_x/y/z, centred) are analytic primitives, placed by `pose` (object-to-world
  4x4: rotation times uniform scale, translation; one matrix or one per frame). Spheres are
  tessellated here (render/meshes.py icosphere, `subdivisions` levels, smooth-shaded; saved
  into arrays.npz); at the
  default 6 levels the surface is within 4e-5 x radius of the true sphere.
- `mesh_npz` is a triangle mesh from an `.npz` (`allow_pickle=False`) with the keys of the
  baked character format (`thfm_synth.assets.characters.format`): required `vertices` (V,3) float32 and
  `faces` (F,3) int; optional `uv` (U,2) + `face_uv` (F,3) texture coordinates, `face_material`
  (F,) indices into the object's `materials`, and the labels `face_part` (F,) ints 1..24,
  `corner_part_uv` (F,3,2) in [0,1] and `vertex_canonical` (V,3) in [0,1]. A character npz is
  therefore usable as is (rest pose, or posed per frame by `vertex_animation_key`: baked (F,V,3)
  object-space vertices in arrays.npz, `pose` applied on top; skinning/armatures are the
  character loader's business, the renderer core only needs the posed vertices). The labels are rendered exactly: part per face
  (never blended between parts), part UV per face corner, canonical coords per vertex.
- `scene_file` is a 3D scene file (`mesh_path`: `.blend`, `.fbx`, `.glb` or `.gltf`) placed by
  `pose` (applied on top of the file's own object transforms; any non-singular affine 4x4, so a
  kit piece or tile may be scaled, e.g. file units -> metres). `include_objects` names the file's
  mesh objects to use (None = all), `exclude_objects` the ones to hide (the cutaway). The renderer
  imports each file once per render job and instances it for every object that names it; the
  file's own materials are used, each given the `fg` AOV node - unless `materials` holds one
  material with a procedural `surface`, which then replaces them (patterns in world metres: a kit
  room's floor and walls, whose pieces are scaled from file units) - and all
  its meshes get this object's `instance` id. Never a subject. `.blend` files are read by library
  append with Python auto-execution off (blender_scripts/scene_import.py): no embedded script runs.
- `subject=True` objects form the soft foreground mask; every object gets an `instance` id
  (>= 1, unique) for the object-index pass.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from thfm_synth.blender import contract
from thfm_synth.blender.contract import ARRAYS_NPZ, SCENE_FORMAT_VERSION as FORMAT_VERSION, SCENE_JSON
from thfm_synth.config.schema import RenderSettings
from thfm_synth.render.meshes import icosphere, sphere_corner_uv

OBJECT_KINDS = ("sphere", "plane", "box", "mesh_npz", "scene_file")
SCENE_FILE_SUFFIXES = (".blend", ".fbx", ".glb", ".gltf")
WORLD_KINDS = ("color", "sky", "hdri")
SKY_MODELS = ("MULTIPLE_SCATTERING", "SINGLE_SCATTERING", "PREETHAM", "HOSEK_WILKIE")
LIGHT_KINDS = ("point", "area", "sun", "spot")
MAX_PART = 24


class DescriptionError(ValueError):
    """An invalid scene description (names the field at fault)."""


@dataclass
class Camera:
    """Per-frame pinhole camera, OpenCV convention. `k` may be (3,3) (constant) or (F,3,3)."""

    k: np.ndarray  # (F,3,3) or (3,3), pixels; zero skew
    r: np.ndarray  # (F,3,3) world-to-camera rotation
    t: np.ndarray  # (F,3) world-to-camera translation, metres
    width: int
    height: int
    clip_start: float = 0.01  # metres; Cycles traces rays, so clipping does not quantise depth
    clip_end: float = 10000.0

    def __post_init__(self) -> None:
        self.r = np.asarray(self.r, np.float64)
        self.t = np.asarray(self.t, np.float64)
        if self.r.ndim == 2:
            self.r = self.r[None]
        if self.t.ndim == 1:
            self.t = self.t[None]
        k = np.asarray(self.k, np.float64)
        self.k = np.broadcast_to(k, (self.r.shape[0], 3, 3)).copy() if k.ndim == 2 else k
        self.width, self.height = int(self.width), int(self.height)

    @property
    def num_frames(self) -> int:
        return int(self.r.shape[0])

    @classmethod
    def from_track(cls, track: Any, **kw) -> "Camera":
        """From a `thfm_synth.render.scene.camera.CameraTrack` (anything with k, r, t, width, height)."""
        return cls(k=track.k, r=track.r, t=track.t, width=track.width, height=track.height, **kw)

    def validate(self) -> None:
        f = self.num_frames
        if f < 1 or self.r.shape != (f, 3, 3) or self.t.shape != (f, 3) or self.k.shape != (f, 3, 3):
            raise DescriptionError(f"camera arrays disagree: k {self.k.shape}, r {self.r.shape}, t {self.t.shape}")
        if self.width < 1 or self.height < 1:
            raise DescriptionError(f"camera size {self.width}x{self.height} must be positive")
        if not (np.all(np.isfinite(self.k)) and np.all(np.isfinite(self.r)) and np.all(np.isfinite(self.t))):
            raise DescriptionError("camera arrays hold non-finite values")
        if (
            np.any(np.abs(self.k[:, 0, 1]) > 1e-9)
            or np.any(self.k[:, 2] != [0.0, 0.0, 1.0])
            or np.any(self.k[:, 1, 0] != 0)
        ):
            raise DescriptionError("camera K must be [[fx,0,cx],[0,fy,cy],[0,0,1]] (no skew)")
        if np.any(self.k[:, 0, 0] <= 0) or np.any(self.k[:, 1, 1] <= 0):
            raise DescriptionError("camera focal lengths must be positive")
        ortho = np.einsum("fij,fkj->fik", self.r, self.r) - np.eye(3)
        if np.abs(ortho).max() > 1e-6 or np.any(np.linalg.det(self.r) < 0):
            raise DescriptionError("camera R must be proper rotations (R R^T = I, det +1)")
        if not 0 < self.clip_start < self.clip_end:
            raise DescriptionError("camera clip range must satisfy 0 < clip_start < clip_end")


@dataclass
class Material:
    """A Principled BSDF. Colours linear RGB; `texture` is an image file (sRGB) on the object's UVs.

    The fields after `checker_scale` carry the character material schema
    (`thfm_synth/assets/characters/materials.py`, which documents each; texture fields here are
    resolved file paths). All have defaults that reproduce the plain material, so older
    descriptions render unchanged. `kind` names the shader family (skin, eyes, hair, ...).
    """

    name: str = "default"
    base_color: tuple[float, float, float] = (0.8, 0.8, 0.8)
    roughness: float = 0.5
    metallic: float = 0.0
    specular: float = 0.5  # Principled "IOR level"
    texture: str | None = None
    checker_color: tuple[float, float, float] | None = None  # procedural checker with base_color
    checker_scale: float = 10.0  # checks per UV unit
    surface: str | None = None  # procedural PBR surface (contract.SURFACES) tinted by base_color
    kind: str = ""
    base_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # multiplies `texture`
    recolor_color: tuple[float, float, float] | None = None  # dye, keeping the texture's luminance
    recolor_amount: float = 0.0
    recolor_luminance: float = 0.18  # the texture's mean luminance where it is used
    hsv: tuple[float, float, float] = (0.0, 1.0, 1.0)  # hue shift (turns), saturation, value factors
    pattern_type: str | None = None  # stripes | checker | dots (printed with pattern_color)
    pattern_color: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pattern_scale: tuple[float, float, float] = (10.0, 10.0, 10.0)  # periods across the canonical box
    pattern_axis: str = "z"  # stripes across x (vertical) or z (horizontal)
    normal_map: str | None = None  # tangent space, non-colour
    normal_strength: float = 1.0
    roughness_map: str | None = None
    roughness_is_gloss: bool = False
    metallic_map: str | None = None
    ior: float = 1.45
    alpha_mode: str = "opaque"  # opaque | mask | blend
    alpha_map: str | None = None
    alpha_channel: str = "a"  # a (the map's alpha) | r
    alpha_cutoff: float = 0.5
    opacity: float = 1.0
    subsurface_weight: float = 0.0
    subsurface_radius: tuple[float, float, float] = (0.0045, 0.0017, 0.0009)  # metres per channel
    sheen_weight: float = 0.0
    sheen_roughness: float = 0.5
    sheen_tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    coat_weight: float = 0.0
    coat_roughness: float = 0.03
    coat_ior: float = 1.5

    TEXTURE_FIELDS = ("texture", "normal_map", "roughness_map", "metallic_map", "alpha_map")


@dataclass
class Object:
    name: str
    kind: str  # sphere | plane | box | mesh_npz | scene_file
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))  # (4,4) or (F,4,4) object-to-world
    radius: float = 0.5  # sphere
    size: tuple[float, float, float] = (1.0, 1.0, 1.0)  # plane: x, y (z unused); box: full extents
    subdivisions: int = 6  # sphere icosphere levels
    mesh_path: str | None = None  # mesh_npz / scene_file: absolute, or relative to the description folder
    vertex_animation_key: str | None = None  # mesh_npz: key of a (F,V,3) object-space array in arrays.npz
    materials: list[Material] = field(default_factory=lambda: [Material()])
    subject: bool = False  # part of the soft foreground mask
    person: int = 0  # with several people: 1, 2, ... (each gets its own coverage AOV and mask); 0 = none
    instance: int = 0  # object-index pass id; 0 = assigned on validation (1, 2, ... in order)
    cast_shadow: bool = True
    shade_smooth: bool = True
    # Cycles shadow catcher: in RGB the object shows the world behind it (e.g. an HDRI's own
    # ground) with the shadows and occlusion it receives; its labels (depth, normal, id) stay.
    shadow_catcher: bool = False
    include_objects: list[str] | None = None  # scene_file: the file's mesh objects to use (None = all)
    exclude_objects: list[str] = field(default_factory=list)  # scene_file: objects hidden (cutaway)

    def __post_init__(self) -> None:
        self.pose = np.asarray(self.pose, np.float64)

    def pose_at(self, frame: int) -> np.ndarray:
        return self.pose if self.pose.ndim == 2 else self.pose[frame]


@dataclass
class World:
    """Background: uniform colour, a procedural sky, or an equirectangular HDRI."""

    kind: str = "color"
    color: tuple[float, float, float] = (0.05, 0.05, 0.05)
    strength: float = 1.0
    hdri_path: str | None = None
    rotation_deg: float = 0.0  # yaw of the HDRI about world Z (counter-clockwise seen from above)
    sky_model: str = "MULTIPLE_SCATTERING"
    sun_elevation_deg: float = 45.0
    sun_azimuth_deg: float = 0.0  # direction to the sun, from +X towards +Y (counter-clockwise from above)
    sun_disc: bool = True
    sun_size_deg: float = 0.545
    sun_intensity: float = 1.0
    altitude_m: float = 0.0
    air_density: float = 1.0
    aerosol_density: float = 1.0
    ozone_density: float = 1.0
    turbidity: float = 2.2  # PREETHAM / HOSEK_WILKIE
    ground_albedo: float = 0.3


@dataclass
class Light:
    kind: str  # point | area | sun | spot
    position: tuple[float, float, float] = (0.0, 0.0, 3.0)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)  # aimed at (area, sun, spot)
    power_w: float = 100.0  # watts (point/area/spot); W/m^2 irradiance for sun
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    temperature_k: float | None = None  # blackbody colour (multiplies `color`) when set
    size_m: float = 0.1  # area edge / point & spot radius; sun: angular diameter in degrees
    spot_angle_deg: float = 45.0
    cast_shadow: bool = True


@dataclass
class SceneDescription:
    camera: Camera
    objects: list[Object] = field(default_factory=list)
    world: World = field(default_factory=World)
    lights: list[Light] = field(default_factory=list)
    render: RenderSettings = field(default_factory=RenderSettings)  # the config's type (one for both)
    seed: int = 0  # Cycles seed of frame i is derived from (seed, i)
    fps: float = 24.0
    extra_arrays: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. vertex animations
    meta: dict = field(default_factory=dict)  # free JSON metadata (video id, spec row, ...)
    source: Path | None = field(default=None, repr=False, compare=False)  # folder it was loaded from

    def _rebase(self, folder: Path) -> None:
        """Relative file paths that exist only beside the loaded copy become absolute."""
        if self.source is None or Path(self.source).resolve() == folder.resolve():
            return

        def fix(p: str | None) -> str | None:
            if not p or Path(p).is_absolute() or (folder / p).exists() or not (Path(self.source) / p).exists():
                return p
            return str((Path(self.source) / p).resolve())

        for o in self.objects:
            o.mesh_path = fix(o.mesh_path)
            for m in o.materials:
                for key in Material.TEXTURE_FIELDS:
                    setattr(m, key, fix(getattr(m, key)))
        self.world.hdri_path = fix(self.world.hdri_path)

    @property
    def num_frames(self) -> int:
        return self.camera.num_frames

    @property
    def subjects(self) -> list[Object]:
        return [o for o in self.objects if o.subject]

    def validate(self, root: str | os.PathLike | None = None) -> "SceneDescription":
        """Check every field; assign instance ids. `root` resolves relative mesh paths."""
        self.camera.validate()
        f = self.num_frames
        names = [o.name for o in self.objects]
        if len(set(names)) != len(names):
            raise DescriptionError(f"object names must be unique: {names}")
        used = {o.instance for o in self.objects if o.instance}
        if any(o.instance < 0 or o.instance > 65535 for o in self.objects):
            raise DescriptionError("object instance ids must be in 0..65535")
        if len(used) != sum(1 for o in self.objects if o.instance):
            raise DescriptionError("object instance ids must be unique")
        nxt = 1
        for o in self.objects:
            if o.kind not in OBJECT_KINDS:
                raise DescriptionError(f"object {o.name}: kind {o.kind!r} not in {OBJECT_KINDS}")
            if o.pose.shape not in ((4, 4), (f, 4, 4)):
                raise DescriptionError(f"object {o.name}: pose must be (4,4) or ({f},4,4), got {o.pose.shape}")
            if not np.all(np.isfinite(o.pose)):
                raise DescriptionError(f"object {o.name}: pose holds non-finite values")
            if not o.materials and o.kind != "scene_file":
                raise DescriptionError(f"object {o.name}: needs at least one material")
            for m in o.materials:
                if m.surface is not None and m.surface not in contract.SURFACES:
                    raise DescriptionError(
                        f"object {o.name}: material {m.name} surface {m.surface!r} is not one of {contract.SURFACES}"
                    )
            if o.kind == "sphere" and not (o.radius > 0 and 0 <= o.subdivisions <= 8):
                raise DescriptionError(f"object {o.name}: sphere needs radius > 0 and 0 <= subdivisions <= 8")
            if o.kind in ("plane", "box") and min(o.size[: 2 if o.kind == "plane" else 3]) <= 0:
                raise DescriptionError(f"object {o.name}: sizes must be positive")
            if o.kind == "mesh_npz":
                if not o.mesh_path:
                    raise DescriptionError(f"object {o.name}: mesh_npz needs mesh_path")
                path = resolve_path(o.mesh_path, root)
                if root is not None and not path.is_file():
                    raise DescriptionError(f"object {o.name}: mesh file {path} not found")
                if o.vertex_animation_key is not None:
                    arr = self.extra_arrays.get(o.vertex_animation_key)
                    if arr is None or arr.ndim != 3 or arr.shape[0] != f or arr.shape[2] != 3:
                        raise DescriptionError(
                            f"object {o.name}: vertex animation {o.vertex_animation_key!r} must be an ({f},V,3) array"
                        )
            elif o.vertex_animation_key is not None:
                raise DescriptionError(f"object {o.name}: only mesh_npz objects take a vertex animation")
            if o.person and (not o.subject or not 1 <= o.person <= contract.MAX_PEOPLE):
                raise DescriptionError(
                    f"object {o.name}: person {o.person} must be a subject numbered 1..{contract.MAX_PEOPLE}"
                )
            if o.kind == "scene_file":
                self._validate_scene_file(o, root)
            elif o.include_objects is not None or o.exclude_objects:
                raise DescriptionError(f"object {o.name}: include_objects/exclude_objects are for scene_file objects")
            if not o.instance:
                while nxt in used:
                    nxt += 1
                o.instance = nxt
                used.add(nxt)
        w = self.world
        if w.kind not in WORLD_KINDS:
            raise DescriptionError(f"world kind {w.kind!r} not in {WORLD_KINDS}")
        if w.kind == "hdri" and not w.hdri_path:
            raise DescriptionError("world kind hdri needs hdri_path")
        if w.kind == "sky" and w.sky_model not in SKY_MODELS:
            raise DescriptionError(f"sky model {w.sky_model!r} not in {SKY_MODELS}")
        for light in self.lights:
            if light.kind not in LIGHT_KINDS:
                raise DescriptionError(f"light kind {light.kind!r} not in {LIGHT_KINDS}")
        if not isinstance(self.render, RenderSettings):
            raise DescriptionError("render must be a thfm_synth.config.schema.RenderSettings")
        try:  # an unvalidated copy (model_construct) is checked here, not in the Blender child
            RenderSettings.model_validate(self.render.model_dump())
        except ValueError as exc:
            raise DescriptionError(f"render settings: {' '.join(str(exc).split())}") from None
        if not 0 <= int(self.seed) < 2**31:
            raise DescriptionError("render seed must be in [0, 2^31)")
        return self

    @staticmethod
    def _validate_scene_file(o: "Object", root) -> None:
        if not o.mesh_path:
            raise DescriptionError(f"object {o.name}: scene_file needs mesh_path")
        if Path(o.mesh_path).suffix.lower() not in SCENE_FILE_SUFFIXES:
            raise DescriptionError(f"object {o.name}: scene file {o.mesh_path} is not one of {SCENE_FILE_SUFFIXES}")
        path = resolve_path(o.mesh_path, root)
        if root is not None and not path.is_file():
            raise DescriptionError(f"object {o.name}: scene file {path} not found")
        if o.subject:
            raise DescriptionError(f"object {o.name}: a scene_file cannot be a subject (it carries no labels)")
        poses = o.pose.reshape(-1, 4, 4)
        if np.any(np.abs(poses[:, 3] - [0, 0, 0, 1]) > 1e-9) or np.any(np.abs(np.linalg.det(poses[:, :3, :3])) < 1e-12):
            raise DescriptionError(f"object {o.name}: scene_file pose must be an affine, non-singular 4x4")
        for key in ("include_objects", "exclude_objects"):
            names = getattr(o, key)
            if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
                raise DescriptionError(f"object {o.name}: {key} must be a list of object names")

    # ------------------------------------------------------------------ serialisation
    def save(self, folder: str | os.PathLike) -> Path:
        """Write scene.json + arrays.npz into `folder` (created)."""
        folder = Path(folder)
        self._rebase(folder)
        self.validate(root=folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "camera_k": self.camera.k,
            "camera_r": self.camera.r,
            "camera_t": self.camera.t,
        }
        cam = {
            "k": {"npz": "camera_k"},
            "r": {"npz": "camera_r"},
            "t": {"npz": "camera_t"},
            "width": self.camera.width,
            "height": self.camera.height,
            "clip_start": self.camera.clip_start,
            "clip_end": self.camera.clip_end,
        }
        objects = []
        for i, o in enumerate(self.objects):
            d = _plain(o)
            key = f"object_{i}_pose"
            arrays[key] = o.pose
            d["pose"] = {"npz": key}
            objects.append(d)
            if o.kind == "sphere":  # the renderer builds exactly this tessellation (unit sphere)
                v, f = icosphere(o.subdivisions)
                arrays[f"object_{i}_sphere_vertices"] = v
                arrays[f"object_{i}_sphere_faces"] = f
                arrays[f"object_{i}_sphere_corner_uv"] = sphere_corner_uv(v, f)
        for key, arr in self.extra_arrays.items():
            if key in arrays or not key.isidentifier():
                raise DescriptionError(f"extra array key {key!r} is reserved or not an identifier")
            arrays[key] = np.asarray(arr)
        doc = {
            "format_version": FORMAT_VERSION,
            "num_frames": self.num_frames,
            "fps": self.fps,
            "camera": cam,
            "objects": objects,
            "world": _plain(self.world),
            "lights": [_plain(light) for light in self.lights],
            "render": self.render.model_dump(mode="json"),
            "seed": int(self.seed),
            "extra_arrays": sorted(self.extra_arrays),
            "meta": self.meta,
        }
        tmp_json = folder / f".{SCENE_JSON}.tmp"
        tmp_json.write_text(json.dumps(doc, indent=1, allow_nan=False))
        with open(folder / f".{ARRAYS_NPZ}.tmp", "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(folder / f".{ARRAYS_NPZ}.tmp", folder / ARRAYS_NPZ)
        os.replace(tmp_json, folder / SCENE_JSON)
        self.source = folder
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "SceneDescription":
        folder = Path(folder)
        doc = json.loads((folder / SCENE_JSON).read_text())
        if doc.get("format_version") != FORMAT_VERSION:
            raise DescriptionError(
                f"{folder / SCENE_JSON}: format_version {doc.get('format_version')} is not {FORMAT_VERSION}"
            )
        with np.load(folder / ARRAYS_NPZ, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        c = doc["camera"]
        camera = Camera(
            k=arrays[c["k"]["npz"]],
            r=arrays[c["r"]["npz"]],
            t=arrays[c["t"]["npz"]],
            width=c["width"],
            height=c["height"],
            clip_start=c["clip_start"],
            clip_end=c["clip_end"],
        )
        objects = []
        for d in doc["objects"]:
            d = dict(d)
            d["pose"] = arrays[d["pose"]["npz"]]
            d["materials"] = [Material(**_tuples(Material, m)) for m in d["materials"]]
            objects.append(Object(**_tuples(Object, d)))
        return cls(
            camera=camera,
            objects=objects,
            world=World(**_tuples(World, doc["world"])),
            lights=[Light(**_tuples(Light, light)) for light in doc["lights"]],
            render=RenderSettings(**doc["render"]),
            seed=int(doc["seed"]),
            fps=doc["fps"],
            extra_arrays={k: arrays[k] for k in doc["extra_arrays"]},
            meta=doc["meta"],
            source=folder,
        )


def resolve_path(path: str, root: str | os.PathLike | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or root is None else Path(root) / p


def _plain(obj: Any) -> dict:
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            continue  # stored in arrays.npz by the caller
        if isinstance(v, list):
            v = [_plain(x) if dataclasses.is_dataclass(x) else x for x in v]
        elif isinstance(v, tuple):
            v = [float(x) for x in v]
        elif isinstance(v, float) and not math.isfinite(v):
            raise DescriptionError(f"{type(obj).__name__}.{f.name} is not finite")
        out[f.name] = v
    return out


def _tuples(cls: type, d: dict) -> dict:
    """JSON lists back to the tuples the dataclass declares."""
    d = dict(d)
    for f in dataclasses.fields(cls):
        if f.name in d and isinstance(d[f.name], list) and "tuple" in str(f.type):
            d[f.name] = tuple(d[f.name])
    return d


# ---------------------------------------------------------------------- helpers
def pose_matrix(rotation: np.ndarray | None = None, translation=(0.0, 0.0, 0.0), scale: float = 1.0) -> np.ndarray:
    """Object-to-world 4x4 from a 3x3 rotation, a translation and a uniform scale."""
    m = np.eye(4)
    m[:3, :3] = (np.eye(3) if rotation is None else np.asarray(rotation, np.float64)) * float(scale)
    m[:3, 3] = translation
    return m


def blackbody_rgb(kelvin: float) -> tuple[float, float, float]:
    """Approximate linear-RGB colour of a blackbody, normalised to max 1 (for renderers without one).

    Blender applies `Light.temperature_k` natively; this is for other consumers and previews.
    """
    t = float(np.clip(kelvin, 1000.0, 40000.0)) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * math.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * math.log(t - 10) - 305.0447927307)
    srgb = np.clip(np.array([r, g, b]) / 255.0, 0, 1)
    lin = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    lin = lin / lin.max()
    return tuple(float(x) for x in lin)
