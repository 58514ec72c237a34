"""Nothing wrong becomes training data (issue 12), part 3: what the farm records and leaves behind
(local Ray, the stand-in renderer of farm/fake.py).

Reproductions: a video that failed QA was indistinguishable from a good one; the summary printed
`failed 1` without a reason; `render --status` printed "remaining 2 videos" for a complete folder;
SIGKILL of `thfm-synth render` left Ray workers rendering and Ray's agents orphaned for minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pyarrow.parquet as pq
import pytest

from thfm_synth.assets.manifest import dump_manifest
from thfm_synth.assets.scan import scan
from thfm_synth.render.farm import reaper

from conftest import run_cli
from test_farm import finish, start, wait_for

pytestmark = pytest.mark.slow


def test_a_video_that_fails_qa_is_kept_recorded_and_listed(tmp_path):
    out = tmp_path / "out"
    result = finish(start(out, "fake", "", n=4, qa_fail_videos=["v000001"]))
    assert result["rendered"] == 4 and result["failed"] == 0 and result["qa_failed"] == ["v000001"]
    assert any(
        "QA failed 1 (kept, left out of preprocess): person_not_visible 1 - v000001" in ln for ln in result["lines"]
    )
    rows = {r["video_id"]: r["status"] for r in pq.read_table(out / "videos.parquet").to_pylist()}
    assert rows == {"v000000": "done", "v000001": "qa_failed", "v000002": "done", "v000003": "done"}
    done = json.loads((out / "videos" / "v000001" / "DONE").read_text())
    assert done["qa"] == {"passed": False, "failures": ["person_not_visible"]}
    proc = run_cli("render", "--status", out)
    assert proc.returncode == 0
    assert "done 4 of 4 planned videos (QA failed 1), failed 0, in progress 0, remaining 0" in proc.stdout
    assert "v000001" in proc.stdout
    # the last run's own summary, quoted as it printed it (status never disagrees with the run)
    quoted = proc.stdout.split("as it reported itself:\n", 1)[1].splitlines()
    assert [ln[2:] for ln in quoted] == result["lines"]


def test_failures_are_listed_by_kind_and_a_complete_folder_has_nothing_remaining(tmp_path, shared_assets):
    lib = tmp_path / "lib" / "mocap"
    lib.mkdir(parents=True)
    for name in ("02_01.bvh", "09_01.bvh", "README.md"):
        shutil.copy(shared_assets / "mocap" / "cmu" / name, lib / name)
    manifest = tmp_path / "lib.yaml"
    manifest.write_text(dump_manifest(scan(tmp_path / "lib", tmp_path).manifest))
    bad = lib / "09_01.bvh"
    bad.write_text(bad.read_text() + "\n")  # an edit no header probe can see
    out = tmp_path / "out"
    result = finish(start(out, "fake", "", manifests=[str(manifest)], n=8))
    failures = pq.read_table(out / "failures.parquet").to_pylist()
    assert result["failed"] == len(failures) > 0
    assert all(
        f["status"] == "bad_input" and "09_01.bvh" in f["reason"] and "expected sha256" in f["reason"] for f in failures
    )
    kinds = [ln for ln in result["lines"] if ln.strip().startswith("failed bad_input")]
    assert len(kinds) == 1 and f"failed bad_input {len(failures)}: " in kinds[0] and "09_01.bvh" in kinds[0]
    proc = run_cli("render", "--status", out)
    assert f"failed {len(failures)}" in proc.stdout and "remaining 0" in proc.stdout  # was: remaining = failed
    assert "failed bad_input" in proc.stdout
    # the asset was hashed once per run, not once per video that uses it
    digests = (out / ".cache" / "asset_digests.jsonl").read_text().splitlines()
    assert sum(str(bad.resolve()) in ln for ln in digests) <= 2  # one per worker at most


def _tree(pid: int) -> dict[int, int]:
    """pid -> start time of a process and all its descendants (as the reaper records them)."""
    known: dict[int, int] = {}
    procs = reaper._processes()
    stack = [pid]
    while stack:
        p = stack.pop()
        if p in procs and p not in known:
            known[p] = procs[p][1]
            stack += [c for c, (ppid, _, _) in procs.items() if ppid == p]
    return known


def _alive(known: dict[int, int]) -> list[str]:
    left = []
    for pid, started in known.items():
        st = reaper._stat(pid)
        if st is not None and st[1] == started and st[2] != "Z":
            left.append(f"{pid} {reaper._cmdline(pid)[:80]!r}")
    return left


def test_a_killed_render_leaves_no_process_behind(tmp_path):
    out = tmp_path / "out"
    proc = start(out, "fake", "", n=6, frame_seconds=0.5)
    # wait until both workers render (their renderer children exist)
    assert wait_for(lambda: (out / ".tmp").is_dir() and len(list((out / ".tmp").rglob("_child_pid"))) >= 2, 180)
    time.sleep(1.0)
    ours = _tree(proc.pid)
    ours.pop(proc.pid)
    assert len(ours) >= 6  # Ray's services, its agents, two workers, two renderer children, the reaper
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.time() + 10  # "after a few seconds"
    while _alive(ours) and time.time() < deadline:
        time.sleep(0.2)
    assert _alive(ours) == []


def test_workers_that_cannot_start_stop_the_run_with_their_reason(tmp_path):
    """A renderer that fails to load (here: its manifest is gone) is one line, not a failed video each."""
    out = tmp_path / "out"
    proc = start(out, "fake", "", n=3, renderer_manifests=[str(tmp_path / "gone.yaml")])
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "render workers fail to start" in lines[-1] and "gone.yaml not found" in lines[-1], err[-2000:]
    assert not list((out / "videos").iterdir()) and not list((out / ".claims").iterdir())
