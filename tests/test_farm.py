"""The render farm's guarantees, with the stand-in renderer (real Blender renders: test_render_farm.py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from thfm_synth.assets.manifest import dump_manifest
from thfm_synth.assets.scan import scan

SCRIPT = Path(__file__).with_name("farm_script.py")
pytestmark = pytest.mark.slow


def start(out: Path, **kw) -> subprocess.Popen:
    args = {"out": str(out), **kw}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "RAY_AUTH_MODE": "disabled"}
    return subprocess.Popen([sys.executable, str(SCRIPT), json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen, timeout: float = 240) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def tree_state(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_renders_all_then_a_rerun_changes_nothing(tmp_path):
    out = tmp_path / "out"
    assert finish(start(out))["rendered"] == 4
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert videos == ["v000000", "v000001", "v000002", "v000003"]
    index = pq.read_table(out / "videos.parquet").to_pylist()
    assert [r["video_id"] for r in index] == videos and all(r["attempts"] == 1 for r in index)
    assert all(json.loads(r["files"]) and r["bytes"] > 0 for r in index)
    before = tree_state(out / "videos")
    second = finish(start(out))
    assert second["rendered"] == 0 and second["skipped"] == 4
    assert tree_state(out / "videos") == before
    assert not list((out / ".tmp").iterdir()) and not list((out / ".claims").iterdir())


def test_a_killed_renderer_child_is_retried_and_every_video_lands_once(tmp_path):
    out, journal = tmp_path / "out", tmp_path / "journal.txt"
    proc = start(out, frame_seconds=0.3, journal=str(journal))
    killed = None
    deadline = time.time() + 120
    while killed is None and time.time() < deadline:
        for pid_file in (out / ".tmp").glob("*/_child_pid") if (out / ".tmp").is_dir() else []:
            try:
                pid = int(pid_file.read_text())
            except (OSError, ValueError):
                continue
            os.kill(pid, signal.SIGKILL)
            killed = pid_file.parent.name.split(".")[0]
            break
        time.sleep(0.05)
    assert killed is not None
    result = finish(proc)
    assert result["rendered"] == 4 and result["failed"] == 0 and result["retries"] >= 1
    index = {r["video_id"]: r for r in pq.read_table(out / "videos.parquet").to_pylist()}
    assert len(index) == 4 and index[killed]["attempts"] == 2
    assert sorted(journal.read_text().split()) == sorted(index)  # each video rendered to completion once
    assert not list((out / ".tmp").iterdir())  # no partial video left anywhere
    assert all((out / "videos" / v / "DONE").is_file() for v in index)


def test_a_corrupt_asset_fails_only_its_video(tmp_path, shared_assets):
    lib = tmp_path / "lib" / "mocap"
    lib.mkdir(parents=True)
    for name in ("02_01.bvh", "09_01.bvh", "README.md"):
        shutil.copy(shared_assets / "mocap" / "cmu" / name, lib / name)
    manifest = tmp_path / "lib.yaml"
    m = scan(tmp_path / "lib", tmp_path).manifest
    manifest.write_text(dump_manifest(m))
    bad = lib / "09_01.bvh"
    bad.write_text(bad.read_text()[:300])  # truncated: header cut inside the hierarchy
    proc = start(tmp_path / "out", manifests=[str(manifest)], n=12)
    result = finish(proc)
    failures = pq.read_table(tmp_path / "out" / "failures.parquet").to_pylist()
    assert result["failed"] == len(failures) > 0 and result["rendered"] == 12 - len(failures)
    assert all(f["status"] == "bad_input" and "09_01.bvh" in f["reason"] and f["attempts"] == 1 for f in failures)
    ok = pq.read_table(tmp_path / "out" / "videos.parquet").to_pylist()
    assert all("09_01" not in json.loads(r["spec"])["motion_id"] for r in ok)


def test_two_concurrent_runs_render_every_video_exactly_once(tmp_path):
    out, journal = tmp_path / "out", tmp_path / "journal.txt"
    a = start(out, n=8, frame_seconds=0.1, journal=str(journal))
    b = start(out, n=8, frame_seconds=0.1, journal=str(journal))
    ra, rb = finish(a), finish(b)
    assert ra["failed"] == rb["failed"] == 0
    rendered = journal.read_text().split()
    assert sorted(rendered) == sorted(set(rendered)) and len(rendered) == 8
    assert ra["rendered"] + rb["rendered"] == 8
    assert len(list((out / "videos").iterdir())) == 8
