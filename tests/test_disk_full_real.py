"""Disk full for real (ENOSPC from the kernel, not a stand-in's exception), with real Blender at a tiny
size: inside Blender while it writes a frame, at the farm's commit, and in preprocess while it writes a
shard. Each time: exit 1, one line that says "disk full", names the path and says "free space";
nothing half-written; and after the space is freed the same command completes.

The output folder is a small tmpfs mounted in a user + mount namespace (`unshare -rm`, no root;
tests/small_disk.py runs the steps in there). tests/disk_filling.py fills it at the chosen moment
by swapping the farm's renderer for a subclass of the real one; the product has no test hook.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.render]
MODALITIES = ("rgb", "depth", "normal", "mask", "iuv", "canonical")
CFG = (
    "preset: preview\nnum_videos: 2\nvideo: {width: 64, height: 64, num_frames: 1}\n"
    "render: {samples: 1, denoise: false}\nbackground: {kind_weights: {hdri: 0.0, scene: 0.0, sky: 1.0}}\n"
)


def namespaces_available(path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k none {path}"], capture_output=True
    )
    return probe.returncode == 0


@pytest.fixture
def disk(tmp_path, character_cache):
    """(the tmpfs mount point, the config file, the character cache, a runner of steps on that disk)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not namespaces_available(mount):
        pytest.skip("unprivileged user namespaces with tmpfs mounts are not available here")
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(CFG)

    def run(steps: list[dict], size: str = "64m") -> list[dict]:
        spec = {"mount": str(mount), "size": size, "steps": steps}
        proc = subprocess.run(
            ["unshare", "-rm", sys.executable, str(REPO / "tests" / "small_disk.py"), json.dumps(spec)],
            capture_output=True,
            text=True,
            timeout=800,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "THFM_NO_BOOTSTRAP": "1"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    return mount, cfg, character_cache, run


def render_cmd(out: Path, cfg: Path, cache: Path) -> list[str]:
    return [sys.executable, str(REPO / "tests" / "disk_filling.py"), "render", "--config", str(cfg),
            "--workers", "1", "--out", str(out), "--cache", str(cache)]  # fmt: skip


def said(stderr: str) -> list[str]:
    """stderr without the progress bar's lines and Ray's own C++ log lines (Ray Data's actors sometimes
    log a warning about their constructor arguments; not ours to judge here)."""
    lines = re.split(r"[\r\n]", stderr)
    return [ln for ln in lines if ln.strip() and not re.match(r"^(rendering:|preprocessing:|\[\d{4}-\d\d-\d\d )", ln)]


def assert_disk_full_line(result: dict, path: Path) -> str:
    assert result["rc"] == 1, result["stderr"][-3000:]
    lines = said(result["stderr"])
    assert len(lines) == 1, result["stderr"][-3000:]  # one line, no traceback
    line = lines[0]
    assert line.startswith("thfm-synth: error: disk full while writing") and str(path) in line, line
    assert "free space" in line, line
    return line


def assert_nothing_half_written(files: dict, rows: list) -> None:
    """Not a video, a partial video or a claim left: the failed video is simply not there."""
    assert not [f for f in files if f.split("/")[0] in ("videos", ".tmp", ".claims")], sorted(files)
    assert rows == []  # no video recorded as done


def assert_complete(files: dict, rows: list, n: int = 2) -> None:
    ids = [f"v{i:06d}" for i in range(n)]
    assert sorted(r["video_id"] for r in rows) == ids and all(r["status"] == "done" for r in rows)
    for vid in ids:
        assert f"videos/{vid}/DONE" in files and files[f"videos/{vid}/annotations.npz"] > 0
        for mod in MODALITIES:
            frames = [f for f in files if f.startswith(f"videos/{vid}/{mod}/")]
            assert len(frames) == 1 and all(files[f] > 0 for f in frames), (vid, mod)
    assert not [f for f in files if f.startswith((".tmp/", ".claims/"))]


@pytest.mark.parametrize("at", ["blender", "commit"])
def test_disk_full_while_rendering_stops_cleanly_and_a_rerun_after_freeing_space_completes(disk, at):
    mount, cfg, cache, run = disk
    out, filler = mount / "render", mount / "filler"
    fill = {"THFM_TEST_FILL_FILE": str(filler), "THFM_TEST_FILL_AT": at}
    cmd = render_cmd(out, cfg, cache)
    full, files, rows, log, _, rerun, files2, rows2 = run(
        [
            {"run": cmd, "env": fill},
            {"files": str(out)},
            {"rows": str(out / "videos.parquet")},
            {"read": str(out / ".logs" / "worker-0.log")},
            {"rm": str(filler)},  # free space
            {"run": cmd, "env": {"THFM_TEST_FILL_AT": ""}},
            {"files": str(out)},
            {"rows": str(out / "videos.parquet")},
        ]
    )
    line = assert_disk_full_line(full, out)
    if at == "blender":
        # Blender's own EXR writer ran out of space on the first frame, and the child said disk full
        assert "Failed to write pixel data" in log["text"] and "raw/00000.exr" in log["text"], log["text"][-2000:]
        assert "BlenderDiskFull" in line
    else:
        assert "BlenderDiskFull" not in line and "[Errno 28]" in line  # Blender finished; the commit's write failed
    assert_nothing_half_written(files["files"], rows["rows"])
    assert rerun["rc"] == 0, rerun["stderr"][-3000:]
    assert "rendered 2, skipped 0 (already done), failed 0" in rerun["stdout"]
    assert_complete(files2["files"], rows2["rows"])


def test_disk_full_in_preprocess_names_the_shard_and_a_rerun_after_freeing_space_completes(disk):
    mount, cfg, cache, run = disk
    out, shards, filler = mount / "render", mount / "shards", mount / "filler"
    env = {"THFM_TEST_FILL_FILE": str(filler)}
    pre = [sys.executable, "-m", "thfm_synth", "preprocess", str(out), "--out", str(shards)]
    # room for preprocess.json, not for the first shard (~0.5 MB for these two videos)
    fill = [sys.executable, "-c", "import disk_filling; disk_filling.fill_disk(128 << 10)"]
    rendered, _, full, files, _, again, files2, verify = run(
        [
            {"run": render_cmd(out, cfg, cache), "env": {"THFM_TEST_FILL_AT": ""}},
            {"run": fill, "env": env},
            {"run": pre},
            {"files": str(shards)},
            {"rm": str(filler)},
            {"run": pre},
            {"files": str(shards)},
            {"run": [sys.executable, "-m", "thfm_synth", "shards", "verify", str(shards)]},
        ]
    )
    assert rendered["rc"] == 0, rendered["stderr"][-3000:]
    line = assert_disk_full_line(full, shards)
    assert re.search(r"shard-00000\.(parquet|array_record)", line), line
    # no shard, no temporary file: only the run's settings, written before the first shard
    assert sorted(files["files"]) == ["preprocess.json"], files["files"]
    assert again["rc"] == 0, again["stderr"][-3000:]
    assert "preprocessed 2 videos" in again["stdout"] and "shards: 1 written, 0 already done" in again["stdout"]
    assert {"index.json", "shard-00000.json", "shard-00000.parquet", "shard-00000.array_record"} <= set(files2["files"])
    assert verify["rc"] == 0, verify["stdout"] + verify["stderr"]
