"""Held-out evaluation of a THFM checkpoint with :mod:`model.metrics`, against two baselines.

    from model.evaluate import evaluate
    report = evaluate("runs/train/checkpoints", "runs/heldout/shards", clips=8)

For every held-out record of an evaluated task (up to ``clips`` per task) the model's predicted
latents are decoded to a video with the codec the shards were made with and compared with the
record's **pixel ground truth** (model/pixels.py: what preprocessing stored at model resolution,
with its validity mask); shards made without pixel targets fall back to the decoded target latents
(then the codec's own reconstruction error is part of the "ground truth"). Per clip:

- **depth / human_depth**: the prediction's channel mean mapped to [0, 1] is a normalised disparity.
  With pixel truth (metric depth) it is aligned to the ground-truth disparity 1/z by least squares
  (scale + shift over the clip's valid pixels: not sky; only the person for human_depth), inverted,
  and RMSE (**metres**) and AbsRel are taken against the metric depth (``"units": "m"``), plus
  ``rmse_ndisp``/``absrel_ndisp`` in per-clip normalised disparity. Without pixel truth only the
  latter, as ``rmse``/``absrel`` (pixels with g <= 1e-3 invalid; AbsRel over g >= 0.1;
  ``"units": "normalised disparity"``);
- **mask**: alphas = channel mean mapped to [0, 1]; ``matte_errors`` per frame (MSE, MAD, Grad,
  Conn; averaged over frames) and ``dtssd`` over the clip;
- **normals / human_normals**: ``normal_errors`` (degrees, % within thresholds) over the valid pixels;
- **keypoints_3d**: MPJPE, PA-MPJPE (metres) and Accel (``acceleration_error``: metres per frame^2,
  the HMR-papers definition); **keypoints_2d**: mean L2 error (normalised image units).

Baselines, scored with the same code:

- ``predict_input``: the prediction is the decoded RGB clip itself (dense tasks only);
- ``predict_mean``: the mean target over the training set (mean of up to ``mean_records`` training
  targets of that task, per pixel; for keypoints the mean pose per frame).

Metrics are averaged over clips: ``report[task] = {"clips": n, "model": {...}, "predict_input":
{...}, "predict_mean": {...}}``. A task is looked up in the checkpoint's own prompt rows
(``meta["tasks"]``), so checkpoints trained on an older task list still evaluate what they know.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model import metrics as M
from model import pixels as px
from model.data import eval_examples, inspect_shards
from model.decoding import LatentDecoder
from model.tasks import TASKS

DEFAULT_TASKS = ("depth", "human_depth", "mask", "normals", "human_normals", "keypoints_2d", "keypoints_3d")
DENSE_EVAL = ("depth", "human_depth", "mask", "normals", "human_normals")


def checkpoint_tasks(meta: dict) -> tuple[str, ...]:
    """The task of each prompt row of a checkpoint (its ``meta["tasks"]``; older checkpoints: the 7 tasks
    they were trained with)."""
    tasks = meta.get("tasks")
    if tasks is None:
        tasks = ("depth", "normals", "mask", "iuv", "canonical", "keypoints_2d", "keypoints_3d")
    n = int(meta.get("prompts_shape", [len(tasks)])[0])
    if len(tasks) != n:
        raise ValueError(f"checkpoint task list {list(tasks)} does not match its {n} prompt rows")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"checkpoint tasks {unknown} are unknown to this version (which knows {list(TASKS)})")
    return tuple(tasks)


def task_row(meta: dict, task: str, checkpoint="checkpoint") -> int:
    """The prompt row of ``task`` in a checkpoint (ValueError naming both task sets when it has none)."""
    tasks = checkpoint_tasks(meta)
    if task not in tasks:
        raise ValueError(f"{checkpoint} was trained for tasks {list(tasks)}, which do not include {task!r}")
    return tasks.index(task)


def _unit(video: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) in [-1, 1] -> (T, H, W) channel mean in [0, 1]."""
    return np.clip((np.asarray(video, np.float64).mean(-1) + 1.0) / 2.0, 0.0, 1.0)


