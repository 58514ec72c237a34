"""Devices, the (data, fsdp) mesh, shardings and multi-host set-up (public JAX APIs only).

- ``maybe_initialize_distributed``: ``jax.distributed.initialize()`` when asked, or ('auto') when the
  environment describes a multi-process job: ``JAX_COORDINATOR_ADDRESS`` (then
  ``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID`` are passed too), SLURM with ``SLURM_NTASKS > 1``, OpenMPI
  with ``OMPI_COMM_WORLD_SIZE > 1``, or a multi-host TPU slice (``TPU_WORKER_HOSTNAMES`` with
  several hosts). JAX auto-detects the cluster in the last three cases.
- ``make_mesh``: ``jax.sharding.Mesh`` over all (global) devices with axes ``("data", "fsdp")``;
  ``data=-1`` takes every device left after ``fsdp``. Works for 1 device, N local devices and
  multi-host (devices are process-major, so ``fsdp`` within a host when it divides the local count).
- Params (and the Adam moments) are sharded along ``fsdp`` on their largest divisible axis (never the
  stacked-layer axis of scanned blocks; small or indivisible arrays are replicated), replicated
  along ``data``. The batch is split over both axes.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXES = ("data", "fsdp")
BATCH_AXES = ("data", "fsdp")
MIN_SHARD_SIZE = 2**14  # params with fewer elements stay replicated

_initialized = False


def multiprocess_env() -> bool:
    env = os.environ
    if env.get("JAX_COORDINATOR_ADDRESS"):
        return True
    for key in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        try:
            if int(env.get(key, "1")) > 1:
                return True
        except ValueError:
            pass
    return len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h.strip()]) > 1


def maybe_initialize_distributed(mode: str = "auto") -> bool:
    """Call ``jax.distributed.initialize`` once if ``mode`` is 'on', or 'auto' and the env says so."""
    global _initialized
    if _initialized or mode == "off" or (mode == "auto" and not multiprocess_env()):
        return _initialized
    kwargs = {}
    if os.environ.get("JAX_COORDINATOR_ADDRESS"):
        kwargs["coordinator_address"] = os.environ["JAX_COORDINATOR_ADDRESS"]
        if os.environ.get("JAX_NUM_PROCESSES"):
            kwargs["num_processes"] = int(os.environ["JAX_NUM_PROCESSES"])
        if os.environ.get("JAX_PROCESS_ID"):
            kwargs["process_id"] = int(os.environ["JAX_PROCESS_ID"])
    jax.distributed.initialize(**kwargs)
    _initialized = True
    return True


def make_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if fsdp < 1 or n % fsdp:
        raise ValueError(f"mesh fsdp={fsdp} does not divide the {n} devices")
    if data == -1:
        data = n // fsdp
    if data * fsdp != n:
        raise ValueError(
            f"mesh data x fsdp = {data} x {fsdp} = {data * fsdp} but there are {n} devices "
            "(use data: -1 to take all devices left after fsdp)"
        )
    return Mesh(np.asarray(devices, dtype=object).reshape(data, fsdp), AXES)


def param_spec(
    path: tuple,
    shape: tuple[int, ...],
    fsdp: int,
    stacked_prefix: tuple | None = ("dit", "blocks"),
    min_size: int = MIN_SHARD_SIZE,
) -> P:
    """PartitionSpec of one param: its largest axis divisible by ``fsdp`` is sharded over 'fsdp'."""
    if fsdp <= 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
        return P()
    keys = tuple(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)
    first = 1 if stacked_prefix is not None and keys[: len(stacked_prefix)] == stacked_prefix else 0
    best = None
    for ax in range(first, len(shape)):
        if shape[ax] % fsdp == 0 and (best is None or shape[ax] > shape[best]):
            best = ax
    if best is None:
        return P()
    spec = [None] * len(shape)
    spec[best] = "fsdp"
    return P(*spec)


def param_shardings(mesh: Mesh, params, scan_layers: bool = True, min_size: int = MIN_SHARD_SIZE):
    """NamedShardings for a (pure-dict) param tree."""
    fsdp = mesh.shape["fsdp"]
    prefix = ("dit", "blocks") if scan_layers else None
    return jax.tree_util.tree_map_with_path(
        lambda path, x: NamedSharding(mesh, param_spec(path, tuple(x.shape), fsdp, prefix, min_size)), params
    )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(BATCH_AXES))


def global_batch(local: dict, sharding: NamedSharding) -> dict:
    """Per-host numpy batch -> global jax arrays sharded along the batch axis (all hosts call this)."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}
