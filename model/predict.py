"""Run a trained THFM checkpoint on one clip and write the predicted modality as a video.

    from model.predict import predict
    predict("clip.mp4", "depth", "runs/train/checkpoints", "depth.mp4")
    predict("runs/demo/shards", "normals", ckpt, "normals.mp4", record_index=3)   # a shard record's RGB latents
    predict(record, "keypoints_2d", ckpt, "kp.mp4")                                # a thfm_synth Record

Input (``source``): a video file (anything ffmpeg reads, via imageio-ffmpeg), a folder of frame
images (sorted), a ``.npy`` array (T, H, W, 3) (uint8, or float in [0, 1]), a shard folder (with
``record_index``), or a :class:`thfm_synth.shards.record.Record`. Pixel input is center-cropped to
the training aspect ratio, resized to the training size (latent H', W' x 8) and cut/padded to the
training frame count T (the keypoint tokens are one per frame), then encoded with the codec the
checkpoint was trained with (``vae.weights`` from the checkpoint, or ``vae_weights=``). Shard input
uses its stored RGB latents.

Output: dense tasks are decoded to a (T, H, W, 3) video and visualised (depth: disparity as grey;
mask: alpha as grey; normals/iuv/canonical: (x + 1) / 2 as RGB). Keypoint tasks draw the predicted
2D keypoints on the (decoded) input clip and also write ``<out>.npz`` (keypoints_2d (T, K, 2)
normalised, keypoints_3d (T, K, 3) metres). The video is an MP4 (H.264 via imageio-ffmpeg) when
``out_path`` ends in .mp4 and imageio-ffmpeg is installed, else PNG frames in a folder
(``<out>/frame_00000.png``...). Returns a dict with what was written.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from model.decoding import LatentDecoder
from model.evaluate import load_model, make_forward, task_row
from model.tasks import DENSE_TASKS, TASKS

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".gif", ".m4v")


def _have_ffmpeg() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


def read_video(path: str | Path) -> tuple[np.ndarray, float]:
    """(T, H, W, 3) uint8 frames and fps of a video file / frame folder / .npy array."""
    path = Path(path)
    if path.is_dir():
        from PIL import Image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not files:
            raise FileNotFoundError(f"{path}: no .png/.jpg frames")
        return np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]), 24.0
    if path.suffix == ".npy":
        a = np.load(path)
        if a.dtype != np.uint8:
            a = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
        return a, 24.0
    if not _have_ffmpeg():
        raise RuntimeError("reading video files needs imageio-ffmpeg (pip install imageio-ffmpeg), or give frames")
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in gen]
    if not frames:
        raise ValueError(f"{path}: no frames")
    return np.stack(frames), float(meta.get("fps") or 24.0)


def write_video(frames: np.ndarray, out_path: str | Path, fps: float = 24.0) -> Path:
    """(T, H, W, 3) uint8 -> MP4 (if the path ends in .mp4 and imageio-ffmpeg is there) else PNG frames."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() == ".mp4" and _have_ffmpeg():
        import imageio_ffmpeg

        t, h, w, _ = frames.shape
        with warnings.catch_warnings():  # JAX warns about os.fork; ffmpeg is a plain exec'd child
            warnings.simplefilter("ignore", RuntimeWarning)
            writer = imageio_ffmpeg.write_frames(
                str(out_path),
                (w, h),
                fps=fps,
                codec="libx264",
                pix_fmt_out="yuv420p",
                macro_block_size=1,
                quality=8,
                ffmpeg_log_level="error",
            )
            writer.send(None)
        for f in frames:
            writer.send(np.ascontiguousarray(f))
        writer.close()
        return out_path
    from PIL import Image

    folder = out_path.with_suffix("") if out_path.suffix else out_path
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"frame_{i:05d}.png")
    return folder


