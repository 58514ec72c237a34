"""A Ray of our own on this machine, started quietly and never outliving the process.

`address="local"`: always a new cluster, even when RAY_ADDRESS or a `ray start` on this machine
would otherwise attach the run to another one. Ray turns token authentication on by default for a
new local cluster and logs a warning saying so on every start: the protection stays, the line (which
reads like a problem on a successful run) is not shown. The reaper (`reaper.py`) stops the cluster if
this process is killed.
"""

from __future__ import annotations

import logging


def start_local_ray(num_cpus: int, num_gpus: int | None = None):
    """ray, initialised on a new local cluster with `num_cpus` CPUs (and `num_gpus`)."""
    import ray

    from thfm_synth.render.farm.reaper import watch_local_ray

    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    watch_local_ray()
    ray.init(
        address="local",
        num_cpus=max(1, int(num_cpus)),
        num_gpus=num_gpus or None,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    return ray
