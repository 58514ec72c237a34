"""The THFM training loop: ``train(config) -> summary dict`` (what ``thfm-synth train`` calls).

    from model.train import train
    summary = train("jobs/train_tiny_cpu.yaml")                 # or a dict / TrainConfig
    summary = train("jobs/train_tiny_cpu.yaml", steps=20, **{"data.shard_dir": "x"})   # dotted overrides

Per run: multi-host set-up when the environment says so, the (data, fsdp) mesh, model init (random
or WAN 2.1 weights), Grain data (global shuffle, per-host slice, task mixing), resume from the latest
checkpoint (params, optimizer, step, rng, skip count and data iterator: the resumed run sees the same
batches and reproduces the same losses), the jitted step, logging and periodic Orbax checkpoints.

Logged every ``log_every`` steps (stdout on process 0 and one JSON line per log step in
``<run_dir>/train_log.jsonl``): step, loss (the step's), grad_norm, skipped (this step),
skips (total), lr, per-task mean loss of the step, steps/s and tokens/s (over the steps since the
previous log line, excluding the first step, which compiles), MFU (see :mod:`model.train.perf`),
data_wait_s (time blocked on the input pipeline in the window).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from model.checkpoint import Checkpointer
from model.data import DataSpec, inspect_shards, load_prompt_table, make_dataset, write_synthetic_shards
from model.tasks import TASKS
from model.thfm import prompt_array, thfm_flops
from model.wan import DATA_SIZED
from model.train.config import TrainConfig, load_config
from model.train.mesh import global_batch, make_mesh, maybe_initialize_distributed
from model.train.perf import peak_per_device
from model.train.step import TrainSetup, num_params, setup_training


def _is_main() -> bool:
    return jax.process_index() == 0


def prepare_data(cfg: TrainConfig) -> DataSpec:
    root = Path(cfg.data.shard_dir)
    if not (root / "index.json").is_file():
        if cfg.data.synthetic is None:
            raise FileNotFoundError(
                f"{root} is not a shard set (no index.json); run `thfm-synth demo` / preprocess "
                "first, point data.shard_dir at a shard set, or set data.synthetic"
            )
        if jax.process_count() > 1:
            raise ValueError("data.synthetic is for single-process runs; write the shards once beforehand")
        write_synthetic_shards(root, **cfg.data.synthetic)
    return inspect_shards(root)


class Trainer:
    def __init__(self, cfg: TrainConfig, *, devices=None, quiet: bool = False, progress: bool | None = None):
        self.cfg = cfg
        self.quiet = quiet or not _is_main()
        # a console bar (step, loss, ETA) so a long run is never silent: by default on a terminal
        # unless quiet (a pipe or log file gets the log lines, and an error stays one line)
        auto = not quiet and sys.stderr.isatty()
        self.progress = (auto if progress is None else progress) and _is_main()
        self._bar = None
        self.spec = prepare_data(cfg)
        text_dim = None if cfg.model.size in DATA_SIZED else int(cfg.model.dit.get("text_dim", 4096))
        self.prompts, self.prompt_provenance = load_prompt_table(cfg.data.shard_dir, text_dim, cfg.data.prompts)
        missing = [t for t in cfg.data.tasks if t not in self.prompts]
        if missing:
            raise ValueError(
                f"the prompt table ({self.prompt_provenance.get('path') or 'built-in'}) has no prompt for "
                f"tasks {missing}; regenerate prompts.npz or drop them from data.tasks"
            )
        self.mesh = make_mesh(cfg.mesh.data, cfg.mesh.fsdp, devices)
        n_dev, n_proc = self.mesh.devices.size, jax.process_count()
        if cfg.batch_size % n_dev or cfg.batch_size % n_proc:
            raise ValueError(f"batch_size={cfg.batch_size} must be divisible by the {n_dev} devices and {n_proc} hosts")
        self.local_batch = cfg.batch_size // n_proc

        self.ckpt = Checkpointer(cfg.checkpoint_path, keep=cfg.keep_checkpoints, async_save=cfg.async_checkpointing)
        latest = self.ckpt.latest_step() if cfg.resume else None
        self.setup, state = setup_training(cfg, self.spec, self.prompts, self.mesh, init=latest is None)
        ds = make_dataset(
            self.spec,
            batch_size=self.local_batch,
            seed=cfg.seed,
            weights=cfg.data.weights(),
            shuffle=cfg.data.shuffle,
            shard_index=jax.process_index(),
            shard_count=n_proc,
            num_threads=cfg.data.num_threads,
            prefetch=cfg.data.prefetch,
            prefetch_batches=cfg.data.prefetch_batches,
            pixels=cfg.stage == 2,
        )
        self.data_iter = iter(ds)
        self.resumed_from = None
        if latest is not None:
            abs_consts = jax.tree.map(
                lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                self.setup.consts,
                self.setup.consts_shardings,
            )
            state, consts, meta = self.ckpt.restore(latest, self.setup.abstract_state(), abs_consts, self.data_iter)
            if meta.get("model") != self.setup.model_cfg.to_dict():
                raise ValueError(
                    f"{cfg.checkpoint_path}: checkpoint {latest} is of another model architecture; "
                    "use a new run_dir/checkpoint_dir or resume: false"
                )
            self.setup.consts = consts
            self.resumed_from = latest
        self.state = state
        self.vae_state = self.setup.decoder.state if self.setup.decoder is not None else None

        t_lat, h, w, _ = self.spec.latent_shape
        prompt_len = prompt_array(self.prompts, self.setup.model_cfg.dit.text_dim, cfg.data.text_len).shape[1]
        self.flops = thfm_flops(self.setup.model_cfg, cfg.batch_size, t_lat, h, w, prompt_len)
        self.step_flops = 3.0 * self.flops["total"]
        self.tokens_per_step = self.flops["tokens"]
        self.peak, self.peak_source = peak_per_device(cfg.peak_flops_per_device, self.setup.dtype)

    # ------------------------------------------------------------------ helpers

    def meta(self) -> dict:
        s = self.setup
        return {
            "model": s.model_cfg.to_dict(),
            "train_config": json.loads(self.cfg.model_dump_json()),
            "data": {
                "shard_dir": str(self.spec.root),
                "latent_shape": list(self.spec.latent_shape),
                "num_frames": self.spec.num_frames,
                "num_keypoints": self.spec.num_keypoints,
                "vae_id": self.spec.vae_id,
                "task_counts": self.spec.task_counts,
                "keypoint_convention": self.spec.keypoint_convention,
                "pixel_shape": list(self.spec.pixel_shape) if self.spec.pixel_shape else None,
            },
            "vae": {"weights": self.cfg.vae.weights, "latents_normalized": self.cfg.vae.latents_normalized},
            "prompts_shape": list(jax.tree.leaves(s.consts)[0].shape),
            "prompt_provenance": {k: v for k, v in self.prompt_provenance.items() if k != "prompts"},
            "runtime": {"scan_layers": self.cfg.model.scan_layers, "dtype": str(np.dtype(s.dtype))},
            "tasks": list(TASKS),
        }

    def _log(self, rec: dict, fh) -> None:
        if fh is not None:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
        if not self.quiet:
            parts = [
                f"step {rec['step']}/{self.cfg.steps}",
                f"loss {rec['loss']:.5f}",
                f"gnorm {rec['grad_norm']:.3g}",
                f"skips {rec['skips']}",
                f"lr {rec['lr']:.2e}",
            ]
            if rec.get("steps_per_s") is not None:
                parts += [
                    f"{rec['steps_per_s']:.2f} steps/s",
                    f"{rec['tokens_per_s']:.0f} tok/s",
                    f"MFU {100 * rec['mfu']:.2f}%",
                ]
            self._say("[train] " + " | ".join(parts))
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss {rec['loss']:.4f}", refresh=False)

    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)

    # ------------------------------------------------------------------ loop

    def run(self) -> dict[str, Any]:
        cfg, s = self.cfg, self.setup
        state = self.state
        start = int(jax.device_get(state["step"]))
        fh = None
        if _is_main():
            cfg.log_path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(cfg.log_path, "a")
        if not self.quiet:
            print(
                f"[train] THFM {cfg.model.size}: {num_params(state['params']) / 1e6:.2f} M params, mesh "
                f"{dict(self.mesh.shape)} on {jax.device_count()} {jax.devices()[0].platform} device(s), "
                f"{jax.process_count()} process(es), dtype {np.dtype(s.dtype)}, stage {cfg.stage}, latents "
                f"{self.spec.latent_shape}, batch {cfg.batch_size}, steps {start}->{cfg.steps}"
                + (f" (resumed from {self.resumed_from})" if self.resumed_from is not None else ""),
                flush=True,
            )
        meta = self.meta()
        losses: dict[int, float] = {}
        pending: list[tuple[int, dict]] = []
        compile_s = None
        window_t0, window_steps, data_wait = None, 0, 0.0
        skips_total = int(jax.device_get(state["skips"]))
        last_rec: dict = {}
        t_run = time.perf_counter()
        if self.progress:
            from tqdm import tqdm

            self._bar = tqdm(
                total=cfg.steps, initial=start, unit="step", desc="train", mininterval=1.0, dynamic_ncols=True
            )
        try:
            for step in range(start, cfg.steps):
                t0 = time.perf_counter()
                local = next(self.data_iter)
                data_wait += time.perf_counter() - t0
                batch = global_batch(local, s.batch_sharding)
                state, metrics = s.step_fn(state, s.consts, self.vae_state, batch)
                n = step + 1
                pending.append((n, metrics))
                if compile_s is None:  # first step of this process: includes compilation
                    jax.block_until_ready(metrics)
                    compile_s = time.perf_counter() - t0
                    window_t0, window_steps, data_wait = time.perf_counter(), 0, 0.0
                else:
                    window_steps += 1
                if self._bar is not None:
                    self._bar.update(1)
                if n % cfg.log_every == 0 or n == cfg.steps:
                    fetched = jax.device_get(pending)
                    pending = []
                    now = time.perf_counter()
                    for k, m in fetched:
                        losses[k] = float(m["loss"])
                        skips_total += int(m["skipped"])
                    k, m = fetched[-1]
                    rate = window_steps / (now - window_t0) if window_steps else None
                    cnt = np.asarray(m["task_count"])
                    rec = {
                        "step": k,
                        "loss": float(m["loss"]),
                        "grad_norm": float(m["grad_norm"]),
                        "skipped": bool(m["skipped"]),
                        "skips": skips_total,
                        "lr": float(m["lr"]),
                        "task_loss": {
                            t: float(m["task_loss_sum"][i] / cnt[i]) for i, t in enumerate(TASKS) if cnt[i] > 0
                        },
                        "steps_per_s": rate,
                        "tokens_per_s": rate * self.tokens_per_step if rate else None,
                        "mfu": rate * self.step_flops / (self.peak * self.mesh.devices.size) if rate else None,
                        "data_wait_s": data_wait,
                        "time": time.time(),
                    }
                    if k == start + 1:
                        rec["compile_s"] = compile_s
                    self._log(rec, fh)
                    last_rec = rec
                    window_t0, window_steps, data_wait = now, 0, 0.0
                if n % cfg.checkpoint_every == 0 or n == cfg.steps:
                    self.ckpt.save(n, state, s.consts, meta, self.data_iter)
            jax.block_until_ready(state)
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
            self.ckpt.wait()
            if fh is not None:
                fh.close()
        self.state = state
        wall = time.perf_counter() - t_run
        timed_steps = cfg.steps - start - 1
        loop_rate = timed_steps / (wall - (compile_s or 0.0)) if timed_steps > 0 and compile_s is not None else None
        summary = {
            "steps": cfg.steps,
            "start_step": start,
            "resumed_from": self.resumed_from,
            "losses": [losses[k] for k in sorted(losses)],
            "loss_steps": sorted(losses),
            "final_loss": losses[max(losses)] if losses else None,
            "skips": skips_total,
            "compile_s": compile_s,
            "traces": s.traces[0],
            "wall_s": wall,
            "steps_per_s": loop_rate,
            "tokens_per_s": loop_rate * self.tokens_per_step if loop_rate else None,
            "mfu": loop_rate * self.step_flops / (self.peak * self.mesh.devices.size) if loop_rate else None,
            "step_flops": self.step_flops,
            "tokens_per_step": self.tokens_per_step,
            "peak_flops_per_device": self.peak,
            "peak_source": self.peak_source,
            "num_params": num_params(state["params"]),
            "mesh": dict(self.mesh.shape),
            "devices": jax.device_count(),
            "processes": jax.process_count(),
            "checkpoint_dir": str(cfg.checkpoint_path),
            "checkpoint_steps": self.ckpt.all_steps(),
            "log_file": str(cfg.log_path),
            "last_log": last_rec,
        }
        if cfg.data.eval_shard_dir:
            from model.evaluate import evaluate

            summary["eval"] = evaluate(
                self.cfg.checkpoint_path,
                cfg.data.eval_shard_dir,
                train_shard_dir=cfg.data.shard_dir,
                clips=cfg.data.eval_clips,
                vae_weights=cfg.vae.weights,
            )
        if _is_main():
            Path(cfg.run_dir).mkdir(parents=True, exist_ok=True)
            (Path(cfg.run_dir) / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        return summary

    def close(self) -> None:
        self.ckpt.close()
        close = getattr(self.data_iter, "close", None)  # grain >= 0.2.1x: stop prefetch threads
        if close is not None:
            close()


def train(
    config: Any, *, devices=None, quiet: bool = False, progress: bool | None = None, **overrides: Any
) -> dict[str, Any]:
    """Train THFM from a YAML path / dict / TrainConfig (dotted-key ``overrides``); returns the summary
    (also written to ``<run_dir>/summary.json``). quiet: no log lines; progress: the console bar
    (default: on a terminal, unless quiet)."""
    cfg = load_config(config, **overrides)
    maybe_initialize_distributed(cfg.distributed)
    # A run that stops before its first checkpoint (bad data, a corrupt record, a bad config value)
    # leaves no folder behind that it created: a half-made run folder looks like a run to resume.
    created = [p for p in (Path(cfg.run_dir), cfg.checkpoint_path, cfg.log_path.parent) if not p.exists()]
    trainer = None
    try:
        trainer = Trainer(cfg, devices=devices, quiet=quiet, progress=progress)
        try:
            return trainer.run()
        finally:
            trainer.close()
    except BaseException:
        try:
            saved = trainer is not None and bool(trainer.ckpt.all_steps())
        except Exception:  # noqa: BLE001 - a closed or broken manager: look at the folder itself
            saved = cfg.checkpoint_path.is_dir() and any(p.name.isdigit() for p in cfg.checkpoint_path.iterdir())
        if created and not saved and _is_main():
            import shutil

            for path in created:
                shutil.rmtree(path, ignore_errors=True)
        raise


__all__ = ["Trainer", "TrainSetup", "train", "prepare_data"]
