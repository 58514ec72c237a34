"""THFM trainer (JAX): config, data mixing, sharded step, checkpoints, logging.

    from model.train import train, load_config
    summary = train("jobs/train_tiny_cpu.yaml")        # -> dict (also <run_dir>/summary.json)

Modules: config (TrainConfig, load_config), mesh (devices, mesh, shardings, multi-host), objective
(per-task losses), step (train state + jitted step), perf (FLOPs/MFU), trainer (the loop, train()).
"""

from model.train.config import TrainConfig, load_config
from model.train.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "load_config", "train"]
