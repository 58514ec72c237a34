"""Render every missing video of a plan with Ray: local by default, a cluster by address.

The driver claims a video, hands it to a free worker actor, and reacts to the outcome:
commit counted, crash/error retried (up to `max_retries` more attempts), bad input
recorded at once, disk full stops the run. A worker process that dies (SIGKILL, node
lost, out-of-memory kill) surfaces as a Ray actor error: the slot gets a fresh actor and
the video is retried. A slot gets work only once its actor is up, so a replacement that waits
for a node (the lost one held its resources) never holds a video while other nodes idle. The
driver refreshes its claims every minute (a claim left by a run that died with its node goes
stale and is taken over). Ctrl-C stops cleanly: claims are released, the indexes written,
and rerunning the same command continues where this one stopped. A local Ray the run starts
is stopped at the end, and by a watchdog if the driver is killed (farm/reaper.py).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from thfm_synth.errors import DiskFullError, UserError
from thfm_synth.render.farm.index import RunSummary, record_run, write_failures, write_videos_index
from thfm_synth.render.farm.folders import OutputLayout
from thfm_synth.render.farm.worker import Worker
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
    claim_stale_s: float | None = None  # a claim not refreshed for this long belongs to a dead run (default: layout's)


def _guard_plan(layout: OutputLayout, plan_id: dict) -> None:
    """An output folder belongs to one plan: refuse to mix videos of different plans."""
    path = layout.root / "run.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != plan_id:
            raise UserError(
                f"{layout.root} holds videos of another plan ({_plan_id_difference(old, plan_id)})",
                "use a new --out folder, or the same plan as before",
            )
    else:
        path.write_text(json.dumps(plan_id, sort_keys=True))


def _plan_id_difference(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "; ".join(f"{k}: {str(old.get(k))[:40]} -> {str(new.get(k))[:40]}" for k in keys[:3])


def _init_ray(opts: FarmOptions):
    """(ray, started): a local Ray this run starts is stopped when it ends, and - through a watchdog
    (`thfm_synth.render.farm.reaper`) - when this process is killed, so no Ray process outlives the run."""
    import ray

    if ray.is_initialized():
        return ray, False
    if opts.address:
        ray.init(address=opts.address, log_to_driver=False, configure_logging=False)
        return ray, False
    from thfm_synth.render.farm.local_ray import start_local_ray

    start_local_ray(round(opts.workers * opts.cpus_per_video), int(round(opts.workers * opts.gpus_per_video)))
    return ray, True


def _stop_ray(ray) -> None:
    try:
        ray.shutdown()
    except Exception:  # noqa: BLE001 - stopping is best effort; the reaper covers the rest
        pass


CLAIM_HEARTBEAT_S = 60.0  # the driver refreshes its claims this often, so a live run's claims never go stale


def _error_text(exc: BaseException) -> str:
    """The line that says what went wrong in a Ray error (its text wraps a remote traceback)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    said = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|BadInput|Crash)\b.*?: ", ln)]
    return (said[-1] if said else (lines[-1] if lines else type(exc).__name__))[:400]