def fit_clip(frames: np.ndarray, num_frames: int, height: int, width: int) -> np.ndarray:
    """Center-crop to the aspect ratio, resize (bilinear, antialiased) and cut/pad (repeat last) to
    ``num_frames``; -> float32 (T, H, W, 3) in [-1, 1]."""
    t, h, w, _ = frames.shape
    target = width / height
    if w / h > target:
        cw = int(round(h * target))
        frames = frames[:, :, (w - cw) // 2 : (w - cw) // 2 + cw]
    else:
        ch = int(round(w / target))
        frames = frames[:, (h - ch) // 2 : (h - ch) // 2 + ch]
    frames = frames[:num_frames]
    if frames.shape[0] < num_frames:
        frames = np.concatenate([frames, np.repeat(frames[-1:], num_frames - frames.shape[0], 0)])
    x = jnp.asarray(frames, jnp.float32) / 127.5 - 1.0
    x = jax.image.resize(x, (num_frames, height, width, 3), "linear", antialias=True)
    return np.asarray(jnp.clip(x, -1.0, 1.0))


def to_uint8(video: np.ndarray, task: str) -> np.ndarray:
    """Visualise a decoded (T, H, W, 3) video in [-1, 1]."""
    v = np.clip((np.asarray(video, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    if task in ("depth", "human_depth", "mask"):
        v = np.repeat(v.mean(-1, keepdims=True), 3, axis=-1)
    return (v * 255 + 0.5).astype(np.uint8)


def draw_keypoints(frames: np.ndarray, kp2d: np.ndarray, radius: int = 2) -> np.ndarray:
    """Red dots at normalised (x, y) keypoints on (T, H, W, 3) uint8 frames."""
    out = frames.copy()
    t, h, w, _ = out.shape
    for i in range(min(t, kp2d.shape[0])):
        for x, y in kp2d[i]:
            cx, cy = int(round(x * (w - 1))), int(round(y * (h - 1)))
            if 0 <= cx < w and 0 <= cy < h:
                out[i, max(cy - radius, 0) : cy + radius + 1, max(cx - radius, 0) : cx + radius + 1] = (255, 0, 0)
    return out


def with_truth(rgb: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 input | ground truth | prediction side by side, each under its label."""
    from PIL import Image, ImageDraw

    t, h, w, _ = pred.shape
    strip = np.full((14, 3 * w, 3), 255, np.uint8)
    img = Image.fromarray(strip)
    draw = ImageDraw.Draw(img)
    for i, label in enumerate(("input", "ground truth", "prediction")):
        draw.text((i * w + 3, 1), label, fill=(0, 0, 0))
    header = np.broadcast_to(np.asarray(img), (t, 14, 3 * w, 3))
    return np.concatenate([header, np.concatenate([rgb, truth, pred], axis=2)], axis=1)


def predict(
    source: Any,
    task: str,
    checkpoint: str | Path,
    out_path: str | Path | None = None,
    *,
    record_index: int = 0,
    vae_weights: str | None = None,
    fps: float | None = None,
    truth: bool = False,
) -> dict:
    """Predict ``task`` for one clip with a THFM checkpoint and write it (see the module doc). ``truth``
    (a shard record of this task): write input | ground truth | prediction side by side (and
    ``<out>.png``, the middle frame) instead of the prediction alone."""
    from thfm_synth.shards.record import Record

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
    graphdef, params, consts, meta = load_model(checkpoint)
    t_lat, hl, wl, c = meta["data"]["latent_shape"]
    num_frames = int(meta["data"]["num_frames"])
    weights = vae_weights if vae_weights is not None else meta["vae"]["weights"]
    decoder = LatentDecoder(weights, meta["vae"]["latents_normalized"])
    codec = decoder.codec

    src_fps = 24.0
    if isinstance(source, Record):
        record = source
    elif isinstance(source, (str, Path)) and Path(source, "index.json").is_file():
        from thfm_synth.shards.store import ShardSet

        record = next(
            (r for i, r in enumerate(ShardSet.open(source).records("array_record")) if i == record_index), None
        )
        if record is None:
            raise IndexError(f"{source}: no record {record_index}")
    else:
        record = None
    if record is not None:
        decoder.check(record.vae_id, f"record {record.video_id}")
        rgb = np.asarray(record.arrays["rgb_latents"], np.float32).transpose(1, 2, 3, 0)
        name = f"{record.video_id}"
    else:
        decoder.check(meta["data"]["vae_id"], "the checkpoint's training shards")
        frames, src_fps = read_video(source)
        clip = fit_clip(frames, num_frames, hl * 8, wl * 8)
        mean, _ = codec.encode(jnp.asarray(clip)[None], channels_last=True)
        lat = codec.normalize_latents(mean, channels_last=True) if decoder.latents_normalized else mean
        rgb = np.asarray(lat, np.float32)[0]
        name = Path(str(source)).stem
    if rgb.shape[-1] != c:
        raise ValueError(f"input latents have {rgb.shape[-1]} channels, the model {c}")

    forward = make_forward(graphdef)
    out = forward(params, consts, jnp.asarray(rgb)[None], jnp.asarray([task_row(meta, task, checkpoint)], jnp.int32))
    decode = decoder.decode_fn(decoder.state)
    out_path = Path(out_path) if out_path else Path(f"{name}_{task}.mp4")
    result: dict = {"task": task, "checkpoint": str(checkpoint), "latent_shape": list(rgb.shape)}
    if task in DENSE_TASKS:
        video = np.asarray(decode(out["latents"]))[0]
        frames_out = to_uint8(video, task)
        if truth:
            if record is None or record.task != task:
                raise ValueError(f"truth=True needs a shard record of task {task!r}")
            target = np.asarray(record.arrays["target_latents"], np.float32).transpose(1, 2, 3, 0)
            frames_out = with_truth(
                to_uint8(np.asarray(decode(jnp.asarray(rgb)[None]))[0], "rgb"),
                to_uint8(np.asarray(decode(jnp.asarray(target)[None]))[0], task),
                frames_out,
            )
            from PIL import Image

            from thfm_synth.atomic import atomic_path

            with atomic_path(out_path.with_suffix(".png"), "still") as tmp:
                Image.fromarray(frames_out[len(frames_out) // 2]).save(tmp, format="PNG")
            result["still"] = str(out_path.with_suffix(".png"))
    else:
        kp2d = np.asarray(out["keypoints_2d"])[0]
        kp3d = np.asarray(out["keypoints_3d"])[0]
        npz = out_path.with_suffix(".npz")
        npz.parent.mkdir(parents=True, exist_ok=True)
        np.savez(npz, keypoints_2d=kp2d, keypoints_3d=kp3d)
        result["keypoints"] = str(npz)
        base = to_uint8(np.asarray(decode(jnp.asarray(rgb)[None]))[0], "rgb")
        frames_out = draw_keypoints(base, kp2d)
    written = write_video(frames_out, out_path, fps or src_fps)
    result.update(
        {
            "video": str(written),
            "format": "mp4" if written.suffix == ".mp4" else "png-frames",
            "frames": int(frames_out.shape[0]),
            "size": [int(frames_out.shape[1]), int(frames_out.shape[2])],
        }
    )
    return result
