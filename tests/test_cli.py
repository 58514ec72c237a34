import json

import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from thfm_synth.render.imagefiles import read_png

SUBCOMMANDS = [
    "plan",
    "render",
    "render-one",
    "preview",
    "preprocess",
    "shards",
    "report",
    "train",
    "predict",
    "evaluate",
    "assets",
    "doctor",
    "demo",
]


@pytest.mark.parametrize("cmd", SUBCOMMANDS)
def test_every_subcommand_has_help(cmd):
    proc = run_cli(cmd, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: thfm-synth " + cmd)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["plan", "--num-videos", "-3", "--out", "x.parquet"], "must be >= 1"),
        (["plan", "--num-videos", "many", "--out", "x.parquet"], "expected a whole number"),
        (["plan", "--preset", "nope"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        (["plan", "--seed", "-1", "--out", "x.parquet"], "must be >= 0"),
    ],
)
def test_bad_arguments_one_line_exit_2(args, needle):
    proc = run_cli(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]


def test_bad_config_value_exit_2_names_field(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("preset: preview\ncamera: {focal_length_mm: [5, 50]}\n")
    proc = run_cli("plan", "--config", cfg, "--out", tmp_path / "p.parquet")
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line and "camera.focal_length_mm" in line and "[8, 300]" in line
    assert not (tmp_path / "p.parquet").exists()


def test_unwritable_output_and_missing_manifest(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("plan", "--preset", "preview", "--out", blocker / "p.parquet")
    assert proc.returncode == 1 and "is a file, not a folder" in proc.stderr and len(proc.stderr.splitlines()) == 1
    proc = run_cli("plan", "--preset", "preview", "--manifest", tmp_path / "none.yaml", "--out", tmp_path / "p.parquet")
    assert proc.returncode == 1 and "none.yaml not found" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_print_config_prints_the_resolved_preset():
    proc = run_cli("plan", "--preset", "paper", "--print-config")
    assert proc.returncode == 0
    assert "num_videos: 20000" in proc.stdout and "width: 832" in proc.stdout and "num_frames: 81" in proc.stdout


def test_missing_inputs_name_the_file_and_the_fix(tmp_path):
    for args, needle in (
        (("render", "--status", tmp_path / "none"), "is not a render output folder"),
        (("train", "--config", tmp_path / "none.yaml"), "train config"),
        (("predict", tmp_path / "v.mp4", "--task", "depth", "--checkpoint", tmp_path / "ck"), "checkpoint"),
    ):
        proc = run_cli(*args)
        line = proc.stderr.strip().splitlines()[-1]
        assert proc.returncode == 1 and needle in line and "(fix: " in line, (args, proc.stderr[-500:])


def test_render_says_what_it_will_render_before_it_starts():
    from thfm_synth.assets.library import load_library
    from thfm_synth.cli import render_header
    from thfm_synth.config import load_config
    from thfm_synth.plan.planner import make_plan, plan_meta

    cfg, lib = load_config("paper"), load_library(builtin=True)
    line = render_header(make_plan(cfg, lib, 0, 3), plan_meta(cfg, lib, 0, 3), 2, "out")
    assert line == "render: 3 videos of 832x480, 81 frames at 24 fps, 16 samples + denoising, 2 workers -> out"


@pytest.mark.slow
def test_demo_runs_the_pipeline_from_nothing(tmp_path):
    proc = run_cli("demo", "--out", tmp_path / "demo", "--num-videos", "2", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = pq.read_table(tmp_path / "demo" / "render" / "plan.parquet").to_pylist()
    assert len(rows) == 2 and all(r["character_id"].startswith("anny-builtin") for r in rows)
    videos = tmp_path / "demo" / "render" / "videos"
    assert sorted(p.name for p in videos.iterdir()) == ["v000000", "v000001"]
    assert all((videos / v / "DONE").is_file() for v in ("v000000", "v000001"))
    assert (videos / "v000000" / "preview.png").is_file()
    assert "2 videos rendered, 18 records" in proc.stdout and proc.stdout.rstrip().endswith("0 failed")
    index = json.loads((tmp_path / "demo" / "shards" / "index.json").read_text())
    assert index["num_records"] == 18 and set(index["tasks"]) >= {"depth", "mask", "normals", "human_depth"}
    losses = json.loads((tmp_path / "demo" / "train" / "summary.json").read_text())["losses"]
    assert sum(losses[-10:]) < sum(losses[:10])  # training lowered the loss
    assert (tmp_path / "demo" / "predict" / "v000000_depth.mp4").stat().st_size > 1000
    still = read_png(tmp_path / "demo" / "predict" / "v000000_depth.png")  # input | ground truth | prediction
    assert still.shape == (14 + 160, 3 * 256, 3)
    assert "beside its ground truth" in proc.stdout and "blocky, grey prediction is expected" in proc.stdout


def test_render_bakes_characters_into_the_output_folder_by_default(tmp_path, monkeypatch):
    """On a cluster OUT is the file system every node shares, so a character is baked once per run
    (~/.cache would be once per node); --cache and $THFM_CACHE still choose another place."""
    from thfm_synth.cli import farm_cache

    monkeypatch.delenv("THFM_CACHE", raising=False)
    assert farm_cache(None, tmp_path / "out") == tmp_path / "out" / ".cache" / "characters"
    assert farm_cache(tmp_path / "c", tmp_path / "out") == tmp_path / "c"
    monkeypatch.setenv("THFM_CACHE", str(tmp_path / "env"))
    assert farm_cache(None, tmp_path / "out") == tmp_path / "env"
