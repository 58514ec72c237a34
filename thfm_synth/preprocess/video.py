"""One rendered video -> model-ready clips, targets, keypoints and records (no Ray here).

Per video (a folder of render/outputs.py files plus annotations.npz, metadata.json and DONE):

1. frames: `frame_indices` picks, for each of the model's `num_frames` at its `fps`, the source
   frame nearest in time (a video with too few frames is a one-line UserError naming it);
2. geometry: `cover_crop` scales the source to cover the model resolution and centre-crops it.
   Images that are area integrals - RGB and the soft mask (coverage) - use the exact area filter;
   point-sampled labels - depth, normals, part/UV, canonical (all from the pixel-centre ray, see
   render/outputs.py) - use nearest neighbour, so no label is a blend of two surfaces or parts.
   K gets the same scale and crop, so `K' [R|t] X` lands on the resized 2D joints exactly;
3. targets: 3-channel videos in [-1, 1] and validity masks for every task of model/tasks.py
   (preprocess/targets.py; the human-only tasks keep the pixels whose centre ray hits the subject);
   keypoints: 2D normalised to the output image ([0, 1] inside it), 3D in the OpenCV camera frame
   (metres), visibility codes (a joint the crop cuts out becomes 1 = outside);
4. latents: the codec's mean for the RGB clip and for each dense target, stored as `latent_dtype`;
   with `pixel_targets` (the default) also the pixel ground truth at model resolution and its
   validity mask (metric depth for the depth tasks), compressed (model/pixels.py) - what stage 2
   is supervised with; off, the records are as small (and as cheap to make) as for stage 1 only;
5. records: one per (video, task), with the sha256 (from the video's DONE file) of every source
   file the record was made from and the codec's vae_id.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from model import pixels as px
from model.tasks import DENSE_TASKS, TASK_MODALITY, TASKS
from thfm_synth.digests import file_sha256
from thfm_synth.errors import UserError
from thfm_synth.preprocess import geometry as geo
from thfm_synth.preprocess import targets as tg
from thfm_synth.render import outputs
from thfm_synth.shards import body_params
from thfm_synth.shards.record import Record
from thfm_synth.render.video.annotations import CONVENTIONS, read_annotations, read_video_metadata

OUTSIDE = 1  # visibility code (scene/visibility.py)
HEADER_BYTES = 2048  # record header + padding, for size estimates


@dataclass(frozen=True)
class PreprocessConfig:
    """What the model needs; everything that changes a record's bytes is in here."""

    num_frames: int = 81
    fps: float = 24.0
    width: int = 832
    height: int = 480
    tasks: tuple[str, ...] = TASKS
    keypoint_convention: str = "smpl24"
    latent_dtype: str = "float16"
    pixel_targets: bool = True  # store pixel ground truth + validity per dense record (stage 2 needs them)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "fps", float(self.fps))
        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise UserError(f"unknown or repeated tasks {bad or list(self.tasks)}", f"choose from {', '.join(TASKS)}")
        if self.num_frames < 1 or (self.num_frames - 1) % 4:
            lo = 1 + max(self.num_frames - 1, 0) // 4 * 4
            raise UserError(
                f"num_frames={self.num_frames}: the video codec needs 1 + 4k frames",
                f"use e.g. {lo} or {lo + 4} (81 -> 21 latent frames)",
            )
        if self.width % 8 or self.height % 8 or self.width < 8 or self.height < 8:
            raise UserError(
                f"resolution {self.width}x{self.height}: width and height must be multiples of 8", "use e.g. 832x480"
            )
        if self.fps <= 0:
            raise UserError(f"fps={self.fps} must be positive")
        if self.keypoint_convention not in CONVENTIONS:
            raise UserError(
                f"keypoint convention {self.keypoint_convention!r} unknown", f"choose from {', '.join(CONVENTIONS)}"
            )
        if self.latent_dtype not in ("float16", "float32"):
            raise UserError(f"latent dtype {self.latent_dtype!r} unsupported", "use float16 or float32")

    @property
    def dense_tasks(self) -> tuple[str, ...]:
        return tuple(t for t in self.tasks if t in DENSE_TASKS)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d


