"""One call across the Blender boundary: (script, job) -> the script's result, or a typed error.

The job travels as one JSON document (`contract.JOB_FILE`) and the answer comes back as one
(`contract.RESULT_FILE`); the child's stdout and stderr are only a log. Every caller - a render,
a scene probe, a character import, the doctor's probe - goes through `call` (one process per
job) or `child.ServingChild` (a long-lived process, many jobs), and both turn the result into
the same errors:

* `BlenderBadInput` (a `UserError`): the job's input is wrong; the message names the file and
  the fix; retrying cannot help;
* `BlenderDiskFull` (an `OSError` with errno ENOSPC): no space left; stop, do not retry;
* `BlenderCrash` (a `RuntimeError`): anything else - a crash, a bug, or (`BlenderTimeout`) a child
  that ran past its time; a retry may help.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import tempfile
import warnings
from pathlib import Path

from thfm_synth.blender import contract
from thfm_synth.blender.runtime import RenderRuntime
from thfm_synth.errors import UserError


class BlenderBadInput(UserError):
    """The Blender child refused the job's input (missing/corrupt file, unsupported content)."""


class BlenderDiskFull(OSError):
    def __init__(self, what: str):
        super().__init__(errno.ENOSPC, f"No space left on device ({what})")


class BlenderCrash(RuntimeError):
    """The child failed for another reason (or died, or timed out); the job may succeed on a retry."""

    def __init__(self, what: str, traceback: str = ""):
        super().__init__(what)
        self.traceback = traceback


class BlenderTimeout(BlenderCrash):
    """The child took longer than the caller allowed and was stopped."""


def write_job(job_dir: Path, script: str, job: contract.Job) -> Path:
    job_dir.mkdir(parents=True, exist_ok=True)
    path = job_dir / contract.JOB_FILE
    (job_dir / contract.RESULT_FILE).unlink(missing_ok=True)
    contract.write_json_atomic(str(path), contract.job_document(script, job))
    return path


def read_result(job_dir: Path) -> dict | None:
    path = job_dir / contract.RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def unwrap(result: dict, script: str) -> dict:
    """The result's payload, or the typed error it reports. Warnings become RuntimeWarnings."""
    for message in result.get("warnings", []):
        warnings.warn(f"{script}: {message}", RuntimeWarning, stacklevel=3)
    if result.get("ok"):
        return result["result"]
    err = result.get("error") or {}
    kind, what = err.get("kind"), err.get("what") or "no error text"
    if kind == contract.ERROR_BAD_INPUT:
        raise BlenderBadInput(what, err.get("fix"))
    if kind == contract.ERROR_DISK_FULL:
        raise BlenderDiskFull(f"{script}: {what}")
    raise BlenderCrash(f"{script} failed: {what}", err.get("traceback", ""))


def _tail(text: str, lines: int = 3) -> str:
    kept = [ln for ln in (text or "").strip().splitlines() if ln.strip()][-lines:]
    return " | ".join(kept)[:600] or "no output"


def call(
    script: str,
    job: contract.Job,
    *,
    runtime: RenderRuntime | None = None,
    job_dir: str | Path | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """Run blender_scripts/`script` on `job` in a fresh child; returns the script's result dict.

    job_dir: where job.json and result.json go (a temporary folder when None).
    """
    runtime = runtime or RenderRuntime.detect()
    with tempfile.TemporaryDirectory(prefix="thfm-job-") if job_dir is None else _nullcontext(job_dir) as d:
        d = Path(d)
        path = write_job(d, script, job)
        try:
            proc = subprocess.run(
                runtime.command(script, [str(path)]),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=runtime.child_env(env),
            )
        except subprocess.TimeoutExpired:
            raise BlenderTimeout(f"{script} took longer than {timeout:.0f} s and was stopped") from None
        result = read_result(d)
        if result is None:
            if proc.returncode == contract.EXIT_DISK_FULL:
                raise BlenderDiskFull(f"{script} could not write its result")
            raise BlenderCrash(
                f"{script} ended (exit {proc.returncode}) without a result: {_tail(proc.stderr or proc.stdout)}"
            )
        return unwrap(result, script)


class _nullcontext:
    def __init__(self, value):
        self.value = value

    def __enter__(self):
        os.makedirs(self.value, exist_ok=True)
        return self.value

    def __exit__(self, *exc):
        return False
