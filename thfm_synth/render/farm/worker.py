"""One render worker: renders a video into a temporary folder and commits it atomically.

The worker never raises for a failed video: it returns an outcome whose `status` tells the
driver what to do - `ok`/`duplicate` (done; the QA verdict travels in the outcome and in DONE,
and a video that failed QA is committed as evidence but marked `qa_failed`), `crash` and
`error` (retry), `bad_input` (permanent: a corrupt, missing or changed asset fails its video,
never the job), `disk_full` (stop the run; also when Blender reports it). Only the death of the
worker process itself surfaces as a Ray error.
"""

from __future__ import annotations

import errno
import importlib
import shutil
import socket
import time
import traceback
from pathlib import Path
from typing import Protocol

from thfm_synth.blender.call import BlenderCrash
from thfm_synth.digests import file_sha256
from thfm_synth.errors import DiskFullError, UserError
from thfm_synth.render.farm.folders import OutputLayout


class VideoRenderer(Protocol):
    """What the farm needs of a renderer (the Blender one, or the stand-in in fake.py)."""

    def render(self, spec_row: dict, out_dir: Path) -> dict: ...

    @property
    def child_pid(self) -> int | None: ...

    def close(self) -> None: ...


def load_renderer(path: str, options: dict, log_path: Path, worker_index: int = 0) -> VideoRenderer:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)(log_path=log_path, worker_index=worker_index, **options)


def file_checksums(folder: Path) -> tuple[dict[str, str], int]:
    sums, total = {}, 0
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith("_"):
            sums[p.relative_to(folder).as_posix()] = file_sha256(p)
            total += p.stat().st_size
    return sums, total


def _node_id() -> str | None:
    """The Ray node this worker runs on (provenance in DONE; None outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - provenance only
        return None


class Worker:
    def __init__(self, renderer: str, options: dict, out_root: str, index: int):
        self.layout = OutputLayout(Path(out_root))
        self.index = index
        self.renderer = load_renderer(renderer, options, self.layout.logs / f"worker-{index}.log", index)

    def child_pid(self) -> int | None:
        return self.renderer.child_pid

    def render(self, spec_row: dict, attempt: int, run_id: str) -> dict:
        video_id = spec_row["video_id"]
        base = {"video_id": video_id, "attempt": attempt, "worker": self.index, "host": socket.gethostname()}
        tmp = None
        t0 = time.time()
        try:
            tmp = self.layout.new_tmp(video_id)
            stats = self.renderer.render(spec_row, tmp)
            sums, nbytes = file_checksums(tmp)
            seconds = time.time() - t0
            # A video that fails QA is kept (its files are evidence) but marked: preprocess leaves it out.
            qa = {"passed": bool(stats.get("qa_passed", True)), "failures": list(stats.get("qa_failures", []))}
            done = {
                **base,
                "run_id": run_id,
                "seconds": seconds,
                "bytes": nbytes,
                "files": sums,
                "stats": stats,
                "qa": qa,
                "node": _node_id(),
                "finished_at": time.time(),
            }
            committed = self.layout.commit(tmp, video_id, done)
            tmp = None if committed else tmp
            return {
                **base,
                "status": "ok" if committed else "duplicate",
                "seconds": seconds,
                "bytes": nbytes,
                "stats": stats,
                "qa": qa,
            }
        except DiskFullError as exc:
            return {**base, "status": "disk_full", "reason": exc.one_line(), "traceback": traceback.format_exc()}
        except UserError as exc:
            return {**base, "status": "bad_input", "reason": exc.one_line(), "traceback": traceback.format_exc()}
        except BlenderCrash as exc:
            return {**base, "status": "crash", "reason": str(exc), "traceback": traceback.format_exc()}
        except OSError as exc:
            status = "disk_full" if exc.errno == errno.ENOSPC else "error"
            return {
                **base,
                "status": status,
                "reason": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        except Exception as exc:  # an unexpected bug: retried, then recorded with its traceback
            return {
                **base,
                "status": "error",
                "reason": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def close(self) -> None:
        self.renderer.close()
