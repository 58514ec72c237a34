"""The farm's real renderer: a Ray worker's long-lived Blender child renders video after video."""

from __future__ import annotations

import os
from pathlib import Path

from thfm_synth.blender import contract
from thfm_synth.blender.child import ServingChild
from thfm_synth.blender.runtime import RenderRuntime
from thfm_synth.digests import DigestCache
from thfm_synth.render.farm.driver import FarmOptions
from thfm_synth.render.farm.folders import OutputLayout
from thfm_synth.plan.planner import plan_config, plan_library, read_plan
from thfm_synth.plan.spec import VideoSpec
from thfm_synth.render.video.render_one import render_video


def core_share(worker_index: int, threads: int) -> list[int] | None:
    """The cores a worker's Blender child is pinned to: `threads` cores from slot `worker_index`.

    Why: Cycles with a fixed thread count still keeps its task pool spinning on every core
    it can see (measured here: 1 render thread used 2 cores of CPU time and ran no faster),
    so two workers on two cores would fight. Pinned, each child sees only its share, and N
    workers scale. None (no pinning) when the thread count is left to Blender (0).
    """
    if threads <= 0 or not hasattr(os, "sched_getaffinity"):  # no affinity API (macOS): leave it to the OS
        return None
    cores = sorted(os.sched_getaffinity(0))
    return sorted({cores[(worker_index * threads + k) % len(cores)] for k in range(threads)})


class BlenderVideoRenderer:
    def __init__(
        self,
        log_path: Path,
        plan: str,
        cache_dir: str,
        blender: str | None = None,
        device: str | None = None,
        threads: int = 0,
        restart_every: int = 8,
        timeout_s: float = 6 * 3600,
        worker_index: int = 0,
        digest_cache: str | None = None,
    ):
        _, meta = read_plan(plan)
        self.library = plan_library(meta)
        dataset = plan_config(meta)
        cfg = dataset.render
        self.render_cfg = cfg.model_copy(update={"device": device}) if device else cfg
        self.qa_cfg = dataset.qa
        self.digests = DigestCache(digest_cache)  # shared by the run's workers: each asset is hashed once
        self.cache_dir = str(Path(cache_dir).resolve())  # workers may not share the driver's cwd
        self.threads = threads
        self.timeout_s = timeout_s
        self.child = ServingChild.blender(
            contract.SCRIPT_RENDER,
            log_path,
            RenderRuntime.detect(blender),
            restart_every=restart_every,
            cpus=core_share(worker_index, threads),
        )

    @property
    def child_pid(self) -> int | None:
        return self.child.pid

    def render(self, spec_row: dict, out_dir: Path) -> dict:
        return render_video(
            VideoSpec.from_row(spec_row),
            self.library,
            self.render_cfg,
            out_dir,
            self.cache_dir,
            child=self.child,
            timeout_s=self.timeout_s,
            threads=self.threads,
            qa_cfg=self.qa_cfg,
            digests=self.digests,
        )

    def close(self) -> None:
        self.child.stop()


def blender_farm(
    out: Path,
    plan_path: Path,
    cache_dir: Path,
    *,
    workers: int,
    cpus_per_video: int = 1,
    blender: str | None = None,
    device: str | None = None,
    restart_every: int = 8,
    gpus_per_video: float = 0.0,
    max_retries: int = 2,
    address: str | None = None,
    progress: bool = True,
) -> FarmOptions:
    """The farm options that render `plan_path` into `out` with Blender workers (`render` and `demo`)."""
    options = {
        "plan": str(Path(plan_path).resolve()),
        "cache_dir": str(Path(cache_dir).resolve()),
        "blender": blender,
        "device": device,
        "threads": int(cpus_per_video),
        "restart_every": restart_every,
        "digest_cache": str(OutputLayout(Path(out).resolve()).asset_digests),
    }
    return FarmOptions(
        out=Path(out),
        renderer=f"{__name__}:{BlenderVideoRenderer.__name__}",
        renderer_options=options,
        workers=workers,
        cpus_per_video=cpus_per_video,
        gpus_per_video=gpus_per_video,
        max_retries=max_retries,
        address=address,
        progress=progress,
    )