@dataclass(frozen=True)
class VideoSource:
    """A finished rendered video folder (cheap facts from its metadata.json)."""

    video_id: str
    path: str
    num_frames: int
    fps: float
    width: int
    height: int

    @classmethod
    def open(cls, path: str | Path) -> "VideoSource":
        path = Path(path)
        meta = read_video_metadata(path)
        spec = meta["spec"]
        frames = int(meta.get("stats", {}).get("frames", spec["num_frames"]))
        return cls(
            str(spec.get("video_id", path.name)),
            str(path),
            frames,
            float(spec["fps"]),
            int(spec["width"]),
            int(spec["height"]),
        )

    def frame_indices(self, cfg: PreprocessConfig) -> np.ndarray:
        return geo.frame_indices(
            self.num_frames, self.fps, cfg.num_frames, cfg.fps, what=f"video {self.video_id} ({self.path})"
        )


def verify_sources(video: VideoSource, names: list[str], done: dict[str, str]) -> None:
    """Re-hash the files a video's records are made from against the digests its DONE file recorded
    when the farm committed it: an edited, replaced or damaged file fails the video, naming it."""
    root = Path(video.path)
    for name in names:
        path = root / name
        if not path.is_file():
            continue  # reported by the reader, naming the missing frame
        expected = done.get(name)
        if expected is None:
            raise UserError(
                f"video {video.video_id}: {path} is not listed in its DONE file",
                f"re-render the video (delete {root} and rerun `thfm-synth render`)",
            )
        actual = file_sha256(path)
        if actual != expected:
            raise UserError(
                f"video {video.video_id}: {path} changed after it was rendered (DONE sha256 {expected}, file {actual})",
                f"restore the file, or re-render the video (delete {root} and rerun `thfm-synth render`)",
            )


def source_checksums(video: VideoSource) -> dict[str, str]:
    """{relative file: sha256}: the DONE file's (written by the farm when the video was committed),
    or computed now for a folder without one (`render-one` output)."""
    done = Path(video.path) / "DONE"
    if done.is_file():
        return dict(json.loads(done.read_text()).get("files", {}))
    root = Path(video.path)
    return {
        p.relative_to(root).as_posix(): file_sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and not p.name.startswith(("_", "."))
        and p.suffix in (".png", ".webp", ".exr", ".tlz", ".npz", ".json")
    }


