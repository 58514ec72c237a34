"""Orbax checkpoints of THFM training runs.

A checkpoint directory (``<run_dir>/checkpoints``) holds one folder per saved step with items:

    params   the trainable params (pure dict of arrays; sharded arrays are saved/restored sharded)
    consts   non-trained model variables (the task prompt table)
    train    optimizer state, step, rng key, skipped-batch count
    data     the Grain iterator state of every host (process_<i>-of-<n>.json)
    meta     JSON: THFM architecture, train config, data spec, codec, prompt provenance

A resumed run restores all five, so it continues with exactly the same batches and updates.
``load_for_inference`` restores only params/consts/meta (no optimizer state), onto one device.
"""

from __future__ import annotations

from thfm_synth.errors import MissingFileError
import os
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

ITEMS = ("params", "consts", "train", "data", "meta")


def _grain_args():
    import grain

    return grain.checkpoint.CheckpointSave, grain.checkpoint.CheckpointRestore


class Checkpointer:
    def __init__(self, directory: str | Path, *, keep: int = 3, async_save: bool = True, read_only: bool = False):
        self.directory = Path(os.path.abspath(directory))
        if read_only:  # (orbax's read_only option logs warnings; nothing is saved through this manager)
            opts = ocp.CheckpointManagerOptions(enable_async_checkpointing=False, create=False)
        else:
            opts = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save, create=True)
        self.manager = ocp.CheckpointManager(self.directory, options=opts)

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, state: dict, consts: Any, meta: dict, data_iter=None, force: bool = True) -> bool:
        args = {
            "params": ocp.args.StandardSave(state["params"]),
            "consts": ocp.args.StandardSave(consts),
            "train": ocp.args.StandardSave({k: state[k] for k in ("opt_state", "step", "rng", "skips")}),
            "meta": ocp.args.JsonSave(meta),
        }
        if data_iter is not None:
            save_cls, _ = _grain_args()
            args["data"] = save_cls(data_iter)
        return self.manager.save(int(step), args=ocp.args.Composite(**args), force=force)

    def restore(self, step: int, abstract_state: dict, abstract_consts: Any, data_iter=None) -> tuple[dict, Any, dict]:
        """-> (state, consts, meta); ``data_iter`` (a grain DatasetIterator) is restored in place."""
        args = {
            "params": ocp.args.StandardRestore(abstract_state["params"]),
            "consts": ocp.args.StandardRestore(abstract_consts),
            "train": ocp.args.StandardRestore({k: abstract_state[k] for k in ("opt_state", "step", "rng", "skips")}),
            "meta": ocp.args.JsonRestore(),
        }
        if data_iter is not None:
            _, restore_cls = _grain_args()
            args["data"] = restore_cls(data_iter)
        r = self.manager.restore(int(step), args=ocp.args.Composite(**args))
        state = {"params": r["params"], **r["train"]}
        return state, r["consts"], r["meta"]

    def restore_meta(self, step: int | None = None) -> dict:
        step = self.latest_step() if step is None else step
        return self.manager.restore(int(step), args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def resolve(path: str | Path) -> tuple[Path, int | None]:
    """A run's checkpoint folder (-> latest step) or one step's folder (``.../checkpoints/1200``)."""
    path = Path(path)
    if (path / "meta").is_dir() and path.name.isdigit():
        return path.parent, int(path.name)
    if (path / "checkpoints").is_dir() and not any(p.name.isdigit() for p in path.iterdir()):
        path = path / "checkpoints"  # a run_dir
    if not path.is_dir():
        raise MissingFileError(
            f"checkpoint {path} not found",
            "give a run's checkpoints folder (RUN/checkpoints) or one step's folder (RUN/checkpoints/STEP)",
        )
    return path, None


def restore_params(path: str | Path, abstract_params, expect_model: dict | None = None):
    """Only the params of a THFM checkpoint, restored onto ``abstract_params``' shardings (for
    ``model.init_from``: e.g. stage 2 starting from stage 1)."""
    directory, step = resolve(path)
    ckpt = Checkpointer(directory, read_only=True, async_save=False)
    step = ckpt.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{directory}: no checkpoint steps")
    if expect_model is not None and ckpt.restore_meta(step).get("model") != expect_model:
        raise ValueError(f"{directory}/{step}: the checkpoint's THFM architecture differs from this run's")
    r = ckpt.manager.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params)))
    ckpt.close()
    return r["params"]


def load_for_inference(path: str | Path, device=None):
    """(THFMConfig, params, consts, meta, step) from a checkpoint, on one device (default: the first)."""
    from flax import nnx

    from model.thfm import THFMConfig, build_thfm

    directory, step = resolve(path)
    ckpt = Checkpointer(directory, read_only=True, async_save=False)
    step = ckpt.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{directory}: no checkpoint steps")
    meta = ckpt.restore_meta(step)
    model_cfg = THFMConfig.from_dict(meta["model"])
    prompts_shape = tuple(meta["prompts_shape"])
    abstract = build_thfm(
        model_cfg, np.zeros(prompts_shape, np.float32), abstract=True, scan_layers=meta["runtime"]["scan_layers"]
    )
    _, abs_params, abs_consts = nnx.split(abstract, nnx.Param, ...)
    dev = device or jax.devices()[0]
    sh = jax.sharding.SingleDeviceSharding(dev)
    to_abs = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sh)  # noqa: E731
    abs_params = jax.tree.map(to_abs, nnx.to_pure_dict(abs_params))
    abs_consts = jax.tree.map(to_abs, nnx.to_pure_dict(abs_consts))
    r = ckpt.manager.restore(
        step,
        args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abs_params), consts=ocp.args.StandardRestore(abs_consts)
        ),
    )
    ckpt.close()
    return model_cfg, r["params"], r["consts"], meta, step