def dense_metrics(
    task: str, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None, depth: np.ndarray | None = None
) -> dict[str, float]:
    """Metrics of one clip; ``pred``/``gt`` videos (T, H, W, 3) in [-1, 1]; ``valid`` (T, H, W) the pixels
    with ground truth (pixel truth); ``depth`` (T, H, W) metric depth of the depth tasks' pixel truth."""
    if task in ("depth", "human_depth"):
        p = _unit(pred)
        # In normalised disparity (the target's own space; the per-clip min/max normalisation has lost
        # the offset, so 1/g is not depth up to scale): errors after the least-squares alignment.
        g = _unit(gt)
        v = g > 1e-3 if valid is None else valid & (g > 1e-3)
        if not v.any():
            return {}
        s_, b = M.align_scale_shift(p[v], g[v])
        aligned = s_ * p[v] + b
        err = aligned - g[v]
        rel = g[v] >= 0.1
        ndisp = {
            "rmse": float(np.sqrt(np.mean(err**2))),
            "absrel": float(np.mean(np.abs(err[rel]) / g[v][rel])) if rel.any() else float("nan"),
        }
        if depth is None:
            return {**ndisp, "units": "normalised disparity"}
        vm = (depth > 0) & (valid if valid is not None else True)
        return {
            **M.depth_errors(p, depth, vm, space="disparity"),
            "units": "m",
            "rmse_ndisp": ndisp["rmse"],
            "absrel_ndisp": ndisp["absrel"],
        }
    if task == "mask":
        p, g = _unit(pred), _unit(gt)
        per_frame = [M.matte_errors(p[t], g[t]) for t in range(p.shape[0])]
        out = {k: float(np.mean([f[k] for f in per_frame])) for k in per_frame[0]}
        out["dtssd"] = M.dtssd(p, g)
        return out
    if task in ("normals", "human_normals"):
        p = np.asarray(pred, np.float64)
        g = np.asarray(gt, np.float64)
        v = (np.linalg.norm(g, axis=-1) > 1e-3) & (np.linalg.norm(p, axis=-1) > 1e-6)
        if valid is not None:
            v &= valid
        return M.normal_errors(p, g, v) if v.any() else {}
    return {}


