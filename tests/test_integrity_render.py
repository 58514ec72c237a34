"""Nothing wrong becomes training data (issue 12), part 5: real renders and what preprocess reads.

Reproductions: a BVH whose root positions are 1e30 (finite, so it parses) rendered an empty mask with
rc 0 and `"passed": true`; disk full inside Blender was retried as a crash; `preprocess` trusted DONE
(an edited RGB PNG went into shards whose `source_checksums` claimed the old digest); a video that
failed QA went into the shards like any other.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from thfm_synth.errors import UserError
from thfm_synth.render.farm.worker import Worker
from thfm_synth.preprocess.pipeline import preprocess
from thfm_synth.render.imagefiles import read_image, write_webp
from thfm_synth.shards.store import ShardSet

from conftest import REPO, run_cli
import test_preprocess_data as data

pytestmark = pytest.mark.render
CFG = (
    "preset: preview\nvideo: {width: 64, height: 64, num_frames: 5}\nrender: {samples: 1, denoise: false}\n"
    "background: {kind_weights: {hdri: 0.0, scene: 0.0, sky: 1.0}}\n"
)


def far_bvh(src: Path, dst: Path) -> None:
    head, motion = src.read_text().split("MOTION", 1)
    lines = motion.strip().splitlines()
    body = [ln.split() for ln in lines[2:]]
    for row in body:
        row[0] = row[1] = row[2] = "1e30"
    dst.write_text(head + "MOTION\n" + "\n".join(lines[:2]) + "\n" + "\n".join(" ".join(r) for r in body) + "\n")


def test_a_clip_that_puts_the_person_out_of_any_view_is_refused(tmp_path, shared_assets):
    """Was: a BVH whose root positions are 1e30 (finite, so it parses) rendered an empty mask with rc 0 and
    "QA passed". Now the clip is bad input at render time, one line naming it; and were a video without a
    visible person ever rendered, QA fails it (no visible joints, person not visible: tests/test_qa.py)."""
    from thfm_synth.assets.manifest import dump_manifest
    from thfm_synth.assets.scan import scan
    from thfm_synth.plan.planner import read_plan

    lib = tmp_path / "lib" / "mocap"
    lib.mkdir(parents=True)
    shutil.copy(shared_assets / "mocap" / "cmu" / "README.md", lib)
    far_bvh(shared_assets / "mocap" / "cmu" / "02_01.bvh", lib / "02_01.bvh")
    manifest = tmp_path / "m.yaml"
    manifest.write_text(dump_manifest(scan(tmp_path / "lib", tmp_path).manifest))
    (tmp_path / "c.yaml").write_text(CFG)
    plan = tmp_path / "p.parquet"
    assert (
        run_cli(
            "plan", "--config", tmp_path / "c.yaml", "--manifest", manifest, "--num-videos", "12", "--out", plan
        ).returncode
        == 0
    )
    index = next(i for i, s in enumerate(read_plan(plan)[0]) if s.motion_id == "mocap-02_01")
    out = tmp_path / "video"
    proc = run_cli("render-one", "--plan", plan, "--index", index, "--out", out, "--cache", tmp_path / "cache")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "02_01.bvh" in line and "m from the origin" in line and "(fix: " in line
    assert not out.exists()


DISK_FULL_SCRIPT = r"""
import json, sys
from pathlib import Path
from thfm_synth.assets.library import load_library
from thfm_synth.blender.runtime import RenderRuntime
from thfm_synth.config import load_config
from thfm_synth.plan.planner import make_plan
from thfm_synth.render.video.render_one import render_video

args = json.loads(sys.argv[1])
cfg = load_config(config_file=args["config"])
library = load_library()
spec = make_plan(cfg, library, 0, 1)[0]
try:
    render_video(spec, library, cfg.render, args["out"], args["cache"], runtime=RenderRuntime.detect())
    print(json.dumps({"raised": None}))
except BaseException as exc:
    print(json.dumps({"raised": type(exc).__name__, "errno": getattr(exc, "errno", None), "text": str(exc)}))
