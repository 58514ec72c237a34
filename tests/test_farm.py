"""The render farm's guarantees (local Ray, 2 workers), with real Blender renders of a tiny
preview plan and with the stand-in renderer (farm/fake.py, fast, exact timing control)."""

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
RENDERERS = ["blender", "fake"]


@pytest.fixture(scope="module")
def cache(character_cache):
    return str(character_cache)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(out: Path, renderer: str, cache: str, **kw) -> subprocess.Popen:
    args = {"out": str(out), "renderer": renderer, "cache": cache, **kw}
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as a shell starts a job: SIGINT at its default, whatever a library did to this test process
        preexec_fn=_default_sigint,
    )


def finish(proc: subprocess.Popen, timeout: float = 400) -> dict:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def tree_state(root: Path) -> dict:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()
    }


def assert_complete(out: Path, ids, real: bool) -> None:
    """Every listed video is done; a real (Blender) render must have every modality of every frame."""
    for vid in ids:
        d = out / "videos" / vid
        assert (d / "DONE").is_file()
        if not real:
            continue  # the stand-in writes no frames
        frames = json.loads((d / "metadata.json").read_text())["stats"]["frames"]
        assert frames > 0, vid
        for mod in ("rgb", "depth", "normal", "mask", "iuv", "canonical"):
            assert len(list((d / mod).iterdir())) == frames, (vid, mod)
        assert (d / "annotations.npz").is_file()


@pytest.mark.parametrize("renderer", RENDERERS)
def test_renders_all_then_a_rerun_changes_nothing(tmp_path, renderer, cache):
    out = tmp_path / "out"
    assert finish(start(out, renderer, cache))["rendered"] == 4
    videos = sorted(p.name for p in (out / "videos").iterdir())
    assert videos == ["v000000", "v000001", "v000002", "v000003"]
    assert_complete(out, videos, renderer == "blender")
    index = pq.read_table(out / "videos.parquet").to_pylist()
    assert [r["video_id"] for r in index] == videos and all(r["attempts"] == 1 for r in index)
    assert all(json.loads(r["files"]) and r["bytes"] > 0 for r in index)
    before = tree_state(out / "videos")
    second = finish(start(out, renderer, cache))
    assert second["rendered"] == 0 and second["skipped"] == 4
    assert tree_state(out / "videos") == before
    assert not list((out / ".tmp").iterdir()) and not list((out / ".claims").iterdir())


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_killed_renderer_child_is_retried_and_every_video_lands_once(tmp_path, renderer, cache):
    out = tmp_path / "out"
    proc = start(out, renderer, cache, frame_seconds=0.3)
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline:
        for pid_file in (out / ".tmp").rglob("_child_pid") if (out / ".tmp").is_dir() else []:
            try:
                pid = int(pid_file.read_text())
            except (OSError, ValueError):
                continue
            time.sleep(0.3)  # let it get going: mid-video
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            killed = pid_file.relative_to(out / ".tmp").parts[0].split(".")[0]
            break
        time.sleep(0.05)
    assert killed is not None
    result = finish(proc)
    assert result["rendered"] == 4 and result["failed"] == 0 and result["retries"] >= 1
    assert result["duplicates"] == 0
    index = {r["video_id"]: r for r in pq.read_table(out / "videos.parquet").to_pylist()}
    assert len(index) == 4 and index[killed]["attempts"] == 2
    assert not list((out / ".tmp").iterdir())  # no partial video left anywhere
    assert_complete(out, index, renderer == "blender")


@pytest.mark.parametrize("renderer", RENDERERS)
def test_a_corrupt_asset_fails_only_its_video(tmp_path, shared_assets, renderer, cache):
    lib = tmp_path / "lib" / "mocap"
    lib.mkdir(parents=True)
    for name in ("02_01.bvh", "09_01.bvh", "README.md"):
        shutil.copy(shared_assets / "mocap" / "cmu" / name, lib / name)
    manifest = tmp_path / "lib.yaml"
    manifest.write_text(dump_manifest(scan(tmp_path / "lib", tmp_path).manifest))
    bad = lib / "09_01.bvh"
    bad.write_text(bad.read_text()[:300])  # truncated inside the hierarchy
    n = 8  # > the library's 7 motions, so the corrupt clip is certainly planned
    result = finish(start(tmp_path / "out", renderer, cache, manifests=[str(manifest)], n=n))
    failures = pq.read_table(tmp_path / "out" / "failures.parquet").to_pylist()
    assert result["failed"] == len(failures) > 0 and result["rendered"] == n - len(failures)
    assert all(f["status"] == "bad_input" and "09_01.bvh" in f["reason"] and f["attempts"] == 1 for f in failures)
    ok = pq.read_table(tmp_path / "out" / "videos.parquet").to_pylist()
    assert all("09_01" not in json.loads(r["spec"]).get("motion_id", "") for r in ok)
    assert_complete(tmp_path / "out", [r["video_id"] for r in ok], renderer == "blender")


