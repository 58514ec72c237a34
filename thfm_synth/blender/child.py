"""A long-lived child process, reused for several jobs and restarted when needed.

Protocol (thfm_synth/blender/contract.py): the parent writes the job document into the job's
folder and one JSON line `{"job": "<folder>/job.json"}` to the child's stdin; the child runs it,
writes `<folder>/result.json` atomically, then waits for the next line. The child's
stdout/stderr go to a log file, so Blender's chatter can never block a pipe. The parent
watches the child: if it exits before the result appears (a crash, SIGKILL, out-of-memory
kill), the job fails with `ChildCrashed` and the next job starts a fresh child. Blender leaks
memory across scenes, so the child is also restarted every `restart_every` jobs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from thfm_synth.blender import contract
from thfm_synth.blender.call import BlenderCrash, read_result, unwrap, write_job
from thfm_synth.blender.runtime import RenderRuntime


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies, so a killed Ray worker (Ctrl-C, disk full,
    node drain) never leaves an orphan Blender rendering into a folder the driver has cleaned."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass


def _child_setup(cpus: list[int] | None):
    def setup() -> None:
        if cpus:
            os.sched_setaffinity(0, cpus)
        _die_with_parent()

    return setup


class ChildCrashed(BlenderCrash):
    """The child process died or hung; the job may succeed on a retry."""


class ServingChild:
    """A child started with `command` (which must speak the protocol in serve mode)."""

    def __init__(
        self,
        command: list[str],
        script: str,
        log_path: Path,
        restart_every: int = 8,
        env: dict | None = None,
        cpus: list[int] | None = None,
    ):
        self.command = command
        self.script = script
        self.cpus = cpus  # pin the child to these cores (see render/farm/blender.py for why)
        self.log_path = Path(log_path)
        self.restart_every = max(1, restart_every)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.jobs_done = 0
        self.starts = 0

    @classmethod
    def blender(cls, script: str, log_path: Path, runtime: RenderRuntime | None = None, **kw) -> "ServingChild":
        """A Blender child serving blender_scripts/`script`."""
        runtime = runtime or RenderRuntime.detect()
        return cls(runtime.command(script, [contract.SERVE_FLAG]), script, log_path, env=runtime.child_env(), **kw)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def _start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=_child_setup(self.cpus),
        )
        log.close()
        self.jobs_done = 0
        self.starts += 1

    def ensure_started(self) -> None:
        """Start (or restart) the child now if the next job would. A caller that runs jobs on a
        short-lived thread calls it first from its own thread: PR_SET_PDEATHSIG kills the child
        when the thread that started it ends, not only the process."""
        if self.proc is None or self.proc.poll() is not None or self.jobs_done >= self.restart_every:
            self.stop()
            self._start()

    def run(self, job: contract.Job, job_dir: Path, timeout_s: float) -> dict:
        """Run one job (its files go in `job_dir`); returns the script's result or raises its error."""
        self.ensure_started()
        job_dir = Path(job_dir)
        path = write_job(job_dir, self.script, job)
        (job_dir / "_child_pid").write_text(str(self.proc.pid))  # who is running this job
        try:
            self.proc.stdin.write((json.dumps({"job": str(path.resolve())}) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            code = self.proc.poll()
            self.stop()
            raise ChildCrashed(f"{self.script} child exited (code {code}) before taking the job") from None
        deadline = time.monotonic() + timeout_s
        while (result := read_result(job_dir)) is None:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                if code == contract.EXIT_DISK_FULL:
                    from thfm_synth.blender.call import BlenderDiskFull

                    raise BlenderDiskFull(f"{self.script} could not write its result")
                how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
                raise ChildCrashed(f"{self.script} child died ({how}) while working; log: {self.log_path}")
            if time.monotonic() > deadline:
                self.stop()
                raise ChildCrashed(f"{self.script} child timed out after {timeout_s:.0f} s; log: {self.log_path}")
            time.sleep(0.05)
        self.jobs_done += 1
        return unwrap(result, self.script)

    def kill(self) -> None:
        """Stop the job in progress now (SIGKILL); `run` raises ChildCrashed and the next job starts a
        fresh child. For a caller that abandons a job whose output folder it is about to remove."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.proc = None
