"""Render every missing video of a plan with Ray: local by default, a cluster by address.

The driver claims a video, hands it to a free worker actor, and reacts to the outcome:
commit counted, crash/error retried (up to `max_retries` more attempts), bad input
recorded at once, disk full stops the run. A worker process that dies (SIGKILL, node
lost, out-of-memory kill) surfaces as a Ray actor error: the slot gets a fresh actor and
the video is retried. Ctrl-C stops cleanly: claims are released, the indexes written,
and rerunning the same command continues where this one stopped.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from thfm_synth.errors import UserError
from thfm_synth.farm.index import RunSummary, write_failures, write_videos_index
from thfm_synth.farm.layout import OutputLayout
from thfm_synth.farm.worker import Worker
from thfm_synth.plan.spec import VideoSpec

RETRY = ("crash", "error", "worker_died")


@dataclass
class FarmOptions:
    out: Path
    renderer: str  # "module:Class" implementing worker.VideoRenderer
    renderer_options: dict = field(default_factory=dict)
    workers: int = 2
    cpus_per_video: float = 1.0
    gpus_per_video: float = 0.0
    max_retries: int = 2
    address: str | None = None  # None: a local Ray instance; "auto" or "ray://host:port": a cluster
    progress: bool = True


def _guard_plan(layout: OutputLayout, plan_id: dict) -> None:
    """An output folder belongs to one plan: refuse to mix videos of different plans."""
    path = layout.root / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != plan_id:
            raise UserError(f"{layout.root} holds videos of another plan (config/seed differ: {old} vs {plan_id})",
                            "use a new --out folder, or the same --preset/--config/--seed as before")
    else:
        path.write_text(json.dumps(plan_id, sort_keys=True))


def _init_ray(opts: FarmOptions):
    import ray

    if not ray.is_initialized():
        if opts.address:
            ray.init(address=opts.address, log_to_driver=False, configure_logging=False)
        else:
            # address="local": always a new instance of our own, never a cluster someone started with
            # `ray start` on this machine (plain ray.init() would join it)
            ray.init(address="local", num_cpus=max(1, int(round(opts.workers * opts.cpus_per_video))),
                     num_gpus=int(round(opts.workers * opts.gpus_per_video)) or None, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
    return ray


def run_farm(specs: list[VideoSpec], plan_id: dict, opts: FarmOptions) -> RunSummary:
    layout = OutputLayout(Path(opts.out))
    layout.create()
    _guard_plan(layout, plan_id)
    layout.clean_tmp()
    run_id = uuid.uuid4().hex[:12]
    done_before = layout.done_ids()
    summary = RunSummary(planned=len(specs), cpus_per_video=opts.cpus_per_video, parallel=opts.workers)
    todo = [s for s in specs if s.video_id not in done_before]
    summary.skipped = len(specs) - len(todo)
    failures: list[dict] = []
    claimed: set[str] = set()
    t0 = time.time()
    if not todo:
        write_videos_index(layout)
        write_failures(layout, [])
        return summary

    ray = _init_ray(opts)
    remote_worker = ray.remote(Worker)

    def new_actor(slot: int):
        return remote_worker.options(num_cpus=opts.cpus_per_video, num_gpus=opts.gpus_per_video,
                                     max_restarts=0).remote(opts.renderer, opts.renderer_options, str(layout.root),
                                                            slot)

    actors = {slot: new_actor(slot) for slot in range(opts.workers)}
    free = list(actors)
    inflight: dict = {}  # future -> (slot, spec, attempt)
    attempts: dict[str, int] = {}
    queue = list(todo)
    bar = tqdm(total=len(todo), desc="rendering", unit="video", disable=not opts.progress)
    try:
        while queue or inflight:
            while free and queue:
                spec = queue.pop(0)
                if layout.is_done(spec.video_id):
                    summary.skipped += 1
                    bar.update(1)
                    continue
                if spec.video_id not in claimed:
                    if not layout.claim(spec.video_id, run_id):
                        summary.elsewhere += 1
                        bar.update(1)
                        continue
                    claimed.add(spec.video_id)
                slot = free.pop(0)
                attempt = attempts.get(spec.video_id, 0) + 1
                attempts[spec.video_id] = attempt
                fut = actors[slot].render.remote(spec.to_row(), attempt, run_id)
                inflight[fut] = (slot, spec, attempt)
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for fut in ready:
                slot, spec, attempt = inflight.pop(fut)
                try:
                    outcome = ray.get(fut)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.OutOfMemoryError) as exc:
                    outcome = {"status": "worker_died", "reason": f"worker process died: {type(exc).__name__}",
                               "traceback": str(exc)[:4000]}
                    ray.kill(actors[slot], no_restart=True)
                    actors[slot] = new_actor(slot)
                free.append(slot)
                status = outcome["status"]
                if status in ("ok", "duplicate"):
                    summary.duplicates += status == "duplicate"
                    if status == "ok":
                        summary.rendered += 1
                        summary.seconds_per_video.append(outcome["seconds"])
                        summary.frames += int(outcome.get("stats", {}).get("frames", spec.num_frames))
                    layout.release(spec.video_id, run_id)
                    claimed.discard(spec.video_id)
                    bar.update(1)
                elif status == "disk_full":
                    raise UserError(f"disk full while writing under {layout.root} ({outcome['reason']})",
                                    "free space or move --out to a bigger disk, then rerun: finished videos are kept")
                elif status in RETRY and attempt <= opts.max_retries:
                    summary.retries += 1
                    queue.insert(0, spec)  # keep the claim, try again next
                else:
                    failures.append({"video_id": spec.video_id, "attempts": attempt, "status": status,
                                     "reason": outcome.get("reason", ""), "traceback": outcome.get("traceback", ""),
                                     "time": time.time()})
                    summary.failed += 1
                    layout.release(spec.video_id, run_id)
                    claimed.discard(spec.video_id)
                    bar.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        bar.close()
        for actor in actors.values():
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already dead
                pass
        if inflight:  # ray.kill is asynchronous: let the killed workers' tasks end before cleaning .tmp
            try:
                ray.wait(list(inflight), num_returns=len(inflight), timeout=30.0)
            except Exception:
                pass
        for vid in claimed:
            layout.release(vid, run_id)
        layout.clean_tmp()
        summary.wall_seconds = time.time() - t0
        write_videos_index(layout)
        write_failures(layout, failures)
    return summary
