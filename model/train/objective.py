"""THFM training objective on a mixed-task batch (uses :mod:`model.losses`).

Per sample ``i`` with task ``t_i``:

- dense tasks (model/tasks.py: depth, human_depth, normals, human_normals, mask, iuv, canonical):
  stage 1: ``latent_mse(pred_latents_i, target_latents_i)``;
  stage 2 (the paper's decoder in the loop): the predicted latents are decoded to an RGB-space video
  (B, T, H, W, 3) with the VAE/codec, differentiably, and compared with the record's **pixel ground
  truth** (``batch["pixels"]``, stored by preprocessing at model resolution - never the VAE's
  reconstruction of the target) under its validity mask (``batch["valid"]``: no sky for depth and
  normals, only the person for the human-only tasks) with ``DENSE_LOSSES[t_i]``: normals L2 +
  (1 - cos), depth SSI in disparity (clip-shared median/MAD over the valid pixels), L2 for
  mask/iuv/canonical;
- keypoint tasks (both stages): ``l2_loss`` of the keypoint head's 2D (keypoints_2d) or 3D
  (keypoints_3d) output against the record's keypoints, over the finite ones.

The batch loss is ``sum_i w[t_i] * loss_i / B`` (``w`` = per-task loss weights, default 1). Every
per-task loss is computed for every sample and the task's one selected (static shapes, one compile).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from model.losses import DENSE_LOSSES, l2_loss, latent_mse
from model.tasks import DENSE_TASKS, TASK_INDEX, TASKS


def _per_sample(fn, *args):
    return jax.vmap(lambda *a: fn(*(x[None] for x in a)))(*args)


def per_sample_losses(out: dict, batch: dict, *, stage: int, decode: Callable | None = None) -> jax.Array:
    """(B,) loss of each sample for its own task."""
    task = batch["task_id"]
    pred, target = out["latents"].astype(jnp.float32), batch["target"].astype(jnp.float32)
    if stage == 1:
        dense = _per_sample(latent_mse, pred, target)  # (B,)
        dense_all = jnp.broadcast_to(dense[:, None], (dense.shape[0], len(DENSE_TASKS)))
    else:
        if decode is None:
            raise ValueError("stage 2 needs a decoder (VAE or codec)")
        if "pixels" not in batch:
            raise ValueError("stage 2 needs the pixel ground truth in the batch (make_dataset(pixels=True))")
        pv = decode(pred)
        gv = batch["pixels"].astype(jnp.float32)
        valid = batch["valid"] > 0
        dense_all = jnp.stack([_per_sample(DENSE_LOSSES[t], pv, gv, valid) for t in DENSE_TASKS], axis=1)  # (B, D)
    kp2 = _per_sample(l2_loss, out["keypoints_2d"], batch["kp2d"], batch["kp2d_valid"])
    kp3 = _per_sample(l2_loss, out["keypoints_3d"], batch["kp3d"], batch["kp3d_valid"])
    table = jnp.concatenate([dense_all, kp2[:, None], kp3[:, None]], axis=1)  # (B, len(TASKS))
    return jnp.take_along_axis(table, task[:, None].astype(jnp.int32), axis=1)[:, 0]


def batch_loss(out: dict, batch: dict, *, stage: int, task_weights: jax.Array, decode: Callable | None = None):
    """Scalar loss and per-task (sum, count) for logging."""
    losses = per_sample_losses(out, batch, stage=stage, decode=decode)
    onehot = jax.nn.one_hot(batch["task_id"], len(TASKS), dtype=jnp.float32)  # (B, n_tasks)
    w = onehot @ task_weights
    loss = jnp.sum(w * losses) / losses.shape[0]
    return loss, {"task_loss_sum": onehot.T @ losses, "task_count": jnp.sum(onehot, axis=0)}


assert TASKS.index("keypoints_2d") == len(DENSE_TASKS) and TASK_INDEX["keypoints_3d"] == len(DENSE_TASKS) + 1
