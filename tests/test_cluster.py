"""The cluster path tested as a cluster (issue 12): a two-node Ray cluster on this machine
(`ray.cluster_utils.Cluster`: a head node and a second node, each with its own raylet and workers),
`render --address` / `preprocess --address` against it, and a node killed mid-run.

Guarantees checked: the videos the dead node was rendering are rendered again on the surviving node,
exactly once each; a claim left by a run that died with its node is taken over; nothing partial
survives; the outputs are byte-identical to a single-machine run of the same plan.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from test_farm import finish, start, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster():
    """A head node and a second node, each with its own (short: Ray's socket paths) temp dir, so no
    other Ray on this machine finds this cluster as "the current one" and joins it."""
    import shutil
    import tempfile

    from ray.cluster_utils import Cluster

    dirs = [tempfile.mkdtemp(prefix="thfm-rc-", dir="/tmp") for _ in range(2)]
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False, "temp_dir": dirs[0]})
    node = c.add_node(num_cpus=1, temp_dir=dirs[1])
    c.wait_for_nodes()
    try:
        yield c, node
    finally:
        c.shutdown()
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        out.append(pid)
    return out


def _raylet_pid(node) -> int:
    return node.all_processes["raylet"][0].process.pid


def _video_files(out: Path, skip: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every file of every finished video except DONE (timings, hosts), which is compared by its checksums;
    `skip`: files whose bytes legitimately differ between runs (a real render's metadata.json timings)."""
    files = {}
    for vid in sorted(p for p in (out / "videos").iterdir()):
        done = json.loads((vid / "DONE").read_text())
        sums = {k: v for k, v in done["files"].items() if k not in skip}
        files[f"{vid.name}/DONE:files"] = json.dumps(sums, sort_keys=True).encode()
        for p in sorted(vid.rglob("*")):
            if p.is_file() and p.name != "DONE":
                files[p.relative_to(out).as_posix()] = p.read_bytes()
    return files


def test_a_node_killed_mid_run_its_videos_land_once_on_the_other_node(cluster, tmp_path):
    c, node = cluster
    out, journal = tmp_path / "out", tmp_path / "journal.txt"
    (out / ".claims").mkdir(parents=True)
    # a claim left by a run that died with its node (another host: no pid to check), last refreshed long ago
    stale = out / ".claims" / "v000005"
    stale.write_text(json.dumps({"run_id": "dead", "host": "node-that-died", "pid": 1, "time": time.time() - 3600}))
    os.utime(stale, (time.time() - 3600,) * 2)
    proc = start(out, "fake", "", n=6, frame_seconds=0.5, journal=str(journal), address=c.address, claim_stale_s=600)
    raylet = _raylet_pid(node)
    victim = {}

    def on_the_second_node():
        for pid_file in (out / ".tmp").rglob("_child_pid") if (out / ".tmp").is_dir() else []:
            try:
                child = int(pid_file.read_text())
            except (OSError, ValueError):
                continue
            if raylet in _ancestors(child):
                victim["video"] = pid_file.relative_to(out / ".tmp").parts[0].split(".")[0]
                return True
        return False

    assert wait_for(on_the_second_node, 120), "no video started on the second node"
    time.sleep(1.0)  # mid-video (5 frames x 0.5 s)
    c.remove_node(node, allow_graceful=False)
    result = finish(proc, timeout=300)
    assert result["rendered"] == 6 and result["failed"] == 0 and result["retries"] >= 1
    assert result["elsewhere"] == 0  # the dead run's claim was taken over
    rendered = journal.read_text().split()
    assert sorted(rendered) == [f"v{i:06d}" for i in range(6)]  # every video rendered to the end exactly once
    index = {r["video_id"]: r for r in pq.read_table(out / "videos.parquet").to_pylist()}
    assert index[victim["video"]]["attempts"] == 2
    head = c.head_node.node_id
    done = json.loads((out / "videos" / victim["video"] / "DONE").read_text())
    assert done["node"] == head and done["attempt"] == 2
    assert not list((out / ".tmp").iterdir()) and not list((out / ".claims").iterdir())
    # the same plan on one machine (local Ray) gives the same files
    local = tmp_path / "local"
    assert finish(start(local, "fake", "", n=6, frame_seconds=0.01))["rendered"] == 6
    assert _video_files(local) == _video_files(out)


TINY = (
    "preset: preview\nvideo: {width: 64, height: 64, num_frames: 5}\nrender: {samples: 1, denoise: false}\n"
    "background: {kind_weights: {hdri: 0.0, scene: 0.0, sky: 1.0}}\n"
)


def _comparable_metadata(path: Path) -> dict:
    meta = json.loads(path.read_text())
    for key in ("frame_render_seconds", "stats"):
        meta.pop(key)
    return meta


@pytest.mark.render
def test_render_and_preprocess_on_the_cluster_match_a_single_machine(cluster, tmp_path, character_cache):
    c, _ = cluster
    (tmp_path / "c.yaml").write_text(TINY)
    plan = tmp_path / "plan.parquet"
    assert run_cli("plan", "--config", tmp_path / "c.yaml", "--num-videos", "2", "--out", plan).returncode == 0
    runs = {"cluster": ["--address", c.address], "local": ["--workers", "2"]}
    for name, extra in runs.items():
        out = tmp_path / name
        proc = run_cli(
            "render", "--plan", plan, "--out", out / "render", "--cache", character_cache, *extra, timeout=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        if name == "local":  # a successful run prints our progress and summary, not Ray's start-up warnings
            noise = [
                line
                for line in (proc.stdout + proc.stderr).splitlines()
                if "Token authentication" in line or "core_worker" in line or "WARNING" in line
            ]
            assert not noise, noise
            assert proc.stdout.startswith("render: 2 videos of 64x64, 5 frames")
        proc = run_cli(
            "preprocess",
            out / "render",
            "--out",
            out / "shards",
            "--prompt-dim",
            "32",
            *(["--address", c.address] if name == "cluster" else ["--workers", "0"]),
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Progress bars disabled" not in proc.stderr  # Ray Data's word about our own choice
    a, b = (_video_files(tmp_path / n / "render", skip=("metadata.json",)) for n in runs)
    assert a.keys() == b.keys()
    for key in a:
        if key.endswith("metadata.json"):
            assert _comparable_metadata(tmp_path / "cluster" / "render" / key) == _comparable_metadata(
                tmp_path / "local" / "render" / key
            ), key
        else:
            assert a[key] == b[key], key
    # the shards hold the same records; only the digest of metadata.json (render timings) in their
    # provenance differs, so their files differ by exactly that
    from thfm_synth.shards.record import ARRAYS
    from thfm_synth.shards.store import ShardSet
    from model.tasks import TASKS

    local, remote = (
        list(ShardSet.open(tmp_path / n / "shards").records(fmt)) for n in runs for fmt in ("array_record",)
    )
    assert len(local) == len(remote) == 2 * len(TASKS)  # one record per video and task
    for x, y in zip(local, remote):
        assert (x.video_id, x.task, x.vae_id) == (y.video_id, y.task, y.vae_id)
        assert all(x.arrays[k].tobytes() == y.arrays[k].tobytes() for k in ARRAYS)
        sx, sy = json.loads(x.source_checksums), json.loads(y.source_checksums)
        assert {k: v for k, v in sx.items() if k != "metadata.json"} == {
            k: v for k, v in sy.items() if k != "metadata.json"
        }
    hosts = {json.loads(p.read_text())["host"] for p in (tmp_path / "cluster" / "render" / "videos").glob("*/DONE")}
    assert hosts == {socket.gethostname()}