@dataclass
class Clip:
    """A video resampled to the model's frames and resolution: cameras and keypoints done, images lazy."""

    video: VideoSource
    cfg: PreprocessConfig
    indices: np.ndarray  # (T,) source frame of each output frame
    crop: geo.Crop
    arrays: dict[str, np.ndarray]  # keypoints_2d, keypoints_3d, keypoints_visibility, camera_k, camera_rt
    # (+ body_params, body_betas for SMPL-X characters)
    checksums: dict[str, str] = field(default_factory=dict)
    body_model: str = ""  # JSON, shards/body_params.py; "" when the character has no body-model parameters

    def _resized(self, modality: str, fn) -> np.ndarray:
        """fn(source Frame) -> resized array, for every output frame; one source frame in memory at a time."""
        out, last_i, last = [], None, None
        for i in self.indices.tolist():
            if i != last_i:
                path = outputs.path_of(self.video.path, modality, i)
                if not path.is_file():
                    raise UserError(
                        f"video {self.video.video_id}: {path} is missing",
                        "re-render the video (its folder is incomplete)",
                    )
                last, last_i = fn(outputs.read_frame(self.video.path, i, (modality,))), i
            out.append(last)
        return np.stack(out)

    def _label(self, name: str) -> np.ndarray:
        """A resized label video, read once per clip (several tasks share depth, normals and parts):
        depth (T, H, W) metres, normal (T, H, W, 3), part (T, H, W), uv (T, H, W, 2), canonical
        (T, H, W, 3) - all nearest-neighbour - and mask (T, H, W) area-filtered coverage."""
        cache = self.__dict__.setdefault("_labels", {})
        if name not in cache:
            near = lambda a: geo.resize_nearest(a, self.crop)  # noqa: E731
            if name == "depth":
                cache[name] = self._resized("depth", lambda f: near(f.depth[..., None]))[..., 0]
            elif name == "normal":
                cache[name] = self._resized("normal", lambda f: near(f.normal))
            elif name in ("part", "uv"):
                iuv = self._resized(
                    "iuv", lambda f: near(np.concatenate([f.part[..., None].astype(np.float32), f.part_uv], axis=-1))
                )
                cache["part"], cache["uv"] = np.round(iuv[..., 0]).astype(np.uint8), iuv[..., 1:]
            elif name == "canonical":
                cache[name] = self._resized("canonical", lambda f: near(f.canonical))
            elif name == "mask":
                cache[name] = self._resized("mask", lambda f: geo.resize_area(f.mask[..., None], self.crop))[..., 0]
            else:
                raise ValueError(name)
        return cache[name]

    def release(self) -> None:
        """Drop the cached label videos (a full-size clip's labels are ~1 GB)."""
        self.__dict__.pop("_labels", None)

    def rgb(self) -> np.ndarray:
        """(T, H, W, 3) float32 in [-1, 1]: sRGB values, area-filtered."""
        area = lambda f: geo.resize_area(f.rgb.astype(np.float32) / 255.0, self.crop)  # noqa: E731
        return tg.to_signed(np.clip(self._resized("rgb", area), 0.0, 1.0))

    def truth(self, task: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(target (T, H, W, 3) in [-1, 1], valid (T, H, W) bool, stored pixels) of a dense task; the
        stored pixels are metric depth (T, H, W) for the depth tasks, else the target (model/pixels.py)."""
        if task in ("depth", "human_depth"):
            depth = self._label("depth")
            valid = tg.depth_valid(depth)
            if task == "human_depth":
                valid = valid & tg.subject_pixels(self._label("part"))
            return tg.depth_target(depth, valid), valid, depth
        if task in ("normals", "human_normals"):
            normal = self._label("normal")
            valid = tg.normals_valid(normal)
            if task == "normals":
                target = tg.normals_target(normal)
            else:
                subject = tg.subject_pixels(self._label("part"))
                target, valid = tg.human_normals_target(normal, subject), valid & subject
            return target, valid, target
        everywhere = np.ones(self._label("part").shape, bool)  # background values are ground truth here
        if task == "mask":
            target = tg.mask_target(self._label("mask"))
        elif task == "iuv":
            target = tg.iuv_target(self._label("part"), self._label("uv"))
        elif task == "canonical":
            target = tg.canonical_target(self._label("canonical"))
        else:
            raise ValueError(f"{task} is not a dense task")
        return target, everywhere, target

    def target(self, task: str) -> np.ndarray:
        """(T, H, W, 3) float32 in [-1, 1]: the 3-channel target video of a dense task."""
        return self.truth(task)[0]

    def source_files(self, task: str) -> list[str]:
        """The files (relative to the video folder) a record of `task` is made from."""
        mods = ["rgb"] + ([TASK_MODALITY[task]] if task in TASK_MODALITY else [])
        if task.startswith("human_"):
            mods.append("iuv")  # the subject's pixels
        root = Path(self.video.path)
        return ["annotations.npz", "metadata.json"] + [
            outputs.path_of(root, m, i).relative_to(root).as_posix()  # .exr in videos of label format 1
            for m in mods
            for i in sorted(set(self.indices.tolist()))
        ]

    def record_checksums(self, task: str) -> str:
        """JSON {file: sha256} of the files a record of `task` is made from."""
        return json.dumps({n: self.checksums.get(n, "") for n in self.source_files(task)}, sort_keys=True)


def load_clip(video: VideoSource | str | Path, cfg: PreprocessConfig) -> Clip:
    """Frame selection, crop, cameras and keypoints of one video (images are read on demand)."""
    if not isinstance(video, VideoSource):
        video = VideoSource.open(video)
    idx = video.frame_indices(cfg)
    crop = geo.cover_crop(video.width, video.height, cfg.width, cfg.height)
    clip = Clip(video, cfg, idx, crop, {}, source_checksums(video))
    if (Path(video.path) / "DONE").is_file():  # a farm video: what is read must be what was committed
        verify_sources(video, sorted({n for t in cfg.tasks for n in clip.source_files(t)}), clip.checksums)
    ann = read_annotations(Path(video.path) / "annotations.npz")
    c = cfg.keypoint_convention
    k = geo.crop_intrinsics(ann["K"][idx], crop)
    rt = np.concatenate([ann["R"][idx], ann["t"][idx][..., None]], axis=-1)
    kp2d, kp3d, vis = _keypoints(ann, "", c, idx, crop, cfg)  # the subject's: the training targets
    arrays = {
        "keypoints_2d": kp2d,
        "keypoints_3d": kp3d,
        "keypoints_visibility": vis,
        "camera_k": k.astype(np.float32),
        "camera_rt": rt.astype(np.float32),
    }
    if f"people_joints2d_{c}" in ann:  # several people: everyone's keypoints kept beside the subject's
        people = _keypoints(ann, "people_", c, idx, crop, cfg)
        arrays.update(zip(("people_keypoints_2d", "people_keypoints_3d", "people_keypoints_visibility"), people))
    if body_params.has_body(ann):  # SMPL-X ground truth, resampled to the clip's frames
        clip.body_model, arrays["body_params"], arrays["body_betas"] = body_params.pack(ann, idx)
    clip.arrays = arrays
    return clip


def _keypoints(ann: dict, prefix: str, c: str, idx: np.ndarray, crop, cfg: PreprocessConfig):
    """(2D normalised, 3D camera-frame, visibility with OUTSIDE after the crop) of convention c; `prefix`
    "people_" takes every person's (a leading person axis)."""
    sel = (slice(None), idx) if prefix else idx
    uv = geo.crop_points(ann[f"{prefix}joints2d_{c}"][sel], crop)
    vis = ann[f"{prefix}visibility_{c}"][sel].astype(np.uint8).copy()
    outside = (uv[..., 0] < 0) | (uv[..., 0] >= cfg.width) | (uv[..., 1] < 0) | (uv[..., 1] >= cfg.height)
    vis[outside] = OUTSIDE
    return (
        tg.keypoints_2d_normalised(uv, cfg.width, cfg.height),
        ann[f"{prefix}joints3d_cam_{c}"][sel].astype(np.float32),
        vis,
    )


def encode(codec, video: np.ndarray, dtype: str) -> np.ndarray:
    """(T, H, W, 3) in [-1, 1] -> (C, T', H/8, W/8) normalised latent mean.

    Normalised with the codec's latent statistics (WAN's latents_mean/std; the identity for
    the parameter-free codec), as the DiT sees latents; the trainer denormalises before decoding.
    """
    mean, _ = codec.encode(video[None], channels_last=True)
    mean = codec.normalize_latents(mean, channels_last=True)
    return np.ascontiguousarray(np.asarray(mean)[0].transpose(3, 0, 1, 2)).astype(dtype)


def video_records(video: VideoSource | str | Path, cfg: PreprocessConfig, codec) -> list[Record]:
    """Every record of one video, in the order of `cfg.tasks`."""
    clip = load_clip(video, cfg)
    rgb_lat = encode(codec, clip.rgb(), cfg.latent_dtype)
    empty = np.zeros((0,), cfg.latent_dtype)
    out = []
    for task in cfg.tasks:
        arrays = {"rgb_latents": rgb_lat, "target_latents": empty, **clip.arrays}
        if task in DENSE_TASKS:
            target, valid, stored = clip.truth(task)
            arrays["target_latents"] = encode(codec, target, cfg.latent_dtype)
            if cfg.pixel_targets:
                arrays.update(px.encode_truth(task, stored, valid))
        out.append(
            Record(
                video_id=clip.video.video_id,
                task=task,
                prompt_id=task,
                vae_id=codec.vae_id,
                source_checksums=clip.record_checksums(task),
                arrays=arrays,
                body_model=clip.body_model,
            )
        )
    clip.release()
    return out


# Compressed pixel ground truth relative to its raw bytes (uint8 targets / float16 depth + packed mask).
# Measured on our preview renders at 96x64..832x480: 0.04-0.12 (sky and flat backgrounds compress
# to almost nothing, textured scenes' normals least); shard planning uses this upper value.
PIXEL_BYTES_FRACTION = 0.15


def estimate_video_bytes(cfg: PreprocessConfig, latent_shape: tuple[int, ...], num_keypoints: int = 24) -> int:
    """Bytes of one video's records (one format), from shapes alone: every video of a run has the same
    shapes (the compressed pixel ground truth is estimated, see PIXEL_BYTES_FRACTION)."""
    lat = int(np.prod(latent_shape)) * np.dtype(cfg.latent_dtype).itemsize
    t, k = cfg.num_frames, num_keypoints
    fixed = t * k * (2 + 3) * 4 + t * k + t * (9 + 12) * 4 + HEADER_BYTES
    checks = 100 * (2 + 2 * cfg.num_frames)  # source_checksums JSON
    pixels = t * cfg.height * cfg.width * 3 * PIXEL_BYTES_FRACTION if cfg.pixel_targets else 0
    return int(
        sum(
            lat * (2 if task in DENSE_TASKS else 1) + fixed + checks + (pixels if task in DENSE_TASKS else 0)
            for task in cfg.tasks
        )
    )
