"""Held-out evaluation of a THFM checkpoint with :mod:`model.metrics`, against two baselines.

    from model.evaluate import evaluate
    report = evaluate("runs/train/checkpoints", "runs/heldout/shards", clips=8)

For every held-out record of an evaluated task (up to ``clips`` per task) the model's predicted
latents, the record's target latents and the RGB latents are decoded to videos with the codec the
shards were made with; then per clip:

- **depth** (targets are per-clip min/max-normalised disparity, see thfm_synth/preprocess/targets.py):
  prediction and ground truth are the channel mean mapped to [0, 1]; pixels with ground-truth
  disparity <= 1e-3 (sky / no depth) are invalid; RMSE and AbsRel (pixels with g >= 0.1) in
  normalised disparity after a least-squares scale+shift alignment of the prediction.
  The shards hold no metric depth, so these are not metres;
- **mask**: alphas = channel mean mapped to [0, 1]; ``matte_errors`` per frame (MSE, MAD, Grad,
  Conn; averaged over frames) and ``dtssd`` over the clip;
- **normals**: ``normal_errors`` (degrees, % within thresholds);
- **keypoints_3d**: MPJPE and PA-MPJPE (metres); **keypoints_2d**: mean L2 error (normalised image units).

Baselines, scored with the same code:

- ``predict_input``: the prediction is the decoded RGB clip itself (dense tasks only);
- ``predict_mean``: the mean target over the training set (mean of up to ``mean_records`` decoded
  training targets of that task, per pixel; for keypoints the mean pose per frame).

Metrics are averaged over clips: ``report[task] = {"clips": n, "model": {...}, "predict_input":
{...}, "predict_mean": {...}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from model import metrics as M
from model.data import eval_examples, inspect_shards
from model.decoding import LatentDecoder
from model.thfm import TASK_INDEX

DEFAULT_TASKS = ("depth", "mask", "normals", "keypoints_2d", "keypoints_3d")


def _unit(video: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) in [-1, 1] -> (T, H, W) channel mean in [0, 1]."""
    return np.clip((np.asarray(video, np.float64).mean(-1) + 1.0) / 2.0, 0.0, 1.0)


def dense_metrics(task: str, pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """Metrics of one clip; ``pred``/``gt`` decoded videos (T, H, W, 3) in [-1, 1]."""
    if task == "depth":
        # The shards hold per-clip min/max-normalised disparity, whose offset is lost, so 1/g is
        # not depth up to scale: the errors are taken in normalised disparity itself, after the
        # least-squares scale and shift alignment (AbsRel over pixels with g >= 0.1).
        p, g = _unit(pred), _unit(gt)
        valid = g > 1e-3
        if not valid.any():
            return {}
        s, b = M.align_scale_shift(p[valid], g[valid])
        aligned = s * p[valid] + b
        err = aligned - g[valid]
        rel = g[valid] >= 0.1
        return {"rmse": float(np.sqrt(np.mean(err**2))),
                "absrel": float(np.mean(np.abs(err[rel]) / g[valid][rel])) if rel.any() else float("nan")}
    if task == "mask":
        p, g = _unit(pred), _unit(gt)
        per_frame = [M.matte_errors(p[t], g[t]) for t in range(p.shape[0])]
        out = {k: float(np.mean([f[k] for f in per_frame])) for k in per_frame[0]}
        out["dtssd"] = M.dtssd(p, g)
        return out
    if task == "normals":
        p = np.asarray(pred, np.float64)
        g = np.asarray(gt, np.float64)
        valid = (np.linalg.norm(g, axis=-1) > 1e-3) & (np.linalg.norm(p, axis=-1) > 1e-6)
        return M.normal_errors(p, g, valid) if valid.any() else {}
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
    return out


def _mean(dicts: list[dict]) -> dict[str, float]:
    dicts = [d for d in dicts if d]
    if not dicts:
        return {}
    return {k: float(np.mean([d[k] for d in dicts if k in d])) for k in dicts[0]}


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
    abstract = build_thfm(model_cfg, np.zeros(meta["prompts_shape"], np.float32), abstract=True, dtype=dtype,
                          scan_layers=meta["runtime"]["scan_layers"])
    graphdef = nnx.graphdef(abstract)
    return graphdef, params, consts, meta


def evaluate(checkpoint, shard_dir, *, train_shard_dir: str | None = None, tasks: Sequence[str] = DEFAULT_TASKS,
             clips: int = 8, mean_records: int = 64, vae_weights: str | None = None,
             latents_normalized: bool | None = None) -> dict:
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
    decode = jax.jit(decoder.decode_fn(decoder.state)) if decoder.state is None else \
        (lambda z: decoder.decode_fn(decoder.state)(z))

    def dec(lat):  # (T', H', W', C) -> (T, H, W, 3) numpy
        return np.asarray(decode(jnp.asarray(lat)[None]))[0]

    train_root = train_shard_dir or meta["data"]["shard_dir"]
    means: dict[str, np.ndarray] = {}
    if Path(train_root, "index.json").is_file():
        tspec = inspect_shards(train_root)
        for task in tasks:
            acc, n = None, 0
            for _, ex in eval_examples(train_root, tspec, tasks=(task,), limit=mean_records):
                x = (dec(ex["target"]) if task in ("depth", "mask", "normals") else
                     ex["kp2d" if task == "keypoints_2d" else "kp3d"].astype(np.float64))
                acc = x.astype(np.float64) if acc is None else acc + x
                n += 1
            if n:
                means[task] = acc / n

    report: dict = {"checkpoint": str(checkpoint), "shard_dir": str(shard_dir), "mean_from": str(train_root)}
    for task in tasks:
        rows = {"model": [], "predict_input": [], "predict_mean": []}
        n = 0
        for _, ex in eval_examples(shard_dir, spec, tasks=(task,), limit=clips):
            out = forward(params, consts, jnp.asarray(ex["rgb"])[None], jnp.asarray([TASK_INDEX[task]], jnp.int32))
            n += 1
            if task in ("depth", "mask", "normals"):
                gt = dec(ex["target"])
                rows["model"].append(dense_metrics(task, dec(np.asarray(out["latents"])[0]), gt))
                rows["predict_input"].append(dense_metrics(task, dec(ex["rgb"]), gt))
                if task in means:
                    rows["predict_mean"].append(dense_metrics(task, means[task].astype(np.float32), gt))
            else:
                key, vkey = ("kp2d", "kp2d_valid") if task == "keypoints_2d" else ("kp3d", "kp3d_valid")
                gt, valid = ex[key].astype(np.float64), ex[vkey]
                rows["model"].append(keypoint_metrics(task, np.asarray(out[f"keypoints_{key[2:]}"])[0], gt, valid))
                if task in means:
                    rows["predict_mean"].append(keypoint_metrics(task, means[task], gt, valid))
        if n:
            report[task] = {"clips": n, **{k: _mean(v) for k, v in rows.items() if v}}
    return report
