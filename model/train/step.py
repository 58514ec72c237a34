"""The THFM train state and the jitted, sharded train step.

Train state (a pytree; everything a resumed run needs besides the data iterator)::

    {"params": pure dict of nnx.Param values, "opt_state": optax state, "step": int32,
     "rng": uint32[2] key, "skips": int32}

``consts`` (the prompt table, not trained) and the VAE params (stage 2) are separate, replicated
arguments. The step is one ``jax.jit`` with explicit in/out shardings and the state donated:

1. loss and grads (:mod:`model.train.objective`); 2. ``g = global_norm(grads)`` (before clipping);
3. optax chain ``clip_by_global_norm(clip_norm) -> adam(lr schedule)``; 4. **gradient dropping**:
if ``g > drop_threshold`` or ``g`` is not finite, params and optimizer state are kept unchanged
(``jnp.where``), ``skips`` is incremented and the LR schedule does not advance (its count is the
Adam count = applied updates); 5. ``step += 1``; ``rng`` is split (carried and checkpointed for
stochastic augmentations; the one-step model itself uses no randomness).

LR: ``lr * min(1, (n + 1) / warmup_steps)`` for the n-th applied update, ``warmup_steps =
round(warmup_fraction * steps)`` (linear warmup, then constant as in the paper); with
``lr_decay: cosine`` it then follows a half cosine from ``lr`` down to ``lr * lr_final_fraction``
at ``steps`` (short from-scratch runs, e.g. jobs/train_from_synth.yaml, end at a better loss).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from model.data import DataSpec
from model.decoding import LatentDecoder
from model.thfm import THFM, THFMConfig, build_thfm, dit_config, prompt_array
from model.train.config import TrainConfig
from model.train.mesh import batch_sharding, param_shardings, replicated
from model.train.objective import batch_loss
from model.wan import DATA_SIZED, default_compute_dtype

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def global_norm(tree):
    """L2 norm over all leaves (optax.tree.norm where available, else optax.global_norm)."""
    tree_mod = getattr(optax, "tree", None)
    if tree_mod is not None and hasattr(tree_mod, "norm"):
        return tree_mod.norm(tree)
    return optax.global_norm(tree)


def compute_dtype(name: str):
    return default_compute_dtype() if name == "auto" else DTYPES[name]


def thfm_config(cfg: TrainConfig, spec: DataSpec, text_dim: int | None) -> THFMConfig:
    dit = dit_config(cfg.model.size, latent_channels=spec.latent_channels, text_dim=text_dim, overrides=cfg.model.dit)
    return THFMConfig(
        dit=dit,
        num_frames=spec.num_frames,
        num_keypoints=spec.num_keypoints,
        timestep=cfg.model.timestep,
        kp_head_hidden=cfg.model.kp_head_hidden,
        token_mask=cfg.model.token_mask,
    )


def lr_schedule(
    lr: float, warmup_steps: int, decay: str = "constant", total_steps: int | None = None, final_fraction: float = 0.1
) -> Callable:
    warmup = max(int(warmup_steps), 1)
    if decay not in ("constant", "cosine"):
        raise ValueError(f"lr_decay must be constant or cosine, got {decay!r}")
    span = max(int(total_steps or warmup) - warmup, 1)

    def schedule(count):
        n = jnp.asarray(count, jnp.float32) + 1.0
        rate = lr * jnp.minimum(1.0, n / warmup)
        if decay == "cosine":
            t = jnp.clip((n - warmup) / span, 0.0, 1.0)
            rate = rate * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + jnp.cos(jnp.pi * t)))
        return rate

    return schedule


def make_optimizer(cfg: TrainConfig):
    schedule = lr_schedule(cfg.lr, cfg.warmup_steps(), cfg.lr_decay, cfg.steps, cfg.lr_final_fraction)
    tx = optax.chain(
        optax.clip_by_global_norm(cfg.clip_norm), optax.adam(schedule, b1=cfg.adam_b1, b2=cfg.adam_b2, eps=cfg.adam_eps)
    )
    return tx, schedule


def _pure(state) -> dict:
    return nnx.to_pure_dict(state)


@dataclasses.dataclass
class TrainSetup:
    """Everything the loop needs: model definition, shardings, the jitted step, initial state."""

    cfg: TrainConfig
    model_cfg: THFMConfig
    mesh: Mesh
    graphdef: Any
    tx: Any
    schedule: Callable
    state_shardings: dict
    consts: dict
    consts_shardings: Any
    batch_sharding: Any
    decoder: LatentDecoder | None
    step_fn: Callable
    traces: list  # [number of times the step was traced]; > 1 means it recompiled
    dtype: Any
    _abstract: Any = None  # ShapeDtypeStructs of the train state

    def abstract_state(self) -> dict:
        """ShapeDtypeStructs (with shardings) of the train state, for checkpoint restore."""
        return jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), self._abstract, self.state_shardings
        )


def setup_training(
    cfg: TrainConfig,
    spec: DataSpec,
    prompts: dict[str, np.ndarray],
    mesh: Mesh,
    *,
    init: bool = True,
    model_cfg: THFMConfig | None = None,
):
    """Build the model definition, shardings and jitted step; with ``init`` also the initial state
    (random or ``model.pretrained``) and replicated consts. Returns (TrainSetup, state or None)."""
    dtype = compute_dtype(cfg.dtype)
    text_dim = int(next(iter(prompts.values())).shape[-1])
    model_cfg = model_cfg or thfm_config(cfg, spec, text_dim if cfg.model.size in DATA_SIZED else None)
    prompt_tab = prompt_array(prompts, model_cfg.dit.text_dim, cfg.data.text_len)
    mkw = dict(
        dtype=dtype, scan_layers=cfg.model.scan_layers, remat=cfg.model.remat, attention_impl=cfg.model.attention_impl
    )

    abstract_model = build_thfm(model_cfg, prompt_tab, seed=cfg.seed, abstract=True, **mkw)
    graphdef, abs_params, abs_consts = nnx.split(abstract_model, nnx.Param, ...)
    abs_params, abs_consts = _pure(abs_params), _pure(abs_consts)
    p_sh = param_shardings(mesh, abs_params, cfg.model.scan_layers, cfg.mesh.min_shard_size)
    rep = replicated(mesh)
    tx, schedule = make_optimizer(cfg)
    abs_opt = jax.eval_shape(tx.init, abs_params)
    opt_sh = optax.tree_map_params(tx, lambda _, s: s, abs_opt, p_sh, transform_non_params=lambda _: rep)
    state_sh = {"params": p_sh, "opt_state": opt_sh, "step": rep, "rng": rep, "skips": rep}
    abstract = {
        "params": abs_params,
        "opt_state": abs_opt,
        "step": jax.ShapeDtypeStruct((), jnp.int32),
        "rng": jax.ShapeDtypeStruct((2,), jnp.uint32),
        "skips": jax.ShapeDtypeStruct((), jnp.int32),
    }
    consts_sh = jax.tree.map(lambda _: rep, abs_consts)
    b_sh = batch_sharding(mesh)

    decoder = None
    if cfg.stage == 2:
        decoder = LatentDecoder(cfg.vae.weights, cfg.vae.latents_normalized)
        decoder.check(spec.vae_id)
    vae_sh = None if decoder is None or decoder.state is None else jax.tree.map(lambda _: rep, decoder.state)

    traces = [0]
    task_w = np.asarray(cfg.task_loss_weights(), np.float32)
    drop, stage = float(cfg.drop_threshold), int(cfg.stage)

    def train_step(state, consts, vae_state, batch):
        traces[0] += 1  # runs at trace time only
        decode = decoder.decode_fn(vae_state) if decoder is not None else None

        def loss_fn(params):
            model = nnx.merge(graphdef, params, consts)
            out = model(batch["rgb"], batch["task_id"])
            return batch_loss(out, batch, stage=stage, task_weights=jnp.asarray(task_w), decode=decode)

        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
        gnorm = global_norm(grads)
        skip = jnp.logical_not(gnorm <= drop)  # also skips NaN/inf
        updates, new_opt = tx.update(grads, state["opt_state"], state["params"])
        new_params = optax.apply_updates(state["params"], updates)
        keep = lambda new, old: jnp.where(skip, old, new)  # noqa: E731
        applied = state["step"] - state["skips"]
        new_state = {
            "params": jax.tree.map(keep, new_params, state["params"]),
            "opt_state": jax.tree.map(keep, new_opt, state["opt_state"]),
            "step": state["step"] + 1,
            "rng": jax.random.split(state["rng"])[0],
            "skips": state["skips"] + skip.astype(jnp.int32),
        }
        metrics = {"loss": loss, "grad_norm": gnorm, "skipped": skip, "lr": schedule(applied), **aux}
        return new_state, metrics

    step_fn = jax.jit(
        train_step, in_shardings=(state_sh, consts_sh, vae_sh, b_sh), out_shardings=(state_sh, rep), donate_argnums=(0,)
    )

    setup = TrainSetup(
        cfg=cfg,
        model_cfg=model_cfg,
        mesh=mesh,
        graphdef=graphdef,
        tx=tx,
        schedule=schedule,
        state_shardings=state_sh,
        consts=None,
        consts_shardings=consts_sh,
        batch_sharding=b_sh,
        decoder=decoder,
        step_fn=step_fn,
        traces=traces,
        dtype=dtype,
        _abstract=abstract,
    )
    setup.consts = jax.device_put(abs_consts_values(prompt_tab, abs_consts), consts_sh)
    state = None
    if init:
        state = init_state(setup, prompt_tab, pretrained=cfg.model.pretrained, mkw=mkw, init_from=cfg.model.init_from)
    return setup, state


def abs_consts_values(prompt_tab: np.ndarray, abs_consts: dict) -> dict:
    """The consts tree (only the prompt table today) filled with values."""

    def fill(path, x):
        names = [getattr(k, "key", None) for k in path]
        if names and names[-1] == "prompts":
            return jnp.asarray(prompt_tab, x.dtype)
        raise ValueError(f"unexpected non-param variable {names} in THFM")

    return jax.tree_util.tree_map_with_path(fill, abs_consts)


def init_state(
    setup: TrainSetup, prompt_tab: np.ndarray, *, pretrained: str | None, mkw: dict, init_from: str | None = None
) -> dict:
    cfg = setup.cfg
    p_sh = setup.state_shardings["params"]
    if init_from:
        from model.checkpoint import restore_params

        abstract = setup.abstract_state()["params"]
        params = restore_params(init_from, abstract, expect_model=setup.model_cfg.to_dict())
    elif pretrained:
        model = build_thfm(setup.model_cfg, prompt_tab, seed=cfg.seed, pretrained=pretrained, **mkw)
        params = jax.device_put(_pure(nnx.state(model, nnx.Param)), p_sh)
    else:

        def make():
            m = THFM(setup.model_cfg, prompt_tab, rngs=nnx.Rngs(cfg.seed), **mkw)
            return _pure(nnx.state(m, nnx.Param))

        params = jax.jit(make, out_shardings=p_sh)()
    opt_state = jax.jit(setup.tx.init, out_shardings=setup.state_shardings["opt_state"])(params)
    rep = replicated(setup.mesh)
    return {
        "params": params,
        "opt_state": opt_state,
        "step": jax.device_put(jnp.zeros((), jnp.int32), rep),
        "rng": jax.device_put(jax.random.PRNGKey(cfg.seed), rep),
        "skips": jax.device_put(jnp.zeros((), jnp.int32), rep),
    }


def num_params(params) -> int:
    return int(sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)))


def model_from_params(setup_or_graphdef, params, consts) -> THFM:
    graphdef = getattr(setup_or_graphdef, "graphdef", setup_or_graphdef)
    return nnx.merge(graphdef, params, consts)