def run_farm(specs: list[VideoSpec], plan_id: dict, opts: FarmOptions) -> RunSummary:
    layout = OutputLayout(Path(opts.out), **({"stale_after_s": opts.claim_stale_s} if opts.claim_stale_s else {}))
    layout.create()
    _guard_plan(layout, plan_id)
    layout.clean_tmp()
    run_id = uuid.uuid4().hex[:12]
    done_before = layout.done_ids()
    summary = RunSummary(planned=len(specs), cpus_per_video=opts.cpus_per_video, parallel=opts.workers)
    todo = [s for s in specs if s.video_id not in done_before]
    claims = {p.name for p in layout.claims.iterdir()} if layout.claims.is_dir() else set()
    for vid in claims & set(done_before):  # a run killed between a commit and its release left a claim on it
        layout.forget_stale_claim(vid)
    summary.skipped = len(specs) - len(todo)
    failures: list[dict] = []
    claimed: set[str] = set()
    t0 = time.time()
    if not todo:
        write_videos_index(layout)
        write_failures(layout, [])
        return summary

    ray, started = _init_ray(opts)
    remote_worker = ray.remote(Worker)

    def new_actor(slot: int):
        actor = remote_worker.options(
            num_cpus=opts.cpus_per_video, num_gpus=opts.gpus_per_video, max_restarts=0
        ).remote(opts.renderer, opts.renderer_options, str(layout.root), slot)
        starting[actor.__ray_ready__.remote()] = slot
        return actor

    # A slot gets work only once its actor is up: on a cluster a replacement actor may wait for a
    # node (the one that died held its resources), and work queued on it would wait with it while
    # the surviving nodes idle.
    starting: dict = {}  # ready future -> slot
    actors = {slot: new_actor(slot) for slot in range(opts.workers)}
    free: list[int] = []
    start_failures, last_start_error = 0, ""
    inflight: dict = {}  # future -> (slot, spec, attempt)
    attempts: dict[str, int] = {}
    queue = list(todo)
    last_heartbeat = time.time()
    bar = tqdm(total=len(todo), desc="rendering", unit="video", disable=not opts.progress)
    try:
        while queue or inflight:
            if starting:
                up, _ = ray.wait(list(starting), num_returns=len(starting), timeout=0)
                for ref in up:
                    slot = starting.pop(ref)
                    try:
                        ray.get(ref)
                        free.append(slot)
                        start_failures = 0
                    except Exception as exc:  # the worker could not start (its renderer failed to load)
                        start_failures += 1
                        last_start_error = _error_text(exc)
                        if start_failures > 3 * opts.workers:
                            raise UserError(
                                f"render workers fail to start: {last_start_error}",
                                "see the message; `thfm-synth doctor` checks the environment",
                            ) from None
                        actors[slot] = new_actor(slot)
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
            if time.time() - last_heartbeat > CLAIM_HEARTBEAT_S:
                layout.refresh_claims(claimed, run_id)
                last_heartbeat = time.time()
            if not inflight:
                time.sleep(0.2)  # waiting for workers to start
                continue
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for fut in ready:
                slot, spec, attempt = inflight.pop(fut)
                replaced = False
                try:
                    outcome = ray.get(fut)
                except (
                    ray.exceptions.RayActorError,
                    ray.exceptions.WorkerCrashedError,
                    ray.exceptions.OutOfMemoryError,
                    ray.exceptions.NodeDiedError,
                ) as exc:
                    outcome = {
                        "status": "worker_died",
                        "reason": f"worker process died: {type(exc).__name__}",
                        "traceback": str(exc)[:4000],
                    }
                    try:
                        ray.kill(actors[slot], no_restart=True)
                    except Exception:  # noqa: BLE001 - already gone with its node
                        pass
                    actors[slot] = new_actor(slot)
                    replaced = True
                if not replaced:
                    free.append(slot)
                status = outcome["status"]
                if status in ("ok", "duplicate"):
                    summary.duplicates += status == "duplicate"
                    if status == "ok":
                        summary.rendered += 1
                        summary.seconds_per_video.append(outcome["seconds"])
                        summary.frames += int(outcome.get("stats", {}).get("frames", spec.num_frames))
                        if not outcome.get("qa", {}).get("passed", True):
                            summary.qa_failed[spec.video_id] = list(outcome["qa"].get("failures", []))
                    layout.release(spec.video_id, run_id)
                    claimed.discard(spec.video_id)
                    bar.update(1)
                elif status == "disk_full":
                    raise DiskFullError(
                        f"disk full while writing under {layout.root} ({outcome['reason']})",
                        "free space or move --out to a bigger disk, then rerun: finished videos are kept",
                    )
                elif status in RETRY and attempt <= opts.max_retries:
                    summary.retries += 1
                    queue.insert(0, spec)  # keep the claim, try again next
                else:
                    failures.append(
                        {
                            "video_id": spec.video_id,
                            "attempts": attempt,
                            "status": status,
                            "reason": outcome.get("reason", ""),
                            "traceback": outcome.get("traceback", ""),
                            "time": time.time(),
                        }
                    )
                    summary.failed += 1
                    summary.failure_reasons.setdefault(status, []).append(
                        f"{spec.video_id}: {outcome.get('reason', '')}"
                    )
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
        record_run(layout, summary)
        if started:
            _stop_ray(ray)
    return summary