def keypoint_metrics(task: str, pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    v = valid > 0
    if not v.any():
        return {}
    if task == "keypoints_2d":
        return {"l2": float(np.linalg.norm(pred - gt, axis=-1)[v].mean())}
    out = {"mpjpe": float(np.linalg.norm(pred - gt, axis=-1)[v].mean())}
    if v.all():
        out["pa_mpjpe"] = M.pa_mpjpe(pred, gt)
    frames = v.all(-1)  # frames whose every joint has ground truth
    if frames.sum() >= 3:
        out["accel"] = M.acceleration_error(pred, gt, valid=frames)
    return out


def _mean(dicts: list[dict]) -> dict[str, float]:
    dicts = [d for d in dicts if d]
    if not dicts:
        return {}
    keys = sorted({k for d in dicts for k in d}, key=lambda k: [k in d for d in dicts].index(True))
    out = {}
    for k in keys:
        vals = [d[k] for d in dicts if k in d]
        out[k] = vals[0] if isinstance(vals[0], str) else float(np.mean(vals))
    return out


def make_forward(graphdef):
    @jax.jit
    def forward(params, consts, rgb, task_ids):
        return nnx.merge(graphdef, params, consts)(rgb, task_ids)

    return forward


def load_model(checkpoint):
    """(graphdef, params, consts, meta) of a checkpoint, on one device."""
    from model.checkpoint import load_for_inference
    from model.thfm import build_thfm

    model_cfg, params, consts, meta, _ = load_for_inference(checkpoint)
    dtype = jnp.dtype(meta["runtime"]["dtype"])
    abstract = build_thfm(
        model_cfg,
        np.zeros(meta["prompts_shape"], np.float32),
        abstract=True,
        dtype=dtype,
        scan_layers=meta["runtime"]["scan_layers"],
    )
    graphdef = nnx.graphdef(abstract)
    return graphdef, params, consts, meta


def evaluate(
    checkpoint,
    shard_dir,
    *,
    train_shard_dir: str | None = None,
    tasks: Sequence[str] = DEFAULT_TASKS,
    clips: int = 8,
    mean_records: int = 64,
    vae_weights: str | None = None,
    latents_normalized: bool | None = None,
) -> dict:
    """Evaluate a checkpoint on the held-out shard set ``shard_dir`` (see the module doc)."""
    graphdef, params, consts, meta = load_model(checkpoint)
    forward = make_forward(graphdef)
    spec = inspect_shards(shard_dir)
    want = tuple(meta["data"]["latent_shape"])
    if tuple(spec.latent_shape) != want:
        raise ValueError(f"{shard_dir}: latents {spec.latent_shape} differ from the training data's {want}")
    weights = vae_weights if vae_weights is not None else meta["vae"]["weights"]
    norm = meta["vae"]["latents_normalized"] if latents_normalized is None else latents_normalized
    decoder = LatentDecoder(weights, norm)
    decoder.check(spec.vae_id, f"held-out shards {shard_dir}")
    decode = (
        jax.jit(decoder.decode_fn(decoder.state))
        if decoder.state is None
        else (lambda z: decoder.decode_fn(decoder.state)(z))
    )

    def dec(lat):  # (T', H', W', C) -> (T, H, W, 3) numpy
        return np.asarray(decode(jnp.asarray(lat)[None]))[0]

    rows_of = {t: task_row(meta, t, checkpoint) for t in tasks}

    def truth(rec, ex):
        """(gt video, valid, metric depth) of a dense record: pixel truth when stored, else decoded latents."""
        t = px.decode_truth(rec.task, rec.arrays["target_pixels"], rec.arrays["pixel_valid"])
        if t:
            return t["target"], t["valid"], t.get("depth")
        return dec(ex["target"]), None, None

    train_root = train_shard_dir or meta["data"]["shard_dir"]
    means: dict[str, np.ndarray] = {}
    if Path(train_root, "index.json").is_file():
        tspec = inspect_shards(train_root)
        for task in tasks:
            acc, n = None, 0
            for rec, ex in eval_examples(train_root, tspec, tasks=(task,), limit=mean_records):
                x = (
                    truth(rec, ex)[0]
                    if task in DENSE_EVAL
                    else ex["kp2d" if task == "keypoints_2d" else "kp3d"].astype(np.float64)
                )
                acc = x.astype(np.float64) if acc is None else acc + x
                n += 1
            if n:
                means[task] = acc / n

    report: dict = {
        "checkpoint": str(checkpoint),
        "shard_dir": str(shard_dir),
        "mean_from": str(train_root),
        "ground_truth": "pixels" if spec.has_pixels else "decoded target latents",
    }
    for task in tasks:
        rows = {"model": [], "predict_input": [], "predict_mean": []}
        n = 0
        for rec, ex in eval_examples(shard_dir, spec, tasks=(task,), limit=clips):
            out = forward(params, consts, jnp.asarray(ex["rgb"])[None], jnp.asarray([rows_of[task]], jnp.int32))
            n += 1
            if task in DENSE_EVAL:
                gt, valid, depth = truth(rec, ex)
                kw = dict(valid=valid, depth=depth)
                rows["model"].append(dense_metrics(task, dec(np.asarray(out["latents"])[0]), gt, **kw))
                rows["predict_input"].append(dense_metrics(task, dec(ex["rgb"]), gt, **kw))
                if task in means:
                    rows["predict_mean"].append(dense_metrics(task, means[task].astype(np.float32), gt, **kw))
            elif task in ("keypoints_2d", "keypoints_3d"):
                key, vkey = ("kp2d", "kp2d_valid") if task == "keypoints_2d" else ("kp3d", "kp3d_valid")
                gt, valid = ex[key].astype(np.float64), ex[vkey]
                rows["model"].append(keypoint_metrics(task, np.asarray(out[f"keypoints_{key[2:]}"])[0], gt, valid))
                if task in means:
                    rows["predict_mean"].append(keypoint_metrics(task, means[task], gt, valid))
        if n:
            report[task] = {"clips": n, **{k: _mean(v) for k, v in rows.items() if v}}
    return report