"""


def test_disk_full_inside_blender_is_a_disk_full_stop_not_a_crash(tmp_path):
    """A real Blender render whose raw EXRs go to a 64 kB tmpfs (mounted in a user namespace, no root):
    Blender writes empty files and says so only in its log; the render reports disk full."""
    if (
        shutil.which("unshare") is None
        or subprocess.run(
            ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k none {tmp_path}"], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("unprivileged user namespaces with tmpfs mounts are not available here")
    (tmp_path / "c.yaml").write_text(CFG)
    out = tmp_path / "video"
    full = out / "_work" / "render"  # where Blender writes its raw frames
    full.mkdir(parents=True)
    script = tmp_path / "disk_full.py"
    script.write_text(DISK_FULL_SCRIPT)
    args = json.dumps({"config": str(tmp_path / "c.yaml"), "out": str(out), "cache": str(tmp_path / "cache")})
    proc = subprocess.run(
        [
            "unshare",
            "-rm",
            "sh",
            "-c",
            'mount -t tmpfs -o size=64k none "$1" && shift && exec "$@"',
            "sh",
            str(full),
            sys.executable,
            str(script),
            args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["raised"] == "BlenderDiskFull" and result["errno"] == 28, result
    assert "No space left on device" in result["text"]


class _DiskFullRenderer:
    """A renderer that fails the way the Blender child reports a full disk."""

    def __init__(self, log_path, worker_index=0):
        pass

    child_pid = None

    def render(self, spec_row, out_dir):
        from thfm_synth.blender.call import BlenderDiskFull

        raise BlenderDiskFull("render_scene.py: OSError: No space left on device: raw/00000.exr was not written")

    def close(self):
        pass


def test_the_worker_reports_blender_disk_full_as_disk_full(tmp_path):
    sys.modules.setdefault("test_integrity_render", sys.modules[__name__])
    worker = Worker(f"{__name__}:_DiskFullRenderer", {}, str(tmp_path), 0)
    outcome = worker.render({"video_id": "v000000"}, 1, "run")
    assert outcome["status"] == "disk_full" and "No space left" in outcome["reason"]  # the farm stops; no retry
    assert not list((tmp_path / ".tmp").iterdir())


# ----------------------------------------------------------------------------- preprocess


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return data.rendered(tmp_path_factory)


SETTINGS = dict(num_frames=9, fps=24, width=96, height=64, prompt_dim=32, progress=False, workers=0)


def test_preprocess_rehashes_what_it_reads_against_done(rendered, tmp_path):
    render = tmp_path / "render"
    shutil.copytree(rendered / "videos" / "v000001", render / "videos" / "v000001")
    png = render / "videos" / "v000001" / "rgb" / "00004.webp"
    done = json.loads((png.parents[1] / "DONE").read_text())["files"]["rgb/00004.webp"]
    edited = np.array(read_image(png))
    edited[:8, :8] = 255 - edited[:8, :8]  # a valid image with other pixels
    png.unlink()
    write_webp(png, edited)
    with pytest.raises(UserError) as err:
        preprocess(render, tmp_path / "shards", **SETTINGS)
    line = err.value.one_line()
    assert str(png) in line and "changed after it was rendered" in line and done in line and "re-render" in line
    assert not (tmp_path / "shards" / "index.json").exists() and not list((tmp_path / "shards").glob("shard-*"))


def test_preprocess_leaves_out_videos_that_failed_qa_unless_asked(rendered, tmp_path):
    render = tmp_path / "render"
    for vid in ("v000000", "v000002"):
        shutil.copytree(rendered / "videos" / vid, render / "videos" / vid)
    done_path = render / "videos" / "v000002" / "DONE"
    done = json.loads(done_path.read_text())
    done["qa"] = {"passed": False, "failures": ["person_not_visible"]}
    done_path.write_text(json.dumps(done))
    summary = preprocess(render, tmp_path / "a", **SETTINGS)
    assert summary.videos == 1 and summary.qa_failed_left_out == ["v000002"]
    assert any("left out 1 videos that failed QA" in ln for ln in summary.lines())
    assert {r.video_id for r in ShardSet.open(tmp_path / "a").records()} == {"v000000"}
    summary = preprocess(render, tmp_path / "b", include_qa_failed=True, **SETTINGS)
    assert summary.videos == 2 and summary.qa_failed_left_out == []
    rec = next(r for r in ShardSet.open(tmp_path / "b").records() if r.video_id == "v000000")
    sums = json.loads(rec.source_checksums)
    assert (
        sums["rgb/00000.webp"]
        == json.loads((render / "videos" / "v000000" / "DONE").read_text())["files"]["rgb/00000.webp"]
    )
    assert np.isfinite(rec.arrays["rgb_latents"].astype(np.float32)).all()
