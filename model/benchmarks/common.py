"""What every benchmark shares: samples, layout errors, the checkpoint predictor, tables.

A benchmark (one module per dataset family) knows its dataset's folder layout *as the dataset
ships it*, turns it into :class:`Sample` s (input frames + ground truth), scores a prediction of
one sample and prints the paper's table. Predictions come from a :class:`Predictor`:

- :class:`ModelPredictor` runs a THFM checkpoint: each clip is cut into windows of the model's
  frame count T (the last window padded by repeating its last frame; a single image is a one-frame
  clip, which WAN's causal VAE encodes on its own), each frame letterboxed to the training
  resolution (scaled to fit, padded by replicating the border: nothing of the person is cropped),
  encoded with the checkpoint's codec, run through the model, decoded, un-letterboxed and resized
  back to the sample's resolution (bilinear) - metrics are taken at the dataset's resolution;
- tests pass oracles (the ground truth, or a known perturbation of it) to check each metric.

Dense predictions are (T, H, W, 3) in [-1, 1] (the task's target encoding, model/tasks.py);
keypoint predictions (T, K, 3) metres in the camera frame, in the checkpoint's joint convention.

Bad input is one line (``LayoutError``, a FileNotFoundError): the missing file and the layout
expected; a checkpoint that cannot answer the benchmark (no such task, other joints, other size)
is one line naming both (``CheckpointMismatch``, a ValueError).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np


class LayoutError(FileNotFoundError):
    """A benchmark folder in the wrong layout or incomplete (one line)."""

    def __init__(self, benchmark: str, missing: Path | str, layout: str):
        super().__init__(
            f"{benchmark}: {missing} not found; expected the layout {layout} "
            f"(see `thfm-synth evaluate --benchmark {benchmark} --layout`)"
        )


class CheckpointMismatch(ValueError):
    """The checkpoint cannot answer this benchmark (one line naming both sides)."""


@dataclasses.dataclass
class Sample:
    """One unit of evaluation: input frames and the ground truth the benchmark scores them against."""

    key: str  # names the sample in messages and per-sample results
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    truth: dict[str, Any]  # benchmark-specific ground truth (arrays at the frames' resolution)
    group: str = "all"  # the table column group (e.g. a Goliath crop) or row (a matting dataset)
    fps: float | None = None


@dataclasses.dataclass(frozen=True)
class Column:
    key: str  # metric name in the per-group results
    header: str
    scale: float = 1.0  # printed value = metric * scale
    fmt: str = "{:.2f}"
    lower_is_better: bool = True


@dataclasses.dataclass(frozen=True)
class Reference:
    """A published row of the paper's table: ``values[group][metric]`` in printed units."""

    method: str
    values: dict[str, dict[str, float]]
    source: str


PredictFn = Callable[[Sample, str], np.ndarray]


# ----------------------------------------------------------------------------- images and windows


def resize(video: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T, h, w, C) float -> (T, height, width, C), bilinear with antialiasing (jax.image.resize)."""
    import jax
    import jax.numpy as jnp

    video = np.asarray(video, np.float32)
    if video.shape[1:3] == (height, width):
        return video
    out = jax.image.resize(
        jnp.asarray(video), (video.shape[0], height, width, video.shape[3]), "linear", antialias=True
    )
    return np.asarray(out)


@dataclasses.dataclass(frozen=True)
class Letterbox:
    """Fit an (h, w) frame inside (H, W) keeping its aspect: scale, then pad (top, left)."""

    src: tuple[int, int]
    dst: tuple[int, int]
    inner: tuple[int, int]
    top: int
    left: int

    @classmethod
    def fit(cls, src: tuple[int, int], dst: tuple[int, int]) -> "Letterbox":
        h, w = src
        big_h, big_w = dst
        s = min(big_h / h, big_w / w)
        ih, iw = max(1, min(big_h, round(h * s))), max(1, min(big_w, round(w * s)))
        return cls(tuple(src), tuple(dst), (ih, iw), (big_h - ih) // 2, (big_w - iw) // 2)

    def apply(self, video: np.ndarray) -> np.ndarray:
        """(T, h, w, C) float -> (T, H, W, C): resized into the box, the border replicated outwards."""
        inner = resize(video, *self.inner)
        pad = (
            (0, 0),
            (self.top, self.dst[0] - self.inner[0] - self.top),
            (self.left, self.dst[1] - self.inner[1] - self.left),
            (0, 0),
        )
        return np.pad(inner, pad, mode="edge")

    def invert(self, video: np.ndarray) -> np.ndarray:
        """(T, H, W, C) -> (T, h, w, C): the box cut out and resized back to the source size."""
        box = video[:, self.top : self.top + self.inner[0], self.left : self.left + self.inner[1]]
        return resize(box, *self.src)


def windows(n: int, length: int) -> list[np.ndarray]:
    """Frame indices of consecutive windows of ``length`` covering ``n`` frames; the last window is
    padded with its last frame (the padded predictions are dropped)."""
    out = []
    for start in range(0, n, length):
        idx = np.arange(start, start + length)
        out.append(np.minimum(idx, n - 1))
    return out


# ----------------------------------------------------------------------------- the checkpoint predictor


def infer_convention(meta: dict, override: str | None = None) -> str:
    """The joint convention of a checkpoint's keypoints (recorded by the trainer; else from K)."""
    if override:
        return override
    conv = meta.get("data", {}).get("keypoint_convention")
    if conv:
        return conv
    k = int(meta["data"]["num_keypoints"])
    if k == 24:
        return "smpl24"
    raise CheckpointMismatch(
        f"the checkpoint predicts {k} keypoints but does not record their convention; "
        "pass --keypoint-convention h36m17 or coco17"
    )


