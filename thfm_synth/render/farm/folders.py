"""The render output folder and the rules that make runs resumable and safe to overlap.

    OUT/
      plan.parquet          the plan being rendered
      run.json              the folder's binding: the digest of its whole plan (farm/binding.py)
      videos/<video_id>/    finished videos only: each arrives by one atomic rename,
                            with DONE (checksums, timings) already inside
      videos.parquet        index of finished videos (rebuilt at the end of every run)
      failures.parquet      videos that kept failing, with reason and traceback
      .claims/<video_id>    who is rendering a video now (created with O_EXCL)
      .tmp/                 videos being rendered (never read by anyone else)
      .logs/                renderer child logs
      .cache/               asset digests (each asset file is hashed once per run, not once per video) and
                            characters/: the baked characters every worker of every run on this folder
                            shares (on a cluster: once per cluster file system, not once per node)

A video is done iff videos/<id> exists: rename is atomic, so no reader ever sees a
partial video, a crash leaves only .tmp debris, and a rerun renders exactly what is
missing. Two runs on one folder skip each other's claimed videos; a claim whose owner
process is gone (same host) or that its run has not refreshed for `stale_after_s` (a run that died
with its node) is taken over.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

DONE = "DONE"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class OutputLayout:
    root: Path
    # A live run refreshes its claims every minute (driver.CLAIM_HEARTBEAT_S); one not refreshed for
    # this long belongs to a run that died with its node (a claim on this host is stale at once when
    # its process is gone).
    stale_after_s: float = 600.0

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    @property
    def claims(self) -> Path:
        return self.root / ".claims"

    @property
    def tmp(self) -> Path:
        return self.root / ".tmp"

    @property
    def logs(self) -> Path:
        return self.root / ".logs"

    @property
    def asset_digests(self) -> Path:
        """The run's asset digest cache (thfm_synth.digests.DigestCache): each asset file hashed once."""
        return self.root / ".cache" / "asset_digests.jsonl"

    @property
    def characters(self) -> Path:
        """The default baked-character cache of runs on this folder (bakes are written atomically, so
        workers baking the same character at once are safe)."""
        return self.root / ".cache" / "characters"

    def create(self) -> None:
        for d in (self.videos, self.claims, self.tmp, self.logs):
            d.mkdir(parents=True, exist_ok=True)

    def video_dir(self, video_id: str) -> Path:
        return self.videos / video_id

    def is_done(self, video_id: str) -> bool:
        return (self.video_dir(video_id) / DONE).is_file()

    def done_ids(self) -> set[str]:
        if not self.videos.is_dir():
            return set()
        return {p.name for p in self.videos.iterdir() if (p / DONE).is_file()}

    # ------------------------------------------------------------------ claims

    def claim(self, video_id: str, run_id: str) -> bool:
        """Take the claim on a video; False if another live run holds it."""
        path = self.claims / video_id
        info = json.dumps({"run_id": run_id, "host": socket.gethostname(), "pid": os.getpid(), "time": time.time()})
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale(path):
                    return False
                path.unlink(missing_ok=True)  # take over a dead run's claim, then retry once
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(info)
            return True
        return False

    def _stale(self, path: Path) -> bool:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return time.time() - path.stat().st_mtime > 60 if path.exists() else True
        if info.get("host") == socket.gethostname() and not _pid_alive(int(info.get("pid", -1))):
            return True
        try:
            touched = max(float(info.get("time", 0)), path.stat().st_mtime)
        except OSError:
            return True
        return time.time() - touched > self.stale_after_s

    def refresh_claims(self, video_ids, run_id: str) -> None:
        """The heartbeat of a live run: touch its claims so no other run takes them over."""
        for vid in video_ids:
            path = self.claims / vid
            try:
                if json.loads(path.read_text()).get("run_id") == run_id:
                    os.utime(path)
            except (OSError, ValueError):
                pass

    def release(self, video_id: str, run_id: str) -> None:
        path = self.claims / video_id
        try:
            if json.loads(path.read_text()).get("run_id") == run_id:
                path.unlink()
        except (OSError, ValueError):
            pass

    def forget_stale_claim(self, video_id: str) -> None:
        """Drop a dead run's claim on a video that is done: a run killed between the worker's commit
        and the driver's release leaves one, and nothing else would ever remove it."""
        path = self.claims / video_id
        if path.exists() and self._stale(path):
            path.unlink(missing_ok=True)

    def claimed_by_other(self, video_id: str, run_id: str) -> bool:
        path = self.claims / video_id
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            return False
        return info.get("run_id") != run_id and not self._stale(path)

    # ------------------------------------------------------------------ temporary work and commit

    def new_tmp(self, video_id: str) -> Path:
        path = self.tmp / f"{video_id}.{uuid.uuid4().hex[:10]}"
        path.mkdir(parents=True)
        return path

    def commit(self, tmp_dir: Path, video_id: str, done_info: dict) -> bool:
        """Write DONE inside the finished temporary folder, then rename it into place.

        Returns False (and discards the work) if the video was committed meanwhile.
        """
        (tmp_dir / DONE).write_text(json.dumps(done_info, indent=1, sort_keys=True))
        fd = os.open(tmp_dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.rename(tmp_dir, self.video_dir(video_id))
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                shutil.rmtree(tmp_dir, ignore_errors=True)
                return False
            raise
        return True

    def clean_tmp(self, keep_run_ids: set[str] = frozenset()) -> int:
        """Remove temporary folders of videos nobody alive is rendering."""
        removed = 0
        if not self.tmp.is_dir():
            return 0
        for p in self.tmp.iterdir():
            video_id = p.name.split(".")[0]
            claim = self.claims / video_id
            if claim.exists() and not self._stale(claim):
                continue
            shutil.rmtree(p, ignore_errors=True)
            removed += 1
        return removed
