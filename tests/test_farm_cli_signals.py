"""Ctrl-C and SIGKILL of `thfm-synth render` itself (the CLI process, as a user stops it), with the
farm's stand-in renderer in place of Blender (tests/cli_fake_render.py swaps only the renderer).

Ctrl-C: exit 130, one line "interrupted" on stderr, claims released, no `.tmp` debris, no process
left, and rerunning the same command renders exactly the rest. SIGKILL: nothing can clean up, so
the rerun must take over the dead run's claims and remove its orphaned `.tmp` folders.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import REPO, run_cli
from test_farm import _default_sigint, wait_for
from test_integrity_farm import _alive, _tree

pytestmark = pytest.mark.slow
WRAPPER = Path(__file__).with_name("cli_fake_render.py")
N = 6


def start_render(out: Path, frame_seconds: float) -> subprocess.Popen:
    """`thfm-synth render` in its own process group, as a shell runs a foreground job."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
        "THFM_NO_BOOTSTRAP": "1",
        "THFM_TEST_FRAME_SECONDS": str(frame_seconds),
    }
    args = ["render", "--preset", "preview", "--num-videos", str(N), "--workers", "2", "--out", str(out)]
    return subprocess.Popen(
        [sys.executable, str(WRAPPER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        start_new_session=True,
        # as a shell starts a job: SIGINT at its default, whatever a library did to this test process
        preexec_fn=_default_sigint,
    )


def done_ids(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "videos").iterdir()) if (out / "videos").is_dir() else []


def summary_counts(stdout: str) -> dict[str, int]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("rendered "))
    m = re.match(
        r"rendered (\d+), skipped (\d+) \(already done\), failed (\d+), QA failed \d+, "
        r"in progress elsewhere (\d+), retries (\d+)",
        line,
    )
    assert m, line
    return dict(zip(("rendered", "skipped", "failed", "elsewhere", "retries"), map(int, m.groups())))


def rerun_renders_the_rest(out: Path, done_before: list[str]) -> None:
    """The same command again: skips what is done, renders the rest once, leaves nothing behind."""
    proc = start_render(out, 0.02)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    counts = summary_counts(stdout)
    assert counts == {
        "rendered": N - len(done_before),
        "skipped": len(done_before),
        "failed": 0,
        "elsewhere": 0,
        "retries": 0,
    }, stdout
    ids = done_ids(out)
    assert ids == [f"v{i:06d}" for i in range(N)]
    index = pq.read_table(out / "videos.parquet").to_pylist()
    assert sorted(r["video_id"] for r in index) == ids and all(r["attempts"] == 1 for r in index)
    runs = {json.loads((out / "videos" / v / "DONE").read_text())["run_id"] for v in ids}
    assert len(runs) == (2 if done_before else 1)  # the first run's videos were kept, not redone
    assert not list((out / ".claims").iterdir()) and not list((out / ".tmp").iterdir())


def test_ctrl_c_on_the_render_command_exits_130_and_the_same_command_continues(tmp_path):
    out = tmp_path / "out"
    proc = start_render(out, 0.2)
    assert wait_for(lambda: len(done_ids(out)) >= 1, 240)
    ours = _tree(proc.pid)
    ours.pop(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    said = [ln for ln in re.split(r"[\r\n]", stderr) if ln.strip() and not ln.startswith("rendering:")]
    assert said == ["thfm-synth: interrupted"], stderr[-3000:]  # one line, no traceback
    done = done_ids(out)
    assert 1 <= len(done) < N
    assert not list((out / ".claims").iterdir()), "claims not released"
    assert not list((out / ".tmp").iterdir()), "partial videos left in .tmp"
    assert {r["video_id"] for r in pq.read_table(out / "videos.parquet").to_pylist()} == set(done)
    status = run_cli("render", "--status", out)
    assert "INTERRUPTED (rerun the same command to continue)" in status.stdout, status.stdout
    assert f"done {len(done)} of {N} planned videos" in status.stdout
    deadline = time.time() + 15  # Ray's shutdown and the reaper's grace period
    while _alive(ours) and time.time() < deadline:
        time.sleep(0.2)
    assert _alive(ours) == []
    rerun_renders_the_rest(out, done)


def test_a_sigkilled_render_command_is_taken_over_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    proc = start_render(out, 0.3)
    # mid-run: a video done and both workers rendering the next ones
    assert wait_for(
        lambda: len(done_ids(out)) >= 1
        and (out / ".tmp").is_dir()
        and len(list((out / ".tmp").rglob("_child_pid"))) >= 2,
        240,
    )
    ours = _tree(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # no handler runs: claims and .tmp stay behind
    proc.communicate(timeout=30)
    deadline = time.time() + 15  # the reaper stops the dead run's workers
    while _alive(ours) and time.time() < deadline:
        time.sleep(0.2)
    assert _alive(ours) == []
    done = done_ids(out)
    assert len(done) < N
    stale_claims = {p.name for p in (out / ".claims").iterdir()}
    orphans = {p.name.split(".")[0] for p in (out / ".tmp").iterdir()}
    assert stale_claims and orphans, (stale_claims, orphans)  # the dead run's debris the rerun must handle
    assert stale_claims - set(done)  # a claim on a DONE video (killed between commit and release) is dropped too
    rerun_renders_the_rest(out, done)