class ModelPredictor:
    """A THFM checkpoint as a benchmark predictor (see the module doc)."""

    def __init__(
        self,
        checkpoint,
        *,
        vae_weights: str | None = None,
        keypoint_convention: str | None = None,
        model_size: str | None = None,
    ):
        import jax
        import jax.numpy as jnp

        from model.decoding import LatentDecoder
        from model.evaluate import checkpoint_tasks, load_model, make_forward

        self.checkpoint = str(checkpoint)
        try:
            self.graphdef, self.params, self.consts, self.meta = load_model(checkpoint)
        except (FileNotFoundError, CheckpointMismatch):
            raise
        except Exception as exc:  # orbax: params of another shape / another architecture
            raise CheckpointMismatch(
                f"{checkpoint}: cannot restore it with this version's THFM "
                f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
            ) from None
        self.tasks = checkpoint_tasks(self.meta)
        # the tasks it was trained on (every task has a prompt row; untrained rows are noise)
        self.trained = tuple(self.meta.get("train_config", {}).get("data", {}).get("tasks") or self.tasks)
        self.size = self.meta.get("train_config", {}).get("model", {}).get("size", "?")
        if model_size and model_size != self.size:
            dit = self.meta["model"]["dit"]
            raise CheckpointMismatch(
                f"{checkpoint} is a THFM of model size {self.size!r} (DiT width "
                f"{dit.get('num_attention_heads', 0) * dit.get('attention_head_dim', 0)}, "
                f"{dit.get('num_layers')} layers), not the requested {model_size!r}"
            )
        t_lat, hl, wl, _ = self.meta["data"]["latent_shape"]
        self.size_hw = (int(hl) * 8, int(wl) * 8)
        self.num_frames = int(self.meta["data"]["num_frames"])
        self.num_keypoints = int(self.meta["data"]["num_keypoints"])
        self.keypoint_override = keypoint_convention
        weights = vae_weights if vae_weights is not None else self.meta["vae"]["weights"]
        self.decoder = LatentDecoder(weights, self.meta["vae"]["latents_normalized"])
        self.decoder.check(self.meta["data"]["vae_id"], "the checkpoint's training shards")
        self.forward = make_forward(self.graphdef)
        codec, norm = self.decoder.codec, self.decoder.latents_normalized
        decode_fn = self.decoder.decode_fn(self.decoder.state)

        def encode(video):
            mean, _ = codec.encode(video, channels_last=True)
            return codec.normalize_latents(mean, channels_last=True) if norm else mean

        self._encode = jax.jit(encode) if self.decoder.state is None else encode
        self._decode = jax.jit(decode_fn) if self.decoder.state is None else decode_fn
        self._jnp = jnp

    @property
    def keypoint_convention(self) -> str:
        return infer_convention(self.meta, self.keypoint_override)

    def row(self, task: str) -> int:
        if task not in self.tasks:
            raise CheckpointMismatch(
                f"{self.checkpoint} was trained for tasks {list(self.tasks)}, which do not include {task!r}"
            )
        return self.tasks.index(task)

    def pick_task(self, preferred: Sequence[str]) -> str:
        """The first of ``preferred`` the checkpoint knows (CheckpointMismatch naming both otherwise)."""
        for t in preferred:
            if t in self.tasks and t in self.trained:
                return t
        raise CheckpointMismatch(
            f"{self.checkpoint} was trained for tasks {list(self.trained)}; this benchmark needs "
            f"one of {list(preferred)}"
        )

    def _run(self, clip01: np.ndarray, task: str) -> dict:
        jnp = self._jnp
        x = jnp.asarray(clip01 * 2.0 - 1.0, jnp.float32)[None]
        lat = self._encode(x)
        return self.forward(self.params, self.consts, lat, jnp.asarray([self.row(task)], jnp.int32))

    def dense(self, frames: np.ndarray, task: str) -> np.ndarray:
        """(N, h, w, 3) uint8 (an array or model.benchmarks.frames source) -> (N, h, w, 3) float32 in [-1, 1]."""
        frames = frames if hasattr(frames, "shape") else np.asarray(frames)
        n, h, w, _ = frames.shape
        box = Letterbox.fit((h, w), self.size_hw)
        groups = [np.zeros(1, int)] if n == 1 else windows(n, self.num_frames)
        out = []
        for idx in groups:
            clip = box.apply(frames[idx].astype(np.float32) / 255.0)
            pred = self._run(clip, task)
            video = np.asarray(self._decode(pred["latents"]))[0]
            out.append(np.clip(box.invert(video), -1.0, 1.0))
        return np.concatenate(out)[:n]

    def keypoints(self, frames: np.ndarray, task: str = "keypoints_3d") -> np.ndarray:
        """(N, h, w, 3) uint8 -> (N, K, 3) metres (keypoints_3d) or (N, K, 2) normalised (keypoints_2d)."""
        frames = frames if hasattr(frames, "shape") else np.asarray(frames)
        n, h, w, _ = frames.shape
        box = Letterbox.fit((h, w), self.size_hw)
        out = []
        for idx in windows(n, self.num_frames):
            pred = self._run(box.apply(frames[idx].astype(np.float32) / 255.0), task)
            out.append(np.asarray(pred[task])[0])
        kp = np.concatenate(out)[:n]
        if task == "keypoints_2d":  # from the letterboxed frame back to the source image
            hh, ww = self.size_hw
            px = kp * np.array([ww, hh]) - np.array([box.left, box.top])
            kp = px / np.array([box.inner[1], box.inner[0]])
        return kp