@pytest.mark.parametrize("renderer", RENDERERS)
def test_two_concurrent_runs_render_every_video_exactly_once(tmp_path, renderer, cache):
    out = tmp_path / "out"
    out.mkdir()
    gate = tmp_path / "gate"
    a = start(out, renderer, cache, n=6, gate=str(gate))
    b = start(out, renderer, cache, n=6, gate=str(gate))

    def owners() -> set:
        found = set()
        for claim in (out / ".claims").glob("*") if (out / ".claims").is_dir() else []:
            try:
                found.add(json.loads(claim.read_text())["run_id"])
            except (OSError, ValueError, KeyError):
                pass  # being written
        return found

    # nothing renders until both runs hold claims, so they certainly overlap; each holds at most
    # its 2 workers' videos, so neither can take all 6
    assert wait_for(lambda: len(owners()) == 2, timeout=300), owners()
    gate.touch()
    ra, rb = finish(a), finish(b)
    assert ra["failed"] == rb["failed"] == 0
    assert ra["rendered"] + rb["rendered"] == 6 and ra["duplicates"] == rb["duplicates"] == 0
    assert ra["rendered"] > 0 and rb["rendered"] > 0, (ra, rb)  # they did overlap: both claimed work
    ids = sorted(p.name for p in (out / "videos").iterdir())
    assert len(ids) == 6
    assert_complete(out, ids, renderer == "blender")


def wait_for(predicate, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_stops_cleanly_and_a_rerun_continues(tmp_path, cache):
    out = tmp_path / "out"
    proc = start(out, "fake", cache, n=6, frame_seconds=0.25)
    assert wait_for(lambda: (out / "videos").is_dir() and len(list((out / "videos").iterdir())) >= 1)
    proc.send_signal(signal.SIGINT)  # the driver alone (`kill -INT`); Ctrl-C of the CLI: test_farm_cli_signals.py
    proc.communicate(timeout=120)
    # run_farm cleans up and re-raises: the script (no handler of its own) dies of the SIGINT
    assert proc.returncode == -signal.SIGINT
    done = sorted(p.name for p in (out / "videos").iterdir())
    assert 1 <= len(done) < 6
    assert not list((out / ".claims").iterdir()) and not list((out / ".tmp").iterdir())
    assert_complete(out, done, False)
    assert {r["video_id"] for r in pq.read_table(out / "videos.parquet").to_pylist()} == set(done)
    result = finish(start(out, "fake", cache, n=6))
    assert result["skipped"] == len(done) and result["rendered"] == 6 - len(done)


def test_disk_full_stops_the_run_with_a_clear_message_and_keeps_finished_videos(tmp_path, cache):
    out = tmp_path / "out"
    proc = start(out, "fake", cache, n=4, disk_full_video="v000002")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    assert "disk full while writing under" in err and "free space" in err
    assert "v000002" not in {p.name for p in (out / "videos").iterdir()}
    assert not list((out / ".tmp").iterdir()) and not list((out / ".claims").iterdir())
    assert finish(start(out, "fake", cache, n=4))["failed"] == 0
    assert len(list((out / "videos").iterdir())) == 4


def test_a_killed_ray_worker_process_is_replaced_and_its_video_retried(tmp_path, cache):
    out = tmp_path / "out"
    proc = start(out, "fake", cache, n=4, frame_seconds=0.3)
    victim = None

    def find():
        nonlocal victim
        for pid_file in (out / ".tmp").rglob("_child_pid") if (out / ".tmp").is_dir() else []:
            try:
                child = int(pid_file.read_text())
                stat = Path(f"/proc/{child}/stat").read_text()
            except (OSError, ValueError):
                continue
            worker = int(stat.rsplit(")", 1)[1].split()[1])  # ppid: the Ray worker owning the child
            victim = (worker, pid_file.relative_to(out / ".tmp").parts[0].split(".")[0])
            return True
        return False

    assert wait_for(find)
    os.kill(victim[0], signal.SIGKILL)
    result = finish(proc)
    assert result["rendered"] == 4 and result["failed"] == 0 and result["retries"] >= 1
    index = {r["video_id"]: r for r in pq.read_table(out / "videos.parquet").to_pylist()}
    assert index[victim[1]]["attempts"] == 2
    assert_complete(out, index, False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_the_renderer_child_dies_with_its_worker(tmp_path):
    """A SIGKILLed worker (what ray.kill does) must not leave its Blender child rendering on."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"""
import sys, time
from pathlib import Path
from thfm_synth.blender.child import ServingChild
c = ServingChild([sys.executable, "-c", "import time; time.sleep(120)"], "sleep", Path({str(tmp_path)!r}) / "child.log")
c._start()
print(c.proc.pid, flush=True)
time.sleep(120)
""",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive
    parent.kill()
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the child outlived its parent")


def test_a_dead_runs_claim_on_a_done_video_is_dropped_by_the_next_run(tmp_path, cache):
    """A run SIGKILLed between the worker's commit and the driver's release leaves a claim on a DONE video."""
    out = tmp_path / "out"
    assert finish(start(out, "fake", cache, n=2))["rendered"] == 2
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim = out / ".claims" / "v000000"
    claim.write_text(
        json.dumps({"run_id": "dead", "host": __import__("socket").gethostname(), "pid": dead.pid, "time": time.time()})
    )
    assert finish(start(out, "fake", cache, n=2))["skipped"] == 2
    assert not claim.exists()