# ----------------------------------------------------------------------------- tables


def _cell(value, col: Column) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return col.fmt.format(value * col.scale)


def format_table(
    title: str,
    groups: Sequence[str],
    columns: Sequence[Column],
    rows: Iterable[tuple[str, dict]],
    notes: Sequence[str] = (),
    group_titles: dict[str, str] | None = None,
    reference_rows: Iterable[Reference] = (),
) -> str:
    """A plain-text table in the paper's layout: one row per method, column groups (e.g. crops)
    each with the metric columns; reference rows first (their values already in printed units)."""
    group_titles = group_titles or {}
    heads = []
    for g in groups:
        for c in columns:
            arrow = "↓" if c.lower_is_better else "↑"
            name = f"{group_titles.get(g, g)} {c.header}" if len(groups) > 1 else c.header
            heads.append(f"{name}{arrow}")
    body: list[list[str]] = []
    for ref in reference_rows:
        cells = []
        for g in groups:
            for c in columns:
                v = ref.values.get(g, {}).get(c.key)
                cells.append("—" if v is None else c.fmt.format(v))
        body.append([ref.method] + cells)
    for name, res in rows:
        body.append([name] + [_cell(res.get(g, {}).get(c.key), c) for g in groups for c in columns])
    width = [max(len(r[i]) for r in body + [["method"] + heads]) for i in range(len(heads) + 1)]
    line = lambda cells: "  ".join(  # noqa: E731
        x.ljust(width[0]) if i == 0 else x.rjust(width[i]) for i, x in enumerate(cells)
    )
    out = [title, line(["method"] + heads), line(["-" * w for w in width])]
    out += [line(r) for r in body]
    out += list(notes)
    return "\n".join(out)


def mean_over(results: Sequence[dict], keys: Sequence[str] | None = None) -> dict[str, float]:
    """Mean of per-sample metric dicts (NaN-free values only)."""
    keys = keys or sorted({k for r in results for k in r})
    out = {}
    for k in keys:
        vals = [r[k] for r in results if k in r and r[k] is not None and np.isfinite(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (PNG/JPEG/BMP/AVIF through Pillow)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_gray(path: Path) -> np.ndarray:
    """A single-channel image (alpha matte, mask) as float64 in [0, 1] (8- or 16-bit: exactly k / 255)."""
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3:
        a = a[..., -1] if a.shape[-1] in (2, 4) else a[..., 0]
    scale = 65535.0 if a.dtype == np.uint16 or a.max(initial=0) > 255 else 255.0
    return a.astype(np.float64) / scale


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".avif", ".webp")


def image_files(folder: Path) -> list[Path]:
    return (
        sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if Path(folder).is_dir() else []
    )


REFERENCE_SOURCE = (
    "THFM (paper) row: arXiv:2603.25892's numbers as listed by wizwand.com's benchmark index (the "
    "paper's own tables were not reachable here); — = not found in the sources available here"
)


class Benchmark:
    """Base of the benchmark definitions (one subclass per dataset; see model/benchmarks/*.py)."""

    name = ""
    title = ""
    tasks: tuple[str, ...] = ()  # the tasks to prompt, in order of preference
    kind = "dense"  # or "keypoints"
    groups: tuple[str, ...] = ("all",)
    group_titles: dict[str, str] = {}
    columns: tuple[Column, ...] = ()
    references: tuple[Reference, ...] = ()
    notes: tuple[str, ...] = ()
    layout = ""  # one-line summary of the expected folder layout (error messages)

    def samples(self, root: Path, **options):  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, sample: Sample, pred: np.ndarray) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def aggregate(self, scored: list[tuple[Sample, dict]]) -> dict[str, dict[str, float]]:
        return {
            g: mean_over([m for s, m in scored if s.group == g])
            for g in self.groups
            if any(s.group == g for s, _ in scored)
        }

    def require(self, path: Path) -> Path:
        if not Path(path).exists():
            raise LayoutError(self.name, path, self.layout)
        return Path(path)

    def unknown_options(self, options: dict) -> None:
        if options:
            raise ValueError(f"{self.name}: unknown options {sorted(options)}")
